// The Backprop page: wires the settings table, the run, the views and the lesson together,
// and runs the animation loop.
//
// The loop runs every frame and redraws each canvas whose content changed since the last
// frame (a new state, a hover, a resize), always from the latest state. While playing it
// keeps exactly one step request in flight; most ask for no parameter history (smaller,
// faster answers), one every half second does. The typeset math is refreshed at most
// four times a second while playing, and at once when paused.

import { ApiError, backprop } from "./api.js";
import { LossChart, ParameterChart, CURVES } from "./charts.js";
import { ComputationView } from "./computation.js";
import { Controls } from "./controls.js";
import { DecisionView } from "./decision.js";
import { isFull } from "./equations.js";
import { fmt, percent } from "./format.js";
import { Lesson } from "./lesson.js";
import { typeset } from "./math.js";
import { NetworkView } from "./network.js";
import { Session } from "./session.js";
import { UrlState } from "./state.js";

const $ = (selector) => document.querySelector(selector);
const HISTORY_EVERY_MS = 500;
const MATH_EVERY_MS = 250;
const URL_EVERY_MS = 1000;


class Page {
  constructor(schema) {
    this.schema = schema;
    this.url = new UrlState(schema);
    this.hiddenSetting = schema.settings.find((s) => s.kind === "int_list");
    this.playing = false;
    this.until = null; // pause when the run reaches this step
    this.waiters = [];
    this.focus = [];
    this.frames = 0;
    this.frameTimes = [];
    this.lastHistory = 0;
    this.lastMath = 0;
    this.lastUrl = 0;
    this.mathDirty = false;
    this.urlDirty = false;

    this.session = new Session({ onState: (s) => this.onState(s), onError: (e) => this.onError(e) });
    this.controls = new Controls(schema, { data: $("#settings-data"), network: $("#settings-network"), training: $("#settings-training"), seed: $("#settings-seed") }, (n, v) =>
      this.onSetting(n, v),
    );
    this.network = new NetworkView({
      canvas: $("#network"),
      tooltip: $("#tooltip"),
      arch: $("#arch"),
      limits: { minUnits: this.hiddenSetting.min, maxUnits: this.hiddenSetting.max, maxLayers: this.hiddenSetting.max_length },
      onArchitecture: (hidden) => this.restart({ hidden }),
      onFocus: (layer, unit) => this.setFocus(layer, unit),
    });
    this.decision = new DecisionView({ canvas: $("#decision"), xorTable: $("#xor") });
    this.lossChart = new LossChart($("#loss-chart"));
    this.paramChart = new ParameterChart($("#param-chart"));
    this.computation = new ComputationView({
      root: $("#computation"),
      examples: $("#examples"),
      formulas: schema.formulas,
      onExample: (b) => this.session.selectExample(b),
      onFocus: (layer, unit) => this.setFocus(layer, unit),
    });
    this.lesson = new Lesson($("#lesson"), this);
    this.buildMetrics();
    this.buildLegend();
    this.wireToolbar();
    this.renderGlossary();
    window.addEventListener("popstate", () => this.loadFromUrl());
    window.addEventListener("pagehide", () => this.session.close());
    requestAnimationFrame((t) => this.frame(t));
  }

  // -- the run -------------------------------------------------------------------------

  // The settings a new run would start from: the run's, with the live values as they are now.
  current() {
    const base = this.session.settings ?? this.url.defaults();
    const live = this.session.state?.settings ?? {};
    return { ...base, ...Object.fromEntries(this.schema.live.filter((n) => n in live).map((n) => [n, live[n]])) };
  }

  async loadFromUrl() {
    const { settings, step, changes, example } = this.url.parse(location.search);
    this.pause();
    this.session.example = example;
    this.focus = [];
    this.controls.set(settings);
    return this.session.start(settings, step, changes);
  }

  restart(overrides) {
    this.pause();
    const settings = { ...this.current(), ...overrides };
    if (overrides.hidden) this.focus = [];
    this.controls.set(settings);
    return this.session.start(settings, 0, []).then((state) => {
      if (state) this.writeUrl(true);
      else this.controls.set(this.current()); // refused: show the run's settings again
      return state;
    });
  }

