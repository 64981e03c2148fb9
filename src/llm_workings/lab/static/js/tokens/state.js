// The page's whole state in its URL: the model, the text, the selected token, every setting of
// the server's table (seed included) and whether a sample was drawn. Loading the URL redraws the
// same view and draws the same sample.
//
// Numbers are parsed only when they look like numbers; anything else is passed on as text so
// the server's validation names the field and says what it expects.

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export const DEFAULT_MODEL = "shakespeare-char";
export const DEFAULT_TEXT = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun.";

export class TokensState {
  constructor(schema) {
    this.table = schema.settings;
  }

  defaults() {
    return Object.fromEntries(this.table.map((s) => [s.name, s.default]));
  }

  // URL query -> {model, text, select, settings, sampled}; select is a token index or null (the end).
  parse(search) {
    const query = new URLSearchParams(search);
    const settings = this.defaults();
    for (const s of this.table) {
      if (!query.has(s.name)) continue;
      const text = query.get(s.name).trim();
      settings[s.name] = NUMBER.test(text) ? Number(text) : text;
    }
    const select = query.get("select");
    return {
      model: query.get("model") || DEFAULT_MODEL,
      text: query.has("text") ? query.get("text") : DEFAULT_TEXT,
      select: select !== null && /^\d+$/.test(select) ? Number(select) : null,
      settings,
      sampled: query.get("sample") === "1",
    };
  }

  // Only what differs from the defaults, so a shared URL stays short; the model always.
  format(state) {
    const query = new URLSearchParams();
    query.set("model", state.model);
    if (state.text !== DEFAULT_TEXT) query.set("text", state.text);
    if (state.select !== null) query.set("select", String(state.select));
    const defaults = this.defaults();
    for (const s of this.table) {
      if (state.settings[s.name] !== defaults[s.name]) query.set(s.name, String(state.settings[s.name]));
    }
    if (state.sampled) query.set("sample", "1");
    return `?${query}`;
  }
}
