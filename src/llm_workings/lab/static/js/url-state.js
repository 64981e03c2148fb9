// A model page's whole state in its URL: the model, the prompt (?text=... or ?ids=1,2,3, as the
// prompt box keeps it) and every setting of the server's table. Loading the URL redraws the view.
//
//   const urlState = new UrlState(schema.settings, { model: "austen-bpe", prompt: { text: "..." } });
//   const state = urlState.parse(location.search);   // {model, prompt, settings}
//   history.replaceState(null, "", urlState.format(state));
//
// Numbers are parsed only when they look like numbers; anything else is passed on as text so
// the server's validation names the field and says what it expects.

import { promptFromQuery, promptToQuery } from "./prompt-input.js";

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export class UrlState {
  constructor(table, defaults) {
    this.table = table;
    this.defaultModel = defaults.model;
    this.defaultPrompt = defaults.prompt;
  }

  defaults() {
    return Object.fromEntries(this.table.map((s) => [s.name, s.default]));
  }

  parse(search) {
    const query = new URLSearchParams(search);
    const settings = this.defaults();
    for (const s of this.table) {
      if (!query.has(s.name)) continue;
      const text = query.get(s.name);
      settings[s.name] = s.kind !== "text" && NUMBER.test(text.trim()) ? Number(text.trim()) : text;
    }
    return { model: query.get("model") || this.defaultModel, prompt: promptFromQuery(search) ?? this.defaultPrompt, settings };
  }

  // Only what differs from the defaults, so a shared URL stays short; the model and prompt always.
  format(state) {
    const query = new URLSearchParams();
    query.set("model", state.model);
    promptToQuery(state.prompt, query);
    const defaults = this.defaults();
    for (const s of this.table) {
      if (state.settings[s.name] !== defaults[s.name]) query.set(s.name, String(state.settings[s.name]));
    }
    return `?${query}`;
  }
}
