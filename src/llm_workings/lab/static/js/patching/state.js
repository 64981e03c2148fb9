// The page's whole state in its URL: the model, both prompts (text or ids), the two answers, every
// setting of the server's table, whether the real sweep was run, the path-patching sender and the
// ablated components. Loading the URL redraws the same view. A model's preset fills in whatever the
// URL leaves out of the pair, so "?model=induction-2l&sweep=1" is a whole experiment.

import { parseIds, promptFromQuery, promptToQuery } from "../prompt-input.js";

const NAMES = { clean: { text: "clean", ids: "clean_ids" }, corrupted: { text: "corrupted", ids: "corrupted_ids" } };
export const DEFAULT_MODEL = "induction-2l";

// An answer as the URL keeps it: ?answer=text or ?answer_id=17.
function answerFromQuery(query, name) {
  if (query.has(`${name}_id`)) {
    const text = query.get(`${name}_id`).trim();
    return { id: /^\d+$/.test(text) ? Number(text) : text };
  }
  return query.has(name) ? { text: query.get(name) } : null;
}

function answerToQuery(answer, query, name) {
  if (!answer) return;
  if (answer.id !== undefined) query.set(`${name}_id`, String(answer.id));
  else query.set(name, answer.text);
}

export class PatchingState {
  constructor(schema) {
    this.table = schema.settings;
    this.presets = schema.presets;
  }

  defaults() {
    return Object.fromEntries(this.table.map((s) => [s.name, s.default]));
  }

  // The preset of `model`, or the closest one: a text model borrows austen-bpe's, a task model induction-2l's.
  preset(model, hasTokenizer) {
    return this.presets[model] ?? this.presets[hasTokenizer ? "austen-bpe" : "induction-2l"];
  }

  parse(search, hasTokenizer = (model) => !["induction-2l", "modadd-113"].includes(model)) {
    const query = new URLSearchParams(search);
    const settings = this.defaults();
    for (const s of this.table) if (query.has(s.name)) settings[s.name] = query.get(s.name).trim();
    const model = query.get("model") || DEFAULT_MODEL;
    const preset = this.preset(model, hasTokenizer(model));
    const list = (name) => (query.get(name) || "").split(",").map((c) => c.trim()).filter(Boolean);
    return {
      model,
      clean: promptFromQuery(search, NAMES.clean) ?? preset.clean,
      corrupted: promptFromQuery(search, NAMES.corrupted) ?? preset.corrupted,
      answer: answerFromQuery(query, "answer") ?? preset.answer,
      wrong: answerFromQuery(query, "wrong") ?? preset.wrong,
      settings,
      sweep: query.get("sweep") === "1",
      sender: query.get("sender") || null,
      ablate: list("ablate"),
    };
  }

  format(state) {
    const query = new URLSearchParams();
    query.set("model", state.model);
    promptToQuery(state.clean, query, NAMES.clean);
    promptToQuery(state.corrupted, query, NAMES.corrupted);
    answerToQuery(state.answer, query, "answer");
    answerToQuery(state.wrong, query, "wrong");
    const defaults = this.defaults();
    for (const s of this.table) if (state.settings[s.name] !== defaults[s.name]) query.set(s.name, String(state.settings[s.name]));
    if (state.sweep) query.set("sweep", "1");
    if (state.sender) query.set("sender", state.sender);
    if (state.ablate.length) query.set("ablate", state.ablate.join(","));
    return `?${query}`;
  }
}

// What the answer box shows, and what it posts: a newline as "\n" (a text box holds one line), an id on a task model.
export function answerText(answer) {
  if (!answer) return "";
  if (answer.id !== undefined) return String(answer.id);
  return answer.text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\t/g, "\\t");
}

export function answerFromText(text, hasTokenizer) {
  if (!hasTokenizer) {
    const [id] = parseIds(text.trim() || "x");
    return { id };
  }
  return { text: text.replace(/\\(\\|n|t)/g, (_, c) => (c === "n" ? "\n" : c === "t" ? "\t" : "\\")) };
}
