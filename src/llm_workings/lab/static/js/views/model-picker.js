// The model picker: a <select> of the lab's models (GET /api/models), grouped by where they come
// from, each with its task and size. It knows no page: the page says which models fit it.
//
//   const picker = modelPicker(element, {
//     value: "shakespeare-char",                 // the model to show selected (e.g. from the URL)
//     filter: {hasTokenizer: true},              // or {task: ["char-lm", "bpe-lm"]}, or (entry) => bool
//     onChange(id, entry) { ... },               // the user picked a model
//   });
//   await picker.ready;                          // the list has arrived (resolves to the picker)
//   picker.value; picker.entry;                  // the selected id and its catalog entry
//   picker.setValue(id);                         // select without calling onChange
//   await picker.refresh();                      // fetch the list again (a run just finished)
//   picker.destroy();
//
// A model the server cannot load is listed, disabled, with its reason as the option's tooltip.
// When `value` is not among the models offered, the first available one is selected and onChange
// is called with it, so the page and the picker agree. If the list cannot be fetched, the element
// says so (role="alert").

import { request } from "../api.js";

const GROUPS = [
  ["zoo", "Bundled models"],
  ["cli", "From the command line"],
  ["run", "Your training runs"],
];

export function formatParameters(n) {
  if (n == null) return "size unknown";
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}B params`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M params`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}k params`;
  return `${n} params`;
}

export function optionText(entry) {
  const text = `${entry.label} · ${entry.task} · ${formatParameters(entry.parameters)}`;
  return entry.available ? text : `${text} (unavailable)`;
}

function asPredicate(filter) {
  if (!filter) return () => true;
  if (typeof filter === "function") return filter;
  const tasks = filter.task == null ? null : [].concat(filter.task);
  return (entry) =>
    (tasks == null || tasks.includes(entry.task)) &&
    (filter.hasTokenizer == null || entry.has_tokenizer === filter.hasTokenizer) &&
    (filter.source == null || [].concat(filter.source).includes(entry.source));
}

export function modelPicker(element, { value = null, filter = null, onChange = () => {}, label = "Model", url = "/api/models" } = {}) {
  const keep = asPredicate(filter);
  let entries = [];
  let current = value;

  element.replaceChildren();
  element.classList.add("lw-model-picker");
  const id = `lw-model-${Math.random().toString(36).slice(2, 9)}`;
  const caption = document.createElement("label");
  caption.htmlFor = id;
  caption.textContent = label;
  const select = document.createElement("select");
  select.id = id;
  select.disabled = true;
  const note = document.createElement("p");
  note.className = "lw-model-note";
  note.style.margin = "0.25em 0 0";
  note.style.fontSize = "0.9em";
  element.append(caption, " ", select, note);

  const byId = (modelId) => entries.find((e) => e.id === modelId) || null;

  function describe() {
    const entry = byId(current);
    note.removeAttribute("role");
    note.textContent = entry ? entry.description || "" : "";
  }

  function render() {
    const offered = entries.filter(keep);
    const groups = GROUPS.map(([source, title]) => {
      const members = offered.filter((e) => e.source === source);
      if (!members.length) return null;
      const group = document.createElement("optgroup");
      group.label = title;
      for (const entry of members) {
        const option = document.createElement("option");
        option.value = entry.id;
        option.textContent = optionText(entry);
        option.disabled = !entry.available;
        option.title = entry.available ? entry.description : entry.reason || "cannot be loaded";
        group.append(option);
      }
      return group;
    }).filter(Boolean);
    select.replaceChildren(...groups);
    select.disabled = !offered.some((e) => e.available);
    if (!offered.length) note.textContent = "No model here fits this page.";
    const wanted = offered.find((e) => e.id === current && e.available);
    if (wanted) {
      select.value = current;
      describe();
      return;
    }
    const first = offered.find((e) => e.available);
    if (!first) {
      current = null;
      return;
    }
    current = first.id;
    select.value = current;
    describe();
    onChange(current, first);
  }

  select.addEventListener("change", () => {
    current = select.value;
    describe();
    onChange(current, byId(current));
  });

  async function refresh() {
    try {
      entries = (await request("GET", url)).models;
      render();
    } catch (error) {
      select.disabled = true;
      note.setAttribute("role", "alert");
      note.textContent = `Could not list the models: ${error.message}`;
    }
    return picker;
  }

  const picker = {
    element,
    select,
    get value() {
      return current;
    },
    get entry() {
      return byId(current);
    },
    get entries() {
      return entries.filter(keep);
    },
    setValue(modelId) {
      current = modelId;
      if (byId(modelId)) {
        select.value = modelId;
        describe();
      }
    },
    refresh,
    destroy() {
      element.replaceChildren();
      element.classList.remove("lw-model-picker");
    },
  };
  picker.ready = refresh();
  return picker;
}
