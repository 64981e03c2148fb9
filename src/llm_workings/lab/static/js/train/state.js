// The page's whole state in its URL: the recipe, every setting of its table that differs from the
// recipe's own value, and the run's name. Loading the URL fills the same form.
//
// Numbers are parsed only when they look like numbers; anything else is passed on as text so the
// server's check names the setting and says what it expects.

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export class TrainState {
  constructor(schema) {
    this.recipes = Object.fromEntries(schema.recipes.map((r) => [r.name, r]));
    this.first = schema.recipes[0].name;
  }

  defaults(recipe) {
    return Object.fromEntries(this.recipes[recipe].settings.map((s) => [s.name, s.default]));
  }

  // URL query -> {recipe, settings, name}; settings holds every setting of the recipe's table.
  parse(search) {
    const query = new URLSearchParams(search);
    const recipe = this.recipes[query.get("recipe")] ? query.get("recipe") : this.first;
    const settings = this.defaults(recipe);
    for (const s of this.recipes[recipe].settings) {
      if (!query.has(s.name)) continue;
      const text = query.get(s.name).trim();
      settings[s.name] = NUMBER.test(text) ? Number(text) : text;
    }
    return { recipe, settings, name: query.get("name") || "" };
  }

  // What the run changes from its recipe: the overrides posted, and the URL's settings.
  overrides(state) {
    const defaults = this.defaults(state.recipe);
    return Object.fromEntries(Object.entries(state.settings).filter(([k, v]) => v !== defaults[k]));
  }

  format(state) {
    const query = new URLSearchParams({ recipe: state.recipe });
    for (const [k, v] of Object.entries(this.overrides(state))) query.set(k, String(v));
    if (state.name) query.set("name", state.name);
    return `?${query}`;
  }
}
