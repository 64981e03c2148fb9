// The prompt box every model page shares: the learner's text (or token ids, for a model with no
// text tokenizer or a sequence no text spells), shown as the tokens the model will read.
//
//   import { promptInput, promptFromQuery, promptToQuery } from "/static/js/prompt-input.js";
//   const box = promptInput(element, {
//     model: "induction-2l",                 // a catalog id
//     value: promptFromQuery(location.search) ?? { text: "Once upon a time" },
//     maxTokens: 256,                         // optional: a page limit below the model's n_ctx
//     onChange(prompt, tokenized) {},         // after the server tokenized an edit: {text}|{ids}, and
//                                             // {ids, str_tokens, bos, n_ctx, d_vocab, has_tokenizer}
//     onError(error) {},                      // the server refused the prompt (ApiError, field "prompt")
//   });
//   await box.ready;  box.value;  box.tokenized;  box.setModel(id);  box.setValue(prompt);  box.destroy();
//
// Tokenizing is the server's (POST /api/prompts/tokenize), so what the box shows is exactly what
// the page's request will read; "Repeated random tokens" asks POST /api/prompts/repeated.

import { request } from "/static/js/api.js";
import { tokenStrip } from "/static/js/views/token-strip.js";

const STYLESHEET = "/static/css/prompt-input.css";

function ensureStylesheet() {
  if ([...document.querySelectorAll('link[rel="stylesheet"]')].some((l) => l.getAttribute("href") === STYLESHEET)) return;
  document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href: STYLESHEET }));
}

// "3, 17 5" -> [3, 17, 5]; anything that is not a list of integers is passed on for the server to name.
export function parseIds(text) {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  return parts.map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

// The prompt kept in a URL: ?text=... or ?ids=1,2,3 (null when the query has neither).
export function promptFromQuery(search, names = { text: "text", ids: "ids" }) {
  const query = new URLSearchParams(search);
  if (query.has(names.ids)) return { ids: parseIds(query.get(names.ids)) };
  if (query.has(names.text)) return { text: query.get(names.text) };
  return null;
}

export function promptToQuery(prompt, query, names = { text: "text", ids: "ids" }) {
  query.delete(names.text);
  query.delete(names.ids);
  if (prompt.ids) query.set(names.ids, prompt.ids.join(","));
  else query.set(names.text, prompt.text);
  return query;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  node.append(...children);
  return node;
}

export function promptInput(container, options) {
  ensureStylesheet();
  const opts = { debounceMs: 300, maxTokens: null, onChange: () => {}, onError: () => {}, ...options };
  let model = opts.model;
  let value = opts.value ?? { text: "" };
  let tokenized = null;
  let timer = null;
  let seed = 0;
  let generation = 0;

  const textMode = el("button", { type: "button", class: "lw-prompt-mode", "data-mode": "text", text: "Text" });
  const idsMode = el("button", { type: "button", class: "lw-prompt-mode", "data-mode": "ids", text: "Token ids" });
  const repeat = el("button", { type: "button", class: "lw-prompt-repeat", text: "Repeated random tokens" });
  repeat.title = "A random sequence, then the same sequence again: where induction heads show themselves";
  const area = el("textarea", { class: "lw-prompt-text", rows: "3", spellcheck: "false", "aria-label": "Prompt" });
  const count = el("span", { class: "lw-prompt-count small" });
  const error = el("p", { class: "lw-prompt-error", role: "alert" });
  const strip = el("div", { class: "lw-prompt-tokens" });
  container.replaceChildren(
    el("div", { class: "lw-prompt-bar" }, el("span", { class: "lw-prompt-modes", role: "group", "aria-label": "Prompt as" }, textMode, idsMode), repeat, count),
    area,
    error,
    strip,
  );
  container.classList.add("lw-prompt");

  function showValue() {
    const ids = value.ids !== undefined;
    area.value = ids ? value.ids.join(", ") : value.text;
    textMode.setAttribute("aria-pressed", String(!ids));
    idsMode.setAttribute("aria-pressed", String(ids));
  }

  function showTokens(out) {
    const limit = opts.maxTokens ? Math.min(opts.maxTokens, out.n_ctx) : out.n_ctx;
    count.textContent = `${out.ids.length} of at most ${limit} tokens`;
    textMode.disabled = !out.has_tokenizer;
    tokenStrip(strip, { tokens: out.str_tokens.map((text, i) => ({ text, id: out.ids[i] })) }, { title: "What the model reads", legend: false });
  }

  async function tokenize(notify) {
    const mine = ++generation;
    try {
      const out = await request("POST", "/api/prompts/tokenize", { model, prompt: value });
      if (mine !== generation) return;
      const limit = opts.maxTokens ? Math.min(opts.maxTokens, out.n_ctx) : out.n_ctx;
      if (out.ids.length > limit) throw Object.assign(new Error(`the prompt is ${out.ids.length} tokens; this page shows at most ${limit}`), { field: "prompt" });
      tokenized = out;
      error.textContent = "";
      container.classList.remove("lw-invalid");
      showTokens(out);
      if (notify) opts.onChange(value, out);
    } catch (e) {
      if (mine !== generation) return;
      tokenized = null;
      error.textContent = e.message;
      container.classList.add("lw-invalid");
      opts.onError(e);
    }
  }

  function edited() {
    value = value.ids !== undefined ? { ids: parseIds(area.value) } : { text: area.value };
    clearTimeout(timer);
    timer = setTimeout(() => tokenize(true), opts.debounceMs);
  }

  function switchMode(toIds) {
    if (toIds === (value.ids !== undefined)) return;
    // Text becomes the ids it tokenized to (when it did); ids become the text they decode to.
    if (toIds) value = { ids: tokenized ? tokenized.ids : [] };
    else value = { text: tokenized ? tokenized.str_tokens.slice(tokenized.bos ? 1 : 0).join("") : "" };
    showValue();
    tokenize(true);
  }

  async function repeated() {
    seed += 1;
    const body = { model, seed };
    if (opts.maxTokens) body.max_tokens = opts.maxTokens;
    try {
      const out = await request("POST", "/api/prompts/repeated", body);
      value = { ids: out.ids };
      showValue();
      await tokenize(true);
    } catch (e) {
      error.textContent = e.message;
      opts.onError(e);
    }
  }

  area.addEventListener("input", edited);
  textMode.addEventListener("click", () => switchMode(false));
  idsMode.addEventListener("click", () => switchMode(true));
  repeat.addEventListener("click", repeated);
  showValue();

  return {
    ready: tokenize(false),
    get value() {
      return value;
    },
    get tokenized() {
      return tokenized;
    },
    get model() {
      return model;
    },
    // A new model re-reads the same prompt; text on a model with no tokenizer is refused by name.
    setModel(id, { notify = true } = {}) {
      model = id;
      return tokenize(notify);
    },
    setValue(prompt, { notify = false } = {}) {
      value = prompt;
      showValue();
      return tokenize(notify);
    },
    repeated,
    destroy() {
      clearTimeout(timer);
      generation++;
      container.replaceChildren();
      container.classList.remove("lw-prompt", "lw-invalid");
    },
  };
}
