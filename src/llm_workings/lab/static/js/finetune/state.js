// The page's whole state in its URL: the job's settings that differ from their defaults, the finished
// run shown, its module, the λ stop and the generation's prompt and seed. Loading the URL redraws it.

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const VIEW = { run: "", module: "", lambda: "", prompt: "ROMEO:", gen_seed: "0" };

export class FineTuneState {
  constructor(schema) {
    this.settings = schema.settings;
    this.defaults = Object.fromEntries(schema.settings.map((s) => [s.name, s.default]));
  }

  parse(search) {
    const query = new URLSearchParams(search);
    const settings = { ...this.defaults };
    for (const s of this.settings) {
      if (!query.has(s.name)) continue;
      const text = query.get(s.name).trim();
      settings[s.name] = (s.kind === "int" || s.kind === "float") && NUMBER.test(text) ? Number(text) : text;
    }
    const view = Object.fromEntries(Object.entries(VIEW).map(([k, v]) => [k, query.get(k) ?? v]));
    return { settings, ...view };
  }

  // What the job posts: only the settings changed from the table's defaults.
  changed(state) {
    return Object.fromEntries(Object.entries(state.settings).filter(([k, v]) => v !== this.defaults[k]));
  }

  format(state) {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(this.changed(state))) query.set(k, String(v));
    for (const [k, v] of Object.entries(VIEW)) if (state[k] !== "" && String(state[k]) !== v) query.set(k, String(state[k]));
    const text = query.toString();
    return text ? `?${text}` : location.pathname;
  }
}