  // Show a URL's state (a "try this" link or a checkpoint): a new history entry, then a new run.
  async applyQuery(query, { play = false, until = null } = {}) {
    history.pushState(null, "", query);
    const state = await this.loadFromUrl();
    if (state && play) return this.play(until);
    return state;
  }

  onSetting(name, value) {
    if (name === "output") {
      const allowed = this.schema.losses_for_output[value] ?? [];
      this.controls.limitChoices("loss", allowed);
      const loss = allowed.includes(this.current().loss) ? this.current().loss : allowed[0];
      return this.restart({ output: value, loss });
    }
    // A live setting changes mid-run and is recorded for replay; at step 0 it simply starts the run.
    if (this.schema.live.includes(name) && this.session.ready() && this.session.state.step > 0) {
      return this.session.setLive({ [name]: value }).then((state) => {
        if (state) this.writeUrl(true);
        else this.controls.set(this.current());
      });
    }
    return this.restart({ [name]: value });
  }

  onState(state) {
    this.hideBanner(!state.error);
    if (state.error) {
      this.pause();
      this.showBanner(state.error.message, `Training stopped at step ${state.step}`, "diverged");
    } else if (state.run_id !== this.noticedRun) {
      this.noticedRun = state.run_id;
      if (state.notices.length) this.showBanner(state.notices.join(" "), "Note", "notice");
      else this.hideBanner(false);
    }
    const settings = state.settings;
    this.controls.set({ ...this.session.settings, ...Object.fromEntries(this.schema.live.map((n) => [n, settings[n]])) });
    this.controls.limitChoices("loss", this.schema.losses_for_output[settings.output]);
    this.network.setState(state);
    this.network.setFocus(this.focus, !isFull(state.network.sizes));
    this.decision.setData(this.session.data);
    this.decision.setState(state);
    this.lossChart.setState(state);
    this.paramChart.setParameters(this.session.parameters);
    this.updateMetrics(state);
    $("#step").textContent = String(state.step);
    $("#back").disabled = !state.can_step_back;
    this.mathDirty = true;
    this.urlDirty = true;
    if (!this.playing) {
      this.showMath();
      this.writeUrl(true);
    }
    if (this.until !== null && state.step >= this.until) this.pause();
  }

  onError(error) {
    this.pause();
    const field = error instanceof ApiError ? error.field : null;
    if (error.status === 404 && field === "run_id" && !this.recovering) {
      // The server forgot this tab's run (it keeps the most recently used ones): replay it from the URL.
      this.recovering = true;
      this.loadFromUrl().finally(() => (this.recovering = false));
      return;
    }
    this.controls.flag(field);
    this.showBanner(error.message, field ? `The server refused “${field}”` : "Something went wrong", "refused", !this.session.ready());
  }

  // -- playing -----------------------------------------------------------------------------

