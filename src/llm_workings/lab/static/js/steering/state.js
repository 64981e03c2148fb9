// The Steering page's whole state in its URL: the shared model, prompt and settings (url-state.js),
// and whether the sweep was measured. Loading the URL redraws the same vector, the same two seeded
// generations and the same sweep.

import { UrlState } from "../url-state.js";

export const DEFAULT_MODEL = "austen-bpe";
export const DEFAULT_PROMPT = { text: "She walked into the drawing-room, and" };

export class SteeringState extends UrlState {
  constructor(schema) {
    super(schema.settings, { model: DEFAULT_MODEL, prompt: DEFAULT_PROMPT });
  }

  parse(search) {
    return { ...super.parse(search), measured: new URLSearchParams(search).get("measure") === "1" };
  }

  format(state) {
    const query = super.format(state);
    return state.measured ? `${query}&measure=1` : query;
  }
}
