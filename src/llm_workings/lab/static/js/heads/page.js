// The Attention heads page: every head's pattern on the learner's prompt as small multiples, each with
// the toolkit's scores; one head in depth (its pattern as a matrix and as lines, its QK and OV
// circuits); and how the model encodes positions. Every number is the engine's (lab/heads/compute.py);
// this file only draws and keeps the URL.

import { Lesson } from "../lesson.js";
import { promptInput } from "../prompt-input.js";
import { attentionLines } from "../views/attention-lines.js";
import { heatmap } from "../views/heatmap.js";
import { lineChart } from "../views/line-chart.js";
import { modelPicker } from "../views/model-picker.js";
import { smallMultiples } from "../views/small-multiples.js";
import { decodeTensor } from "../views/tensor.js";
import { heads as api } from "./api.js";
import { headName, score } from "./format.js";
import { DEFAULT_TEXT, HeadsState } from "./state.js";

const $ = (id) => document.getElementById(id);
const KINDS = {
  previous_token: { label: "previous-token score", short: "prev" },
  duplicate_token: { label: "duplicate-token score", short: "dup" },
  induction: { label: "induction score", short: "ind" },
  entropy: { label: "entropy (nats)", short: "ent" },
};
const PATTERN_SCALE = { scheme: "Blues", domain: [0, 1], label: "attention", format: ".3f" };

// The grid's packed lower triangles ([heads sent, n (n + 1) / 2]) as one n x n pattern per head.
export function unpackPatterns(tensor, n) {
  const { shape, data } = decodeTensor(tensor);
  const patterns = [];
  for (let h = 0; h < shape[0]; h += 1) {
    const full = new Float32Array(n * n);
    let at = h * shape[1];
    for (let q = 0; q < n; q += 1) {
      full.set(data.subarray(at, at + q + 1), q * n);
      at += q + 1;
    }
    patterns.push(full);
  }
  return patterns;
}

class HeadsPage {
  constructor(schema) {
    this.schema = schema;
    this.urlState = new HeadsState(schema);
    this.state = this.urlState.parse(location.search);
    this.pending = 0; // requests in flight (the browser tests wait for 0)
    this.asked = 0; // an answer to an older request is dropped
    this.grid = null; // the last grid, decoded
    this.head = null; // the last head in depth, decoded
    this.views = {};
    $("sort").replaceChildren(...schema.sorts.map((s) => new Option(s === "layer" ? "layer and head" : KINDS[s].label, s)));
    $("sort").addEventListener("change", () => this.set({ sort: $("sort").value }, { grid: false }));
    $("layer").addEventListener("change", () => this.set({ layer: Number($("layer").value), query: null, key: null }, { grid: false }));
    $("head").addEventListener("change", () => this.set({ head: Number($("head").value), query: null, key: null }, { grid: false }));
    this.lesson = new Lesson($("lesson"), this);
  }

