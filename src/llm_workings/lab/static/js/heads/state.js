// The page's whole state in its URL: the model, the prompt (text or ids), the head shown in depth,
// the grid's order, and the pinned query and key. Loading the URL redraws the same view.
//
// Numbers are parsed only when they look like whole numbers; anything else is passed on as text so
// the server's validation names the field and says what it expects.

import { promptFromQuery, promptToQuery } from "../prompt-input.js";

export const DEFAULT_MODEL = "induction-2l";
export const DEFAULT_TEXT = "Mr. Darcy and Miss Bennet walked to Meryton. Mr. Darcy and Miss Bennet walked home.";
const WHOLE = /^\d+$/;

function number(query, name, fallback) {
  if (!query.has(name)) return fallback;
  const text = query.get(name).trim();
  return WHOLE.test(text) ? Number(text) : text;
}

export class HeadsState {
  constructor(schema) {
    this.sorts = schema.sorts;
  }

  // URL query -> {model, prompt, layer, head, sort, query, key}; prompt is null when the URL has none.
  parse(search) {
    const query = new URLSearchParams(search);
    const sort = query.get("sort");
    return {
      model: query.get("model") || DEFAULT_MODEL,
      prompt: promptFromQuery(search),
      layer: number(query, "layer", 0),
      head: number(query, "head", 0),
      sort: this.sorts.includes(sort) ? sort : "layer",
      query: number(query, "query", null),
      key: number(query, "key", null),
    };
  }

  format(state) {
    const query = new URLSearchParams();
    query.set("model", state.model);
    if (state.prompt) promptToQuery(state.prompt, query);
    query.set("layer", String(state.layer));
    query.set("head", String(state.head));
    if (state.sort !== "layer") query.set("sort", state.sort);
    if (state.query !== null) query.set("query", String(state.query));
    if (state.key !== null) query.set("key", String(state.key));
    return `?${query}`;
  }
}
