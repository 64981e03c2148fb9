// The Steering page's whole state in its URL: the model, the prompt (text or ids), every setting of
// the server's table that differs from its default, and whether the sweep was measured. Loading the
// URL redraws the same vector, the same two seeded generations and the same sweep.

import { parseIds } from "../prompt-input.js";

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const TEXTS = new Set(["pairs", "target", "sae"]); // text settings: never read as numbers

export const DEFAULT_MODEL = "austen-bpe";
export const DEFAULT_PROMPT = { text: "She walked into the drawing-room, and" };

export class SteeringState {
  constructor(schema) {
    this.table = schema.settings;
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
      settings[s.name] = !TEXTS.has(s.name) && s.kind !== "choice" && NUMBER.test(text.trim()) ? Number(text) : text;
    }
    let prompt = DEFAULT_PROMPT;
    if (query.has("ids")) prompt = { ids: parseIds(query.get("ids")) };
    else if (query.has("text")) prompt = { text: query.get("text") };
    return { model: query.get("model") || DEFAULT_MODEL, prompt, settings, measured: query.get("measure") === "1" };
  }

  format(state) {
    const query = new URLSearchParams();
    query.set("model", state.model);
    if (state.prompt.ids) query.set("ids", state.prompt.ids.join(","));
    else if (state.prompt.text !== DEFAULT_PROMPT.text) query.set("text", state.prompt.text);
    const defaults = this.defaults();
    for (const s of this.table) {
      if (state.settings[s.name] !== defaults[s.name]) query.set(s.name, String(state.settings[s.name]));
    }
    if (state.measured) query.set("measure", "1");
    return `?${query}`;
  }
}