  async start() {
    this.picker = modelPicker($("model-picker"), { value: this.state.model, onChange: (id) => this.setModel(id) });
    await this.picker.ready;
    this.state.model = this.picker.value ?? this.state.model;
    await this.show({ positions: true });
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

  // Take every part of the state from a URL query (try-this links and checkpoints call this).
  async applyQuery(href) {
    const before = this.state.model;
    this.state = this.urlState.parse(new URL(href, location.href).search);
    this.picker.setValue(this.state.model);
    await this.show({ positions: this.state.model !== before });
  }

  setModel(id) {
    this.state = { ...this.state, model: id, prompt: null, layer: 0, head: 0, query: null, key: null };
    this.show({ positions: true });
  }

  // A prompt the model can read: the URL's, else a default that suits the model.
  async ensurePrompt() {
    if (this.state.prompt) return;
    const entry = this.picker.entry;
    if (entry?.has_tokenizer) this.state.prompt = { text: DEFAULT_TEXT };
    else {
      const out = await this.track(api.repeated({ model: this.state.model, seed: 0, max_tokens: this.schema.limits.tokens }));
      this.state.prompt = { ids: out.ids };
    }
  }

  async show({ positions = false } = {}) {
    try {
      await this.ensurePrompt();
    } catch (error) {
      this.refuse(error);
      return;
    }
    this.writeUrl();
    $("sort").value = this.state.sort;
    // A new model gets a new box: setModel then setValue would first read the old prompt on the new model.
    if (!this.box || this.box.model !== this.state.model) {
      this.box?.destroy();
      this.box = promptInput($("prompt"), {
        model: this.state.model,
        value: this.state.prompt,
        maxTokens: this.schema.limits.tokens,
        onChange: (prompt) => this.set({ prompt, query: null, key: null }),
      });
    } else if (JSON.stringify(this.box.value) !== JSON.stringify(this.state.prompt)) this.box.setValue(this.state.prompt);
    const asked = ++this.asked;
    const work = [this.loadGrid(asked), this.loadHead(asked)];
    if (positions) work.push(this.loadPositions(asked));
    await Promise.all(work);
  }

  // Change part of the state; the grid is asked again only when the prompt (or model) changed.
  async set(change, { grid = true } = {}) {
    Object.assign(this.state, change);
    this.writeUrl();
    const asked = ++this.asked;
    if (grid) await Promise.all([this.loadGrid(asked), this.loadHead(asked)]);
    else {
      this.drawGrid();
      await this.loadHead(asked);
    }
  }

  refuse(error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
    for (const name of ["layer", "head"]) $(name).classList.toggle("invalid", error.field === name);
  }

  clearRefusal() {
    $("banner").hidden = true;
    for (const name of ["layer", "head"]) $(name).classList.remove("invalid");
  }

  // -- the grid -----------------------------------------------------------------------------------
  async loadGrid(asked) {
    const { model, prompt } = this.state;
    $("status").textContent = "Reading…";
    let data;
    try {
      data = await this.track(api.grid({ model, prompt }));
    } catch (error) {
      if (asked === this.asked) {
        this.grid = null;
        $("status").textContent = "";
        this.refuse(error);
      }
      return;
    }
    if (asked !== this.asked) return;
    const n = data.prompt.ids.length;
    const scores = Object.fromEntries(Object.entries(data.scores).map(([kind, t]) => [kind, decodeTensor(t).data]));
    this.grid = { ...data, n, scores, patterns: unpackPatterns(data.patterns, n), patternsMin: data.patterns.min, patternsMax: data.patterns.max, byDistance: decodeTensor(data.by_distance) };
    this.fillHeadChoices();
    $("status").textContent = `${n} tokens${data.prompt.bos ? " (a BOS token first)" : ""} · ${data.n_layers} layers × ${data.n_heads} heads`;
    this.drawGrid();
    this.drawInduction();
    this.drawDistances();
    this.drawHeadScores();
  }

  fillHeadChoices() {
    const { n_layers: layers, n_heads: heads } = this.grid;
    const fill = (select, count, value) => {
      if (select.options.length !== count) select.replaceChildren(...Array.from({ length: count }, (_, i) => new Option(String(i), String(i))));
      select.value = String(value);
    };
    fill($("layer"), layers, this.state.layer);
    fill($("head"), heads, this.state.head);
  }

  scoreOf(kind, layer, head) {
    return this.grid.scores[kind][layer * this.grid.n_heads + head];
  }

  // The flat head indices in the grid's order: layer by layer, or by a score (NaN last).
  order() {
    const g = this.grid;
    const flat = g.heads.slice();
    const kind = this.state.sort;
    if (kind === "layer") return flat;
    const sign = kind === "entropy" ? 1 : -1; // entropy: sharpest (lowest) first; scores: highest first
    const key = (i) => (Number.isFinite(g.scores[kind][i]) ? sign * g.scores[kind][i] : Infinity);
    return flat.sort((a, b) => key(a) - key(b) || a - b);
  }

  drawGrid() {
    const g = this.grid;
    if (!g) return;
    const labels = g.prompt.str_tokens;
    const sent = new Map(g.heads.map((flat, i) => [flat, g.patterns[i]]));
    const panels = this.order().map((flat) => {
      const layer = Math.floor(flat / g.n_heads);
      const head = flat % g.n_heads;
      return {
        title: headName(layer, head),
        flat,
        values: { shape: [g.n, g.n], data: sent.get(flat) },
        rowLabels: labels,
        colLabels: labels,
        stats: Object.entries(KINDS).map(([kind, k]) => ({ name: kind, label: k.label, short: k.short, value: g.scores[kind][flat], text: score(g.scores[kind][flat]) })),
      };
    });
    const cellSize = Math.max(0.75, Math.min(4, 120 / g.n));
    const options = {
      title: `Every head's pattern (${panels.length} heads)`,
      exportName: "attention-heads",
      columns: Math.min(g.n_heads, 6),
      cellSize,
      scale: PATTERN_SCALE,
      rowTitle: "query",
      colTitle: "key",
      tokenLabels: true,
      notice: g.thinned.join("; "),
      onPanelClick: (i) => this.pick(panels[i].flat, null),
      onSelect: (info) => info && this.pick(panels[info.panel].flat, info.row),
    };
    this.panelOrder = panels.map((p) => p.flat);
    if (this.views.grid) this.views.grid.update({ panels }, options);
    else this.views.grid = smallMultiples($("grid"), { panels }, options);
    const chosen = this.panelOrder.indexOf(this.state.layer * g.n_heads + this.state.head);
    [...$("grid").querySelectorAll(".lw-panel")].forEach((box, i) => box.classList.toggle("hd-current", i === chosen));
  }

  pick(flat, query) {
    const heads = this.grid.n_heads;
    this.set({ layer: Math.floor(flat / heads), head: flat % heads, query, key: null }, { grid: false });
    $("one-head").scrollIntoView({ block: "start" });
  }

  drawInduction() {
    const g = this.grid;
    const el = $("induction-heads");
    const induction = g.scores.induction;
    if (induction.every((v) => !Number.isFinite(v))) {
      el.textContent = "This prompt repeats no token, so no head can show induction here: press “Repeated random tokens”.";
      return;
    }
    if (!g.induction_heads.length) {
      el.textContent = `On this prompt no head reaches an induction score of ${g.induction_threshold}: the toolkit names no induction head.`;
      return;
    }
    el.replaceChildren(
      `The toolkit scores ${g.induction_heads.length} head${g.induction_heads.length > 1 ? "s" : ""} as induction heads on this prompt (induction score at least ${g.induction_threshold}): `,
      ...g.induction_heads.flatMap(([layer, head], i) => {
        const value = this.scoreOf("induction", layer, head);
        const link = Object.assign(document.createElement("a"), { href: "#one-head", className: "hd-induction", textContent: headName(layer, head) });
        link.dataset.layer = String(layer);
        link.dataset.head = String(head);
        link.addEventListener("click", (e) => {
          e.preventDefault();
          this.pick(layer * g.n_heads + head, null);
        });
        const shown = Object.assign(document.createElement("span"), { className: "num", textContent: ` (${score(value)})` });
        shown.dataset.value = String(value);
        return [...(i ? [", "] : []), link, shown];
      }),
      ". Check it in their patterns: on the second copy, each query's brightest key is the token just after the earlier copy of the query's own token, a stripe one step right of the diagonal half a sequence back.",
    );
  }

  // -- one head -------------------------------------------------------------------------------------
  async loadHead(asked) {
    const { model, prompt, layer, head, query, key } = this.state;
    const body = { model, prompt, layer, head };
    if (query !== null) body.query = query;
    if (key !== null) body.key = key;
    let data;
    try {
      data = await this.track(api.head(body));
    } catch (error) {
      if (asked === this.asked) {
        this.head = null;
        this.refuse(error);
      }
      return;
    }
    if (asked !== this.asked) return;
    this.clearRefusal();
    this.head = { ...data, pattern: decodeTensor(data.pattern), rotary: data.rotary_scores && decodeTensor(data.rotary_scores) };
    this.drawHead();
    this.drawCircuits();
    this.drawRotary();
    this.drawDistances();
  }

  drawHead() {
    const d = this.head;
    const name = headName(d.layer, d.head);
    $("head-title").textContent = `One head in depth: ${name}`;
    const tokens = d.prompt.str_tokens.map((text, i) => ({ text, id: d.prompt.ids[i] }));
    this.drawHeadScores();
    const matrix = { values: d.pattern, rowLabels: d.prompt.str_tokens, colLabels: d.prompt.str_tokens };
    const matrixOptions = { title: `${name}'s pattern`, exportName: `pattern-${name}`, scale: PATTERN_SCALE, rowTitle: "query", colTitle: "key", tokenLabels: true, selected: this.state.query === null ? null : { row: d.query, col: d.key }, onSelect: (info) => info && this.set({ query: info.row, key: info.col <= info.row ? info.col : null }, { grid: false }) };
    if (this.views.matrix) this.views.matrix.update(matrix, matrixOptions);
    else this.views.matrix = heatmap($("matrix"), matrix, matrixOptions);
    const lines = { tokens, pattern: d.pattern };
    const linesOptions = { title: `${name}: where each query looks`, exportName: `lines-${name}`, query: this.state.query, onSelect: (q) => this.set({ query: q, key: null }, { grid: false }) };
    if (this.lines) this.lines.update(lines, linesOptions);
    else this.lines = attentionLines($("lines"), lines, linesOptions);
    this.lines.select(this.state.query, { notify: false });
  }

  // The head's four scores, from the grid (whichever of the two answers arrives last draws them).
  drawHeadScores() {
    const d = this.head;
    const g = this.grid;
    if (!d || !g || g.model !== d.model || JSON.stringify(g.prompt.ids) !== JSON.stringify(d.prompt.ids)) return;
    const flat = d.layer * g.n_heads + d.head;
    $("head-scores").replaceChildren(
      ...Object.entries(KINDS).flatMap(([kind, k], i) => {
        const value = g.scores[kind][flat];
        const b = Object.assign(document.createElement("b"), { className: "num", textContent: score(value) });
        b.dataset.value = String(value);
        b.dataset.kind = kind;
        return [i ? " · " : "", `${k.label} `, b];
      }),
    );
  }

  drawCircuits() {
    const d = this.head;
    const host = $("circuits");
    const note = $("circuits-note");
    if (!d.circuits) {
      note.textContent = `${d.circuits_note}.`;
      host.hidden = true;
      return;
    }
    host.hidden = false;
    const name = headName(d.layer, d.head);
    const c = d.circuits;
    note.replaceChildren(`Copying score of ${name}: `, Object.assign(document.createElement("b"), { id: "copying-score", className: "num", textContent: score(c.copying_score) }), " (+1: attending to a token raises that same token's logit; −1: lowers it).");
    $("copying-score").dataset.value = String(c.copying_score);
    const vocab = (n) => Array.from({ length: n }, (_, i) => String(i));
    const draw = (key, element, tensor, title, rowTitle, colTitle) => {
      const values = decodeTensor(tensor);
      const data = { values, rowLabels: vocab(values.shape[0]), colLabels: vocab(values.shape[1]) };
      const options = { title, exportName: `${key}-${name}`, scale: { kind: "diverging", label: key === "qk" ? "score" : "logit change", format: ".3~g" }, rowTitle, colTitle, labels: false, cellSize: Math.max(1, Math.min(3, 360 / values.shape[0])) };
      if (this.views[key]) this.views[key].update(data, options);
      else this.views[key] = heatmap(element, data, options);
    };
    draw("qk", $("full-qk"), c.full_qk, `full QK of ${name}: W_E W_Q W_Kᵀ W_Eᵀ`, "query token", "key token");
    draw("ov", $("full-ov"), c.full_ov, `full OV of ${name}: W_E W_V W_O W_U`, "attended token", "logit of token");
  }

  // -- positions ------------------------------------------------------------------------------------
  drawDistances() {
    const g = this.grid;
    if (!g) return;
    const layer = Math.min(this.state.layer, g.n_layers - 1);
    const n = g.n;
    const series = Array.from({ length: g.n_heads }, (_, head) => {
      const start = (layer * g.n_heads + head) * n;
      return { name: headName(layer, head), x: Array.from({ length: n }, (_, d) => d), y: Array.from(g.byDistance.data.subarray(start, start + n)) };
    });
    const options = { title: `Mean attention by distance, layer ${layer}'s heads`, exportName: `distance-L${layer}`, xLabel: "distance back from the query (0: itself)", yLabel: "mean attention", format: ".3f", height: 200 };
    if (this.views.distance) this.views.distance.update({ series }, options);
    else this.views.distance = lineChart($("distance"), { series }, options);
  }

  drawRotary() {
    const d = this.head;
    const host = $("rotary");
    const text = $("rotary-note");
    if (!d.rotary) {
      host.hidden = true;
      return;
    }
    host.hidden = false;
    const name = headName(d.layer, d.head);
    const y = Array.from(d.rotary.data);
    const options = { title: `${name}: q·k/√d_head of one pair at every distance`, exportName: `rotary-${name}`, xLabel: "query − key (positions)", yLabel: "score", format: ".4~g", height: 200 };
    const series = [{ name: `q of token ${d.query}, k of token ${d.key}`, x: y.map((_, i) => i), y }];
    if (this.views.rotary) this.views.rotary.update({ series }, options);
    else this.views.rotary = lineChart($("rotary-chart"), { series }, options);
    text.replaceChildren(
      `The pair: the query vector of token ${d.query} and the key vector of token ${d.key}, before rotation. Rotary embeddings turn both by angles proportional to their positions, so their score depends only on how far apart they are. At their real distance, ${d.query - d.key}, the curve gives `,
      Object.assign(document.createElement("b"), { id: "rotary-at", className: "num", textContent: y[d.query - d.key].toPrecision(4) }),
      `; the model computed `,
      Object.assign(document.createElement("b"), { id: "rotary-actual", className: "num", textContent: d.actual_score.toPrecision(4) }),
      ". Click a cell of the pattern to choose another pair.",
    );
    $("rotary-at").dataset.value = String(y[d.query - d.key]);
    $("rotary-actual").dataset.value = String(d.actual_score);
  }

  async loadPositions(asked) {
    let data;
    try {
      data = await this.track(api.positions({ model: this.state.model }));
    } catch (error) {
      if (asked === this.asked) this.refuse(error);
      return;
    }
    const host = $("learned");
    const note = $("positions-note");
    if (data.positions === "rotary") note.textContent = `${data.model} has rotary positions (${data.rotary_dim} of each head's dimensions rotate, base ${data.rotary_base}): no position vector is added to the stream; queries and keys are turned by their position instead. The chart above moves one pair through every distance.`;
    else if (data.positions === "none") note.textContent = `${data.model} has no position encoding: only the causal mask tells positions apart.`;
    else note.textContent = `${data.model} learns one vector per position (W_pos, added to the token's embedding). The map compares them: cosine similarity of position i's vector with position j's${data.similarity_note ? ` (${data.similarity_note})` : ""}.`;
    host.hidden = !data.similarity;
    if (!data.similarity) return;
    const values = decodeTensor(data.similarity);
    const options = { title: "Similarity of the learned position embeddings", exportName: "position-similarity", scale: { kind: "diverging", domain: [-1, 0, 1], label: "cosine similarity", format: ".2f" }, rowTitle: "position", colTitle: "position", labels: false, cellSize: Math.max(1, Math.min(4, 360 / values.shape[0])) };
    if (this.views.learned) this.views.learned.update({ values }, options);
    else this.views.learned = heatmap($("learned"), { values }, options);
  }
}

async function main() {
  try {
    const page = new HeadsPage(await api.schema());
    window.headsPage = page; // for the browser tests and the console
    await page.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
  }
}

main();
