// The Patching page: a clean and a corrupted prompt, aligned token by token; the attribution-patching
// estimate of which activations carry their difference, then the real activation-patching sweep (as a
// job with a progress bar and cancel when it is large, its heatmap filling in layer by layer); path
// patching from one head into the later heads' queries, keys and values; and ablation on the clean run.
// Every number is the engine's (lab/patching/compute.py); this file only draws and keeps the URL.

import { fmt } from "../format.js";
import { Controls } from "../controls.js";
import { Lesson } from "../lesson.js";
import { promptInput } from "../prompt-input.js";
import { visibleText } from "../views/common.js";
import { heatmap } from "../views/heatmap.js";
import { modelPicker } from "../views/model-picker.js";
import { decodeTensor } from "../views/tensor.js";
import { patching as api } from "./api.js";
import { PatchingState, answerFromText, answerText } from "./state.js";

const $ = (id) => document.getElementById(id);
const SETTINGS = ["metric", "activation", "positions", "direction", "method"];
const METRIC_NAMES = { logit_diff: "logit difference", probability: "probability", loss: "loss" };
const SCALE = { kind: "diverging", scheme: "RdBu", domain: [-1, 0, 1], label: "normalised metric (0 corrupted, 1 clean)", format: ".4~g" };

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

// A number as the lab prints it, with its full value in data-value for the tests.
function num(value, attrs = {}) {
  return el("b", { class: "num", "data-value": String(value), ...attrs, text: fmt(value) });
}

function decoded(map) {
  return { ...map, values: decodeTensor(map.values), normalized: decodeTensor(map.normalized) };
}

