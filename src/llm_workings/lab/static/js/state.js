// The page's whole state in its URL, built from the server's settings table
// (as TensorFlow Playground's state.ts does): every setting, seed included, plus the
// step reached, the live changes made on the way, and the example of the batch being
// followed. Loading such a URL replays the run exactly.
//
// Values are parsed only as far as their kind says; anything malformed is passed on
// as text so the server's validation names the field and says what it expects.

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function number(text) {
  return NUMBER.test(text) ? Number(text) : text;
}

function parseValue(setting, text) {
  switch (setting.kind) {
    case "choice":
      return text;
    case "int_list":
      return text.trim() === "" ? [] : text.split(",").map((t) => number(t.trim()));
    default:
      return number(text.trim());
  }
}

function formatValue(setting, value) {
  if (setting.kind === "int_list") return value.join(",");
  return String(value); // a JS number prints as the shortest text that reads back to the same double
}

// "12:learning_rate:0.1,40:reg_rate:0.01" <-> [[12, "learning_rate", 0.1], [40, "reg_rate", 0.01]]
function parseChanges(text) {
  if (text.trim() === "") return [];
  return text.split(",").map((entry) => {
    const parts = entry.split(":");
    return parts.length === 3 ? [number(parts[0]), parts[1], number(parts[2])] : entry;
  });
}

function formatChanges(changes) {
  return changes.map(([step, name, value]) => `${step}:${name}:${value}`).join(",");
}

// Readable URLs: keep the characters that need no escaping in a query value.
function encode(text) {
  return encodeURIComponent(text).replace(/%2C/g, ",").replace(/%3A/g, ":");
}

export class UrlState {
  constructor(schema) {
    this.table = schema.settings;
    this.byName = Object.fromEntries(this.table.map((s) => [s.name, s]));
  }

  defaults() {
    return Object.fromEntries(this.table.map((s) => [s.name, Array.isArray(s.default) ? [...s.default] : s.default]));
  }

  // URL query -> {settings, step, changes, example}. Missing settings take their defaults.
  // Unknown names go to the server too, which refuses them by name.
  parse(search) {
    const params = new URLSearchParams(search);
    const settings = this.defaults();
    let step = 0;
    let changes = [];
    let example = 0;
    for (const [key, text] of params) {
      if (key === "step") step = number(text.trim());
      else if (key === "example") example = number(text.trim());
      else if (key === "changes") changes = parseChanges(text);
      else if (this.byName[key]) settings[key] = parseValue(this.byName[key], text);
      else settings[key] = text;
    }
    return { settings, step, changes, example };
  }

  // {settings, step, changes} -> "?dataset=xor&...": every setting in table order, then the page keys.
  format({ settings, step = 0, changes = [], example = 0 }) {
    const parts = this.table.map((s) => `${s.name}=${encode(formatValue(s, settings[s.name]))}`);
    if (step) parts.push(`step=${step}`);
    if (changes.length) parts.push(`changes=${encode(formatChanges(changes))}`);
    if (example) parts.push(`example=${example}`);
    return "?" + parts.join("&");
  }
}
