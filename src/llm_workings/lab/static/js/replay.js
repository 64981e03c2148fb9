// What the two pages that replay training (induction heads, grokking) share: their state in the
// URL (the model, the scrubbed step, the page's settings, seed included, and whether the outcome
// is hidden for a prediction), the one rule numbers are shown by, and fetching every snapshot's
// view ahead so scrubbing never waits.

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export class ReplayState {
  constructor(schema, defaultModel) {
    this.table = schema.settings;
    this.defaultModel = defaultModel;
  }

  defaults() {
    return Object.fromEntries(this.table.map((s) => [s.name, s.default]));
  }

  // URL query -> {model, step, settings, blind}; step null means the last snapshot.
  parse(search) {
    const query = new URLSearchParams(search);
    const settings = this.defaults();
    for (const s of this.table) {
      if (!query.has(s.name)) continue;
      const text = query.get(s.name).trim();
      settings[s.name] = NUMBER.test(text) ? Number(text) : text;
    }
    const step = query.get("step");
    return {
      model: query.get("model") || this.defaultModel,
      step: step !== null && /^\d+$/.test(step) ? Number(step) : null,
      settings,
      blind: query.get("blind") === "1",
    };
  }

  format(state) {
    const query = new URLSearchParams();
    query.set("model", state.model);
    if (state.step !== null) query.set("step", String(state.step));
    const defaults = this.defaults();
    for (const s of this.table) {
      if (state.settings[s.name] !== defaults[s.name]) query.set(s.name, String(state.settings[s.name]));
    }
    if (state.blind) query.set("blind", "1");
    return `?${query}`;
  }
}

/** A number as the pages show it: 4 significant digits (the full value goes in data-value). */
export function sig4(value) {
  return Number.isFinite(value) ? String(Number(value.toPrecision(4))) : "—";
}

/** Sets an element's text to sig4(value) and its data-value to the full value. */
export function showNumber(element, value) {
  element.textContent = sig4(value);
  element.dataset.value = String(value);
}

/** Fetches fetchOne(step) for every step, `parallel` at a time, into `into` (a Map step -> answer);
 * resolves when all are in. A step already in the map is not fetched again. */
export async function fetchAhead(steps, fetchOne, into, parallel = 4) {
  const queue = steps.filter((s) => !into.has(s));
  const worker = async () => {
    while (queue.length) {
      const step = queue.shift();
      into.set(step, await fetchOne(step));
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, queue.length) }, worker));
  return into;
}