  play(until = null) {
    if (!this.session.ready()) return Promise.resolve(null);
    this.until = until;
    if (until !== null && this.session.state.step >= until) return Promise.resolve(this.session.state);
    this.playing = true;
    this.updatePlayButton();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  pause() {
    const was = this.playing;
    this.playing = false;
    this.until = null;
    this.updatePlayButton();
    if (was) {
      this.showMath();
      this.writeUrl(true);
    }
    const waiters = this.waiters.splice(0);
    for (const resolve of waiters) resolve(this.session.state);
  }

  updatePlayButton() {
    const button = $("#play");
    button.setAttribute("aria-label", this.playing ? "Pause" : "Play");
    button.title = this.playing ? "Pause (space)" : "Play (space)";
    button.classList.toggle("playing", this.playing);
  }

  frame(now) {
    this.frames++;
    this.frameTimes.push(now);
    if (this.frameTimes.length > 240) this.frameTimes.splice(0, 120);
    if (this.playing && !this.session.busy) {
      let steps = Number($("#speed").value);
      if (this.until !== null) steps = Math.max(1, Math.min(steps, this.until - this.session.state.step));
      const history = now - this.lastHistory >= HISTORY_EVERY_MS;
      if (history) this.lastHistory = now;
      this.session.step(steps, history);
    }
    if (this.session.state) {
      this.network.draw();
      this.decision.draw();
      this.lossChart.draw();
      this.paramChart.draw();
    }
    if (this.mathDirty && (!this.playing || now - this.lastMath >= MATH_EVERY_MS)) {
      this.lastMath = now;
      this.showMath();
    }
    if (this.urlDirty && now - this.lastUrl >= URL_EVERY_MS) this.writeUrl(true);
    requestAnimationFrame((t) => this.frame(t));
  }

  fps() {
    const t = this.frameTimes;
    const now = t[t.length - 1];
    const recent = t.filter((x) => x >= now - 1000);
    if (recent.length < 2) return 0;
    return ((recent.length - 1) * 1000) / (recent[recent.length - 1] - recent[0]);
  }

  showMath() {
    if (!this.session.state) return;
    this.mathDirty = false;
    this.computation.show(this.session.state, this.focus);
  }

  setFocus(layer, unit) {
    this.focus[layer] = unit;
    if (this.session.state) this.network.setFocus(this.focus, !isFull(this.session.state.network.sizes));
    this.showMath();
  }

  writeUrl(replace) {
    const s = this.session.state;
    if (!s || !this.session.settings) return;
    this.urlDirty = false;
    this.lastUrl = performance.now();
    const query = this.url.format({ settings: this.session.settings, step: s.step, changes: s.changes, example: s.trace?.example ?? this.session.example });
    if (query !== location.search) history[replace ? "replaceState" : "pushState"](null, "", query);
  }

  // -- page furniture ----------------------------------------------------------------------

  wireToolbar() {
    $("#play").addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    $("#forward").addEventListener("click", () => {
      this.pause();
      this.session.step(1, true);
    });
    $("#back").addEventListener("click", () => {
      this.pause();
      this.session.back(1);
    });
    $("#reset").addEventListener("click", () => this.restart({}));
    $("#new-seed").addEventListener("click", () => this.restart({ seed: Math.floor(Math.random() * 2 ** 31) }));
    $("#export").addEventListener("click", () => this.exportRun());
    $("#share").addEventListener("click", () => this.share());
    $("#layers-add").addEventListener("click", () => this.changeLayers(+1));
    $("#layers-remove").addEventListener("click", () => this.changeLayers(-1));
    $("#log-scale").addEventListener("change", (e) => (this.lossChart.log = e.target.checked));
    $("#export-close").addEventListener("click", () => $("#export-dialog").close());
    $("#export-copy").addEventListener("click", () => navigator.clipboard?.writeText($("#export-python").textContent).catch(() => {}));
    $("#network").addEventListener("mousemove", () => {
      const h = this.network.hover;
      this.paramChart.setHighlight(h?.kind === "edge" ? `W${h.layer + 1}[${h.to},${h.from}]` : null);
    });
    document.addEventListener("keydown", (e) => {
      if (e.target.closest("input, select, textarea, button, dialog") || e.altKey || e.ctrlKey || e.metaKey) return;
      if (e.key === " ") {
        e.preventDefault();
        $("#play").click();
      } else if (e.key === "ArrowRight") $("#forward").click();
      else if (e.key === "ArrowLeft" && !$("#back").disabled) $("#back").click();
    });
  }

  changeLayers(delta) {
    const hidden = [...this.current().hidden];
    if (delta > 0 && hidden.length < this.hiddenSetting.max_length) hidden.push(hidden[hidden.length - 1] ?? 4);
    else if (delta < 0 && hidden.length > 0) hidden.pop();
    else return;
    this.restart({ hidden });
  }

  updateLayerButtons(state) {
    const n = state.network.sizes.length - 2;
    $("#layers-count").textContent = `${n} hidden layer${n === 1 ? "" : "s"}`;
    $("#layers-add").disabled = n >= this.hiddenSetting.max_length;
    $("#layers-remove").disabled = n <= 0;
  }

  buildMetrics() {
    const cells = (kind) => ["train", "test", "clean"].map((set) => `<td class="num" data-key="metrics.${set}_${kind}"></td>`).join("");
    $("#metrics").innerHTML = `<table class="metrics">
      <thead><tr><th></th><th scope="col">train</th><th scope="col">test</th><th scope="col" title="the test points with their labels before noise">clean</th></tr></thead>
      <tbody><tr><th scope="row">loss</th>${cells("loss")}</tr><tr><th scope="row">accuracy</th>${cells("accuracy")}</tr>
      <tr><th scope="row" title="The regularization term R added to the data loss">penalty R</th><td class="num" data-key="metrics.reg_loss"></td><td colspan="2"></td></tr></tbody></table>`;
  }

  updateMetrics(state) {
    for (const el of document.querySelectorAll("#metrics [data-key]")) {
      const name = el.dataset.key.slice("metrics.".length);
      const value = state.metrics[name];
      el.dataset.value = String(value);
      el.textContent = name.endsWith("accuracy") ? percent(value) : value === null ? "∞" : fmt(value);
    }
    for (const c of CURVES) {
      const el = document.querySelector(`#loss-legend [data-curve="${c.key}"]`);
      const value = state.metrics[`${c.key}_loss`];
      if (el) el.textContent = value === null ? "∞" : fmt(value);
    }
    this.updateLayerButtons(state);
  }

  buildLegend() {
    $("#loss-legend").innerHTML = CURVES.map(
      (c) => `<span class="key"><i class="swatch ${c.key}"></i>${c.label} <b class="num" data-curve="${c.key}"></b></span>`,
    ).join("");
  }

  renderGlossary() {
    for (const el of document.querySelectorAll("[data-tex]")) typeset(el, el.dataset.tex, false);
  }

  showBanner(message, title, kind, offerDefaults = false) {
    const banner = $("#banner");
    banner.className = `banner ${kind}`;
    banner.replaceChildren();
    const strong = Object.assign(document.createElement("strong"), { textContent: title });
    const text = Object.assign(document.createElement("span"), { className: "banner-message", textContent: message });
    banner.append(strong, text);
    if (offerDefaults) {
      const b = Object.assign(document.createElement("button"), { type: "button", textContent: "Start with the defaults" });
      b.addEventListener("click", () => this.applyQuery(location.pathname));
      banner.append(b);
    }
    banner.hidden = false;
  }

  // A notice about how the run was set up stays until the next run; errors clear on the next state.
  hideBanner(keepNotice) {
    const banner = $("#banner");
    if (!keepNotice || !banner.classList.contains("notice")) {
      banner.hidden = true;
      this.controls.flag(null);
    }
  }

  async exportRun() {
    const exported = await this.session.exportRun();
    if (!exported) return;
    const blob = new Blob([JSON.stringify(exported.network, null, 2)], { type: "application/json" });
    const link = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: "network.json" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
    $("#export-python").textContent = exported.python;
    $("#export-dialog").showModal();
  }

  async share() {
    this.writeUrl(true);
    const button = $("#share");
    try {
      await navigator.clipboard.writeText(location.href);
      button.textContent = "Link copied";
    } catch {
      button.textContent = "Copy the address bar";
    }
    setTimeout(() => (button.textContent = "Copy link"), 1800);
  }
}

async function main() {
  let schema;
  try {
    schema = await backprop.schema();
  } catch (e) {
    const banner = $("#banner");
    banner.hidden = false;
    banner.className = "banner refused";
    banner.textContent = e.message;
    return;
  }
  const page = new Page(schema);
  window.__lab = {
    page,
    get state() {
      return page.session.state;
    },
    get settings() {
      return page.session.settings;
    },
    get parameters() {
      return page.session.parameters;
    },
    get busy() {
      return page.session.busy;
    },
    get playing() {
      return page.playing;
    },
    get frames() {
      return page.frames;
    },
    get mathRenders() {
      return page.computation.renders;
    },
    get latencies() {
      return [...page.session.latencies];
    },
    fps: () => page.fps(),
    play: (until = null) => page.play(until),
    pause: () => page.pause(),
    ready: false,
  };
  await page.loadFromUrl();
  window.__lab.ready = true;
  document.body.classList.add("ready");
}

main();
