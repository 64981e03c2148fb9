// The page's whole state in its URL: the model, the prompt (?text= or ?ids=), and the position,
// layer, head and score scale. Loading the URL redraws the same walk. Values that do not parse as
// numbers are passed on as they are, so the server's validation names the field.

import { promptFromQuery, promptToQuery } from "../prompt-input.js";

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
export const DEFAULT_MODEL = "austen-bpe";
export const DEFAULT_PROMPT = { text: "It is a truth universally acknowledged" };
export const CHOICES = ["position", "layer", "head", "sharpen"];

export class InsideState {
  constructor(schema) {
    this.defaults = Object.fromEntries(schema.settings.map((s) => [s.name, s.default]));
  }

  parse(search) {
    const query = new URLSearchParams(search);
    const settings = { ...this.defaults };
    for (const name of CHOICES) {
      if (!query.has(name)) continue;
      const text = query.get(name).trim();
      settings[name] = NUMBER.test(text) ? Number(text) : text;
    }
    return { model: query.get("model") || DEFAULT_MODEL, prompt: promptFromQuery(search) ?? { ...DEFAULT_PROMPT }, settings };
  }

  format(state) {
    const query = new URLSearchParams();
    query.set("model", state.model);
    promptToQuery(state.prompt, query);
    for (const name of CHOICES) if (state.settings[name] !== this.defaults[name]) query.set(name, String(state.settings[name]));
    return `?${query}`;
  }
}
