// What the two pages that replay training (induction heads, grokking) share: their state in the
// URL (the model, the scrubbed step, the page's settings, seed included, and whether the outcome
// is hidden for a prediction), the one rule numbers are shown by, and fetching every snapshot's
// view ahead so scrubbing never waits.

import { modelPicker } from "./views/model-picker.js";
import { scrubber } from "./views/scrubber.js";

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

/**
 * What a replay page does besides drawing: the model picker, the URL, requests in flight (`pending`,
 * which the browser tests wait on), the refusal banner, and the snapshots fetched ahead. A page
 * subclasses it with `seriesRequest()`, `snapshotRequest(step)`, `decodeSeries`, `decodeSnapshot`,
 * `drawSeries()` (which calls `this.mountScrubber`) and `drawStep(index, view)`.
 */
export class ReplayPage {
  constructor(urlState, { pickerFilter }) {
    this.urlState = urlState;
    this.state = urlState.parse(location.search);
    this.pickerFilter = pickerFilter;
    this.series = null;
    this.snapshots = new Map(); // step -> decoded snapshot view, fetched ahead
    this.pending = 0;
    this.asked = 0;
  }

  $(id) {
    return document.getElementById(id);
  }

  async start() {
    let ready = false;
    this.picker = modelPicker(this.$("model-picker"), {
      value: this.state.model,
      filter: this.pickerFilter,
      onChange: (id) => ready && this.setModel(id),
    });
    await this.picker.ready;
    ready = true;
    await this.show();
  }

  async track(request) {
    this.pending += 1;
    try {
      return await request;
    } finally {
      this.pending -= 1;
    }
  }

  writeUrl() {
    history.replaceState(null, "", this.urlState.format(this.state));
  }

  async applyQuery(href) {
    this.state = this.urlState.parse(new URL(href, location.href).search);
    this.picker.setValue(this.state.model);
    await this.show();
  }

  // The request's identity: a new one means a new series.
  seriesKey() {
    return JSON.stringify({ model: this.state.model, ...this.state.settings });
  }

  async show() {
    this.controls?.set(this.state.settings);
    document.body.classList.toggle("blind", this.state.blind);
    const key = this.seriesKey();
    if (this.shownKey !== key) {
      const asked = ++this.asked;
      this.$("status").textContent = "Replaying the snapshots…";
      try {
        const series = await this.track(this.seriesRequest());
        if (asked !== this.asked) return;
        this.clearRefusal();
        this.shownKey = key;
        this.snapshots = new Map();
        this.series = this.decodeSeries(series);
        this.drawSeries();
      } catch (error) {
        if (asked !== this.asked) return;
        this.refuse(error);
        this.$("status").textContent = "";
        return;
      }
    }
    const steps = this.series.steps;
    const index = this.state.step === null ? steps.length - 1 : Math.max(0, steps.indexOf(this.state.step));
    this.scrub.select(index, { notify: false });
    await this.showStep(index);
    this.fetchAll();
  }

  mountScrubber(element, steps, bands) {
    if (this.scrub) this.scrub.update({ steps }, { bands, index: steps.length - 1 });
    else this.scrub = scrubber(element, { steps }, { bands, index: steps.length - 1, onChange: (index) => this.scrubTo(index) });
  }

  // Every snapshot's view, fetched ahead so scrubbing draws from memory (resolves when all are in).
  fetchAll() {
    const key = this.shownKey;
    const one = (step) => this.snapshotRequest(step).then((s) => this.decodeSnapshot(s));
    this.allFetched = this.track(fetchAhead(this.series.steps, one, this.snapshots)).then(() => key === this.shownKey);
    return this.allFetched;
  }

  setModel(id) {
    this.state.model = id;
    this.state.step = null;
    this.writeUrl();
    this.show();
  }

  setSetting(name, value) {
    this.state.settings[name] = value;
    this.writeUrl();
    this.show();
  }

  refuse(error) {
    const banner = this.$("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
    this.controls?.flag(error.field);
  }

  clearRefusal() {
    this.$("banner").hidden = true;
    this.controls?.flag(null);
  }

  scrubTo(index) {
    this.state.step = this.series.steps[index];
    this.writeUrl();
    this.showStep(index);
  }

  async showStep(index) {
    const step = this.series.steps[index];
    this.drawSeriesAt(index);
    let view = this.snapshots.get(step);
    if (!view) {
      const key = this.shownKey;
      try {
        view = this.decodeSnapshot(await this.track(this.snapshotRequest(step)));
      } catch (error) {
        this.refuse(error);
        return;
      }
      if (key !== this.shownKey) return;
      this.snapshots.set(step, view);
    }
    if (this.series.steps[this.scrub.selected] !== step) return; // scrubbed on meanwhile
    this.drawStep(view);
  }
}

/** Runs a page: builds it, exposes it on window[name] (for the browser tests and the console), starts it. */
export async function runPage(name, build) {
  try {
    const page = await build();
    window[name] = page;
    await page.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    const banner = document.getElementById("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
  }
}