class PatchingPage {
  constructor(schema) {
    this.schema = schema;
    this.urlState = new PatchingState(schema);
    this.state = this.urlState.parse(location.search);
    this.pending = 0; // requests and jobs in flight (the browser tests wait for 0)
    this.asked = 0; // a newer refresh drops an older one's answers
    this.pair = null;
    this.maps = { estimate: null, sweep: null, path: null };
    this.views = {};
    this.job = null;
    const containers = Object.fromEntries(SETTINGS.map((name) => [name, $(`setting-${name}`)]));
    this.controls = new Controls(schema, containers, (name, value) => this.setSetting(name, value));
    $("answer").addEventListener("change", () => this.setAnswer("answer", $("answer").value));
    $("wrong").addEventListener("change", () => this.setAnswer("wrong", $("wrong").value));
    $("preset").addEventListener("click", () => this.loadPreset());
    $("run-sweep").addEventListener("click", () => this.runSweep());
    $("cancel-sweep").addEventListener("click", () => this.cancelSweep());
    $("path-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.setSender($("sender").value.trim() || null);
    });
    $("neurons").addEventListener("change", () => this.setAblated());
    this.lesson = new Lesson($("lesson"), this);
  }

  async start() {
    this.picker = modelPicker($("model-picker"), { value: this.state.model, onChange: (id) => this.setModel(id) });
    await this.picker.ready;
    if (this.picker.value && this.picker.value !== this.state.model) this.state = this.urlState.parse(`?model=${encodeURIComponent(this.picker.value)}`, () => this.hasTokenizer());
    else this.state = this.urlState.parse(location.search, () => this.hasTokenizer());
    const box = (id, key) =>
      promptInput($(id), {
        model: this.state.model,
        value: this.state[key],
        maxTokens: this.schema.limits.tokens,
        onChange: (prompt) => this.setPrompt(key, prompt),
        onError: (error) => this.refuse(error),
      });
    this.boxes = { clean: box("clean-box", "clean"), corrupted: box("corrupted-box", "corrupted") };
    await this.show();
  }

  hasTokenizer() {
    return this.picker?.entry?.has_tokenizer ?? true;
  }

  // -- the state, the URL and the server --------------------------------------------------------
  async track(promise) {
    this.pending += 1;
    try {
      return await promise;
    } finally {
      this.pending -= 1;
    }
  }

  writeUrl() {
    history.replaceState(null, "", this.urlState.format(this.state));
  }

  // Take every part of the state from a URL query (try-this links and checkpoints call this).
  async applyQuery(href) {
    const search = new URL(href, location.href).search;
    const model = new URLSearchParams(search).get("model");
    if (model && model !== this.state.model) this.picker.setValue(model);
    this.state = this.urlState.parse(search, () => this.hasTokenizer());
    await this.show();
  }

  async show() {
    this.controls.set(this.state.settings);
    $("answer").value = answerText(this.state.answer);
    $("wrong").value = answerText(this.state.wrong);
    $("sender").value = this.state.sender ?? "";
    $("neurons").value = this.state.ablate.filter((c) => /N\d+$/.test(c)).join(", ");
    for (const key of ["clean", "corrupted"]) {
      const box = this.boxes[key];
      if (box.model !== this.state.model) box.setModel(this.state.model, { notify: false });
      if (JSON.stringify(box.value) !== JSON.stringify(this.state[key])) box.setValue(this.state[key]);
    }
    this.writeUrl();
    await this.refresh();
  }

  body(extra = {}) {
    const { model, clean, corrupted, answer, wrong, settings } = this.state;
    const body = { model, clean, corrupted, answer, metric: settings.metric, ...extra };
    if (wrong) body.wrong = wrong;
    return body;
  }

  sweepBody(extra = {}) {
    const { activation, positions, direction } = this.state.settings;
    return this.body({ activation, positions, direction, ...extra });
  }

  setModel(id) {
    this.state = this.urlState.parse(`?model=${encodeURIComponent(id)}`, () => this.hasTokenizer());
    this.show();
  }

  loadPreset() {
    const preset = this.urlState.preset(this.state.model, this.hasTokenizer());
    Object.assign(this.state, { clean: preset.clean, corrupted: preset.corrupted, answer: preset.answer, wrong: preset.wrong, sweep: false, sender: null });
    this.show();
  }

  setPrompt(key, prompt) {
    this.state[key] = prompt;
    this.state.sweep = false;
    this.writeUrl();
    this.refresh();
  }

  setAnswer(key, text) {
    this.state[key] = text.trim() === "" && key === "wrong" ? null : answerFromText(text, this.pair?.has_tokenizer ?? this.hasTokenizer());
    this.state.sweep = false;
    this.writeUrl();
    this.refresh();
  }

  setSetting(name, value) {
    this.state.settings[name] = value;
    if (name === "method") {
      this.writeUrl();
      return this.ablation(this.asked);
    }
    if (name !== "direction") this.state.sender = name === "activation" && value === "z" ? this.state.sender : null;
    this.state.sweep = false;
    this.writeUrl();
    return this.refresh();
  }

  setSender(sender) {
    this.state.sender = sender;
    $("sender").value = sender ?? "";
    this.writeUrl();
    return this.path(this.asked);
  }

  setAblated() {
    const heads = [...document.querySelectorAll("#head-toggles button[aria-pressed=true]")].map((b) => b.dataset.head);
    const neurons = $("neurons").value.split(/[\s,]+/).filter(Boolean);
    this.state.ablate = [...heads, ...neurons];
    this.writeUrl();
    return this.ablation(this.asked);
  }

  // -- refusals: the banner names the problem, and nothing stale or half-drawn stays on screen ----
  refuse(error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
    this.controls.flag(error.field);
    for (const id of ["answer", "wrong", "sender", "neurons"]) $(id).classList.toggle("invalid", error.field === id || (id === "neurons" && error.field === "components"));
  }

  clearRefusal() {
    $("banner").hidden = true;
    this.controls.flag(null);
    for (const id of ["answer", "wrong", "sender", "neurons"]) $(id).classList.remove("invalid");
  }

  clear(...parts) {
    for (const part of parts) {
      if (part === "pair") {
        this.pair = null;
        for (const id of ["pair", "clean-top", "corrupted-top", "scores", "head-toggles", "ablation-readout"]) $(id).replaceChildren();
      }
      if (part === "maps") {
        this.stopFollowing();
        this.maps.estimate = this.maps.sweep = null;
        for (const id of ["estimate-map", "sweep-map", "cell-readout", "comparison", "sweep-status"]) $(id).replaceChildren();
        $("sweep-progress").hidden = true;
        $("cancel-sweep").hidden = true;
      }
      if (part === "path") {
        this.maps.path = null;
        $("path-map").replaceChildren();
      }
    }
  }

  async refresh() {
    const asked = ++this.asked;
    this.clear("maps", "path");
    $("status").textContent = "Reading…";
    let pair;
    try {
      pair = await this.track(api.pair(this.body()));
    } catch (error) {
      if (asked !== this.asked) return;
      this.clear("pair");
      $("status").textContent = "";
      return this.refuse(error);
    }
    if (asked !== this.asked) return;
    this.clearRefusal();
    this.pair = pair;
    this.showPair();
    $("status").textContent = `${pair.clean.ids.length} tokens each · ${pair.n_layers} layers × ${pair.n_heads} heads${pair.attn_only ? " · attention only" : ""}`;
    try {
      const estimate = await this.track(api.preview(this.sweepBody()));
      if (asked !== this.asked) return;
      this.maps.estimate = decoded(estimate);
      this.drawMap("estimate");
    } catch (error) {
      if (asked !== this.asked) return;
      this.clear("maps");
      this.refuse(error);
    }
    const rest = [this.ablation(asked)];
    if (this.state.sender) rest.push(this.path(asked));
    if (this.state.sweep && this.maps.estimate) rest.push(this.runSweep(asked));
    await Promise.all(rest);
  }

  // -- the pair ---------------------------------------------------------------------------------
  showPair() {
    const p = this.pair;
    const differs = new Set(p.differs);
    const row = (name, tokens) =>
      el("tr", {}, el("th", { scope: "row", text: name }), ...tokens.str_tokens.map((s, i) => el("td", { class: differs.has(i) ? "differs" : "", "data-position": String(i), title: `position ${i}, id ${tokens.ids[i]}`, text: visibleText(s) })));
    const positions = el("tr", { class: "positions" }, el("th", { scope: "row", text: "position" }), ...p.clean.ids.map((_, i) => el("td", { text: String(i) })));
    $("pair").replaceChildren(el("table", { class: "pt-align" }, positions, row("clean", p.clean), row("corrupted", p.corrupted)));
    const chips = (top, key) =>
      top.map((t) => {
        const chip = el("button", { type: "button", class: "pt-chip", title: `id ${t.id}: probability ${fmt(t.probability)}` }, el("span", { class: "tok", text: visibleText(t.text) }), ` ${(100 * t.probability).toFixed(1)}%`);
        chip.addEventListener("click", () => {
          this.state[key] = p.has_tokenizer ? { text: t.text } : { id: t.id };
          if (p.has_tokenizer && t.text.startsWith("⟨no token")) this.state[key] = { id: t.id };
          this.show();
        });
        return chip;
      });
    this.drawHeadToggles();
    $("clean-top").replaceChildren(...chips(p.clean_top, "answer"));
    $("corrupted-top").replaceChildren(...chips(p.corrupted_top, "wrong"));
    const metric = METRIC_NAMES[p.metric];
    const answers = p.wrong ? `“${visibleText(p.answer.text)}” minus “${visibleText(p.wrong.text)}”` : `“${visibleText(p.answer.text)}”`;
    $("scores").replaceChildren(`The ${metric} of ${answers} after the last token: clean run `, num(p.clean_score, { id: "clean-score" }), ", corrupted run ", num(p.corrupted_score, { id: "corrupted-score" }), ".");
  }

  // -- the maps ---------------------------------------------------------------------------------
  colLabels(map) {
    const pos = map.col_axis === "pos" || map.col_axis === "dest_pos";
    return pos ? map.cols.map((c) => `${c} ${this.pair.clean.str_tokens[Number(c)]}`) : map.cols;
  }

  drawMap(kind, notice = "") {
    const map = this.maps[kind];
    const titles = { estimate: "Attribution patching: the gradient's estimate", sweep: "Activation patching: the real sweep" };
    const activation = map.activation.replace(" (attribution)", "");
    this.views[kind] = heatmap($(`${kind}-map`), { values: map.normalized, rowLabels: map.rows, colLabels: this.colLabels(map) }, {
      title: `${titles[kind]} · ${activation}`,
      notice,
      exportName: `patching-${kind}-${activation}`,
      scale: SCALE,
      rowTitle: map.row_axis,
      colTitle: map.col_axis,
      tokenLabels: map.col_axis === "pos" || map.col_axis === "dest_pos",
      format: ".4~g",
      onHover: (cell) => this.readout(kind, cell),
      onSelect: (cell) => this.cellClicked(kind, cell),
    });
  }

  readout(kind, cell) {
    const out = $("cell-readout");
    const map = this.maps[kind];
    if (!cell || !map) return;
    const i = cell.row * map.normalized.shape[1] + cell.col;
    const raw = map.values.data[i];
    const normalised = map.normalized.data[i];
    const where = map.col_axis === "head" ? `${map.rows[cell.row]}${map.cols[cell.col]}` : `${map.rows[cell.row]} · position ${map.cols[cell.col]} (“${visibleText(this.pair.clean.str_tokens[Number(map.cols[cell.col])] ?? "")}”)`;
    const label = kind === "estimate" ? "estimated" : "patched";
    if (!Number.isFinite(raw)) return out.replaceChildren(`${where}: not computed yet`);
    out.replaceChildren(`${where}, ${label}: normalised `, num(normalised, { id: "readout-normalized" }), `, ${METRIC_NAMES[this.pair.metric]} `, num(raw, { id: "readout-raw" }));
    out.dataset.kind = kind;
    out.dataset.row = String(cell.row);
    out.dataset.col = String(cell.col);
  }

  cellClicked(kind, cell) {
    if (!cell) return;
    this.readout(kind, cell);
    const map = this.maps[kind];
    if (map.col_axis === "head" && this.state.settings.activation === "z") this.setSender(`${map.rows[cell.row]}${map.cols[cell.col]}`);
  }

  // -- the real sweep: now, or as a job whose rows arrive layer by layer --------------------------
  async runSweep(asked = this.asked) {
    this.stopFollowing();
    this.state.sweep = true;
    this.writeUrl();
    $("sweep-status").textContent = "Sweeping…";
    let out;
    try {
      out = await this.track(api.sweep(this.sweepBody()));
    } catch (error) {
      if (asked !== this.asked) return;
      $("sweep-status").textContent = "";
      return this.refuse(error);
    }
    if (asked !== this.asked) {
      if (out.job) api.cancel(out.job.id).catch(() => {});
      return;
    }
    if (out.result) return this.showSweep(out.result);
    await this.follow(out.job, asked);
  }

  showSweep(result) {
    this.maps.sweep = decoded(result);
    $("sweep-progress").hidden = true;
    $("cancel-sweep").hidden = true;
    $("sweep-status").replaceChildren(`Done: ${result.rows.length * result.cols.length} patched runs in ${result.seconds.toFixed(2)} s.`);
    this.drawMap("sweep");
    this.showComparison();
  }

  // Follow a sweep job's progress events: each carries one layer's rows of raw scores, drawn at once.
  follow(job, asked) {
    const estimate = this.maps.estimate;
    const shape = estimate.normalized.shape;
    const partial = {
      ...estimate,
      kind: "sweep",
      values: { shape, data: new Float32Array(shape[0] * shape[1]).fill(NaN) },
      normalized: { shape, data: new Float32Array(shape[0] * shape[1]).fill(NaN) },
    };
    const { clean_score: clean, corrupted_score: corrupted } = this.pair;
    const n_layers = this.pair.n_layers;
    let layersDone = 0;
    this.maps.sweep = partial;
    this.drawMap("sweep", `filling in: 0 of ${n_layers} layers`);
    const bar = $("sweep-progress");
    bar.hidden = false;
    bar.value = 0;
    $("cancel-sweep").hidden = false;
    $("cancel-sweep").disabled = false;
    $("sweep-status").textContent = job.state === "queued" ? `Waiting in the job queue: place ${job.place}` : "Sweeping…";
    this.job = job;
    return this.track(
      new Promise((resolve) => {
        const source = new EventSource(`/api/jobs/${job.id}/events`);
        this.source = { source, resolve };
        source.addEventListener("progress", (e) => {
          const point = JSON.parse(e.data);
          bar.value = point.fraction;
          const { layer, rows } = point.metrics;
          if (rows === undefined || asked !== this.asked) return;
          rows.forEach((values, r) =>
            values.forEach((v, c) => {
              const i = (layer * estimate.rows_per_layer + r) * shape[1] + c;
              partial.values.data[i] = v;
              partial.normalized.data[i] = (v - corrupted) / (clean - corrupted);
            }),
          );
          layersDone = layer + 1;
          $("sweep-status").textContent = `Sweeping: layer ${layersDone} of ${n_layers}`;
          this.drawMap("sweep", `filling in: ${layersDone} of ${n_layers} layers`);
        });
        source.addEventListener("state", (e) => {
          const view = JSON.parse(e.data);
          this.job = view;
          if (view.state === "queued") $("sweep-status").textContent = `Waiting in the job queue: place ${view.place}`;
          if (view.state === "running") $("sweep-status").textContent = view.cancel_requested ? "Cancelling…" : "Sweeping…";
          if (!["done", "cancelled", "failed"].includes(view.state)) return;
          this.stopFollowing();
          if (asked !== this.asked) return;
          if (view.state === "done") this.showSweep(view.result);
          else if (view.state === "cancelled") {
            this.state.sweep = false;
            this.writeUrl();
            $("sweep-status").textContent = `Cancelled after ${layersDone} of ${n_layers} layers: the rows drawn are real, the rest were never run.`;
            this.views.sweep?.setNotice(`cancelled: ${layersDone} of ${n_layers} layers`);
          } else this.refuse({ message: `The sweep failed: ${view.error}` });
        });
      }),
    );
  }

  stopFollowing() {
    if (!this.source) return;
    this.source.source.close();
    this.source.resolve();
    this.source = null;
    $("cancel-sweep").hidden = true;
    $("sweep-progress").hidden = true;
  }

  async cancelSweep() {
    if (!this.job) return;
    $("cancel-sweep").disabled = true;
    $("sweep-status").textContent = "Cancelling…";
    await this.track(api.cancel(this.job.id));
  }

  showComparison() {
    const sweep = this.maps.sweep;
    const out = $("comparison");
    if (sweep.pearson === null) return out.replaceChildren("One of the maps is constant, so they have no correlation.");
    const where = (d) => (sweep.col_axis === "head" ? `${sweep.rows[d.row]}${sweep.cols[d.col]}` : `${sweep.rows[d.row]} position ${sweep.cols[d.col]}`);
    const cells = sweep.disagreements.flatMap((d, i) => [i ? "; " : "", `${where(d)} (estimate `, num(d.estimate, { class: "num estimate" }), ", real ", num(d.actual, { class: "num actual" }), ")"]);
    const verdict = sweep.pearson > 0.9 ? "They agree closely." : sweep.pearson > 0.6 ? "They agree in outline." : "They disagree: read the estimate as a map of where to look, and trust the real sweep.";
    out.replaceChildren("Correlation of the gradient's estimate with the real sweep: r = ", num(sweep.pearson, { id: "pearson" }), `. ${verdict} They differ most at `, ...cells, ". A gradient is a straight-line estimate: it misses patches that move attention or saturate a softmax.");
  }

  // -- path patching and ablation ---------------------------------------------------------------
  async path(asked) {
    const sender = this.state.sender;
    if (!sender || !this.pair) return this.clear("path");
    let out;
    try {
      out = await this.track(api.path({ ...this.body(), direction: this.state.settings.direction, sender }));
    } catch (error) {
      if (asked !== this.asked) return;
      this.clear("path");
      return this.refuse(error);
    }
    if (asked !== this.asked) return;
    const map = { ...out, values: decodeTensor(out.values), normalized: decodeTensor(out.normalized) };
    this.maps.path = map;
    this.views.path = heatmap($("path-map"), { values: map.normalized, rowLabels: map.rows, colLabels: map.cols }, {
      title: `${sender} path-patched (${this.state.settings.direction}) into each later head's input`,
      exportName: `path-${sender}`,
      scale: SCALE,
      rowTitle: "receiver",
      colTitle: "input",
      format: ".4~g",
      onHover: (cell) => this.pathReadout(cell),
      onSelect: (cell) => this.pathReadout(cell),
    });
  }

  pathReadout(cell) {
    const map = this.maps.path;
    if (!cell || !map) return;
    const i = cell.row * 3 + cell.col;
    const out = $("cell-readout");
    out.replaceChildren(`${map.sender} → ${map.rows[cell.row]}.${map.cols[cell.col]}: normalised `, num(map.normalized.data[i], { id: "readout-normalized" }), `, ${METRIC_NAMES[this.pair.metric]} `, num(map.values.data[i], { id: "readout-raw" }));
    out.dataset.kind = "path";
  }

  drawHeadToggles() {
    const p = this.pair;
    const chosen = new Set(this.state.ablate);
    const rows = [];
    for (let layer = 0; layer < p.n_layers; layer++) {
      const buttons = [];
      for (let h = 0; h < p.n_heads; h++) {
        const head = `L${layer}H${h}`;
        const b = el("button", { type: "button", class: "pt-head", "data-head": head, "aria-pressed": String(chosen.has(head)), text: `H${h}` });
        b.addEventListener("click", () => {
          b.setAttribute("aria-pressed", String(b.getAttribute("aria-pressed") !== "true"));
          this.setAblated();
        });
        buttons.push(b);
      }
      rows.push(el("div", { class: "pt-head-row" }, el("span", { class: "small", text: `L${layer}` }), ...buttons));
    }
    $("head-toggles").replaceChildren(...rows);
  }

  async ablation(asked) {
    if (!this.pair) return;
    let out;
    try {
      out = await this.track(api.ablate({ ...this.body(), method: this.state.settings.method, components: this.state.ablate }));
    } catch (error) {
      if (asked !== this.asked) return;
      $("ablation-readout").replaceChildren();
      return this.refuse(error);
    }
    if (asked !== this.asked) return;
    const metric = METRIC_NAMES[this.pair.metric];
    const what = out.components.length ? `With ${out.components.join(", ")} ${out.method}-ablated, the clean run's ${metric} is ` : `Nothing ablated: the clean run's ${metric} is `;
    $("ablation-readout").replaceChildren(what, num(out.value, { id: "ablated-value" }), " (clean ", num(out.clean), ", corrupted ", num(out.corrupted), ").");
  }
}

async function main() {
  try {
    const page = new PatchingPage(await api.schema());
    window.patchingPage = page; // for the browser tests and the console
    await page.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
  }
}

main();
