// The Features page's whole state in its URL: the model, the SAE, the open latent, the list's order,
// the list's first rank, the learner's text (or ids) and the token whose latents are shown. Loading the URL redraws the view.

import { promptFromQuery, promptToQuery } from "../prompt-input.js";

export const DEFAULT_MODEL = "shakespeare-char";
export const DEFAULT_PROMPT = { text: "ROMEO:\nBut soft, what light through yonder window breaks?" };
const SORTS = ["density", "text"];

function integer(text) {
  return text !== null && /^-?\d+$/.test(text.trim()) ? Number(text) : null;
}

export function parseState(search) {
  const query = new URLSearchParams(search);
  const sort = query.get("sort");
  return {
    model: query.get("model") || DEFAULT_MODEL,
    sae: query.get("sae") || null,
    latent: integer(query.get("latent")),
    sort: SORTS.includes(sort) ? sort : "density",
    prompt: promptFromQuery(search) ?? DEFAULT_PROMPT,
    token: integer(query.get("token")),
    from: Math.max(0, integer(query.get("from")) ?? 0), // the list's first rank
  };
}

export function formatState(state) {
  const query = new URLSearchParams();
  query.set("model", state.model);
  if (state.sae) query.set("sae", state.sae);
  if (state.latent !== null) query.set("latent", String(state.latent));
  if (state.sort !== "density") query.set("sort", state.sort);
  if (state.prompt.ids || state.prompt.text !== DEFAULT_PROMPT.text) promptToQuery(state.prompt, query);
  if (state.token !== null) query.set("token", String(state.token));
  if (state.from) query.set("from", String(state.from));
  return `?${query}`;
}
