// The Residual stream page: the logit lens as a layer x position table (each cell the stream's top
// prediction and its probability, coloured by a target token's probability or rank), the selected
// cell's top k, each component's direct contribution to a logit difference, and the size of each
// component's write. Every number is the engine's (lab/residual/compute.py); this file only draws
// and keeps the URL.

import { request } from "../api.js";
import { Controls } from "../controls.js";
import { Lesson } from "../lesson.js";
import { promptInput } from "../prompt-input.js";
import { UrlState } from "../url-state.js";
import { barChart } from "../views/bar-chart.js";
import { el, visibleText } from "../views/common.js";
import { heatmap } from "../views/heatmap.js";
import { modelPicker } from "../views/model-picker.js";
import { colorScale, drawLegend } from "../views/scale.js";
import { decodeTensor } from "../views/tensor.js";
import { probability, sig } from "./format.js";

const $ = (id) => document.getElementById(id);
export const DEFAULTS = { model: "austen-bpe", prompt: { text: "Mr. Darcy and Miss Bennet. Mr. Darcy and Miss" } };

class ResidualPage {
  constructor(schema) {
    this.urlState = new UrlState(schema.settings, DEFAULTS);
    this.state = this.urlState.parse(location.search);
    this.data = null;
    this.pending = 0; // requests in flight (the browser tests wait for 0)
    this.asked = 0;
    this.controls = new Controls(schema, { lens: $("settings-lens"), cell: $("settings-cell"), decompose: $("settings-decompose") }, (name, value) =>
      this.setSetting(name, value),
    );
    this.lesson = new Lesson($("lesson"), this);
  }

  async start() {
    this.picker = modelPicker($("model-picker"), { value: this.state.model, onChange: (id) => this.setModel(id) });
    await this.picker.ready;
    this.state.model = this.picker.value ?? this.state.model;
    this.box = promptInput($("prompt"), {
      model: this.state.model,
      value: this.state.prompt,
      maxTokens: 64,
      onChange: (prompt) => {
        this.state.prompt = prompt;
        this.show();
      },
      onError: (error) => this.refuse(error),
    });
    await this.box.ready;
    await this.show();
  }

  async track(promise) {
    this.pending += 1;
    try {
      return await promise;
    } finally {
      this.pending -= 1;
    }
  }

  // Take every part of the state from a URL query (try-this links and checkpoints call this).
  async applyQuery(href) {
    this.state = this.urlState.parse(new URL(href, location.href).search);
    this.picker.setValue(this.state.model);
    await this.box.setModel(this.state.model, { notify: false });
    await this.box.setValue(this.state.prompt);
    await this.show();
  }

  async setModel(id) {
    this.state.model = id;
    await this.box.setModel(id, { notify: false });
    await this.show();
  }

  setSetting(name, value) {
    this.state.settings[name] = value;
    this.show();
  }

  selectCell(layer, position) {
    this.state.settings.layer = layer;
    this.state.settings.position = position;
    this.show();
  }

  refuse(error) {
    $("banner").hidden = false;
    $("banner").querySelector(".banner-message").textContent = error.message;
    this.controls.flag(error.field);
    document.body.dataset.refused = "true";
    // Nothing half-drawn: a refused view shows no stale numbers.
    for (const id of ["lens", "cell", "dla", "dla-totals", "norms"]) $(id).replaceChildren();
    this.views = {};
    this.data = null;
  }

  async show() {
    this.controls.set(this.state.settings);
    history.replaceState(null, "", this.urlState.format(this.state));
    const asked = ++this.asked;
    const { model, prompt, settings } = this.state;
    try {
      const data = await this.track(request("POST", "/api/residual/run", { model, prompt, ...settings }));
      if (asked !== this.asked) return;
      $("banner").hidden = true;
      this.controls.flag(null);
      delete document.body.dataset.refused;
      this.data = data;
      this.draw();
    } catch (error) {
      if (asked === this.asked) this.refuse(error);
    }
  }

  // -- drawing ------------------------------------------------------------------------------------
  draw() {
    this.views = this.views ?? {};
    this.drawLens();
    this.drawCell();
    this.drawDecomposition();
    this.drawNorms();
  }

  drawLens() {
    const d = this.data;
    const lens = d.lens;
    const [nLayers, nPos] = lens.top_ids.shape;
    const topIds = decodeTensor(lens.top_ids).data;
    const topProbs = decodeTensor(lens.top_probs).data;
    const targetProb = decodeTensor(lens.target_prob).data;
    const targetRank = decodeTensor(lens.target_rank).data;
    const byRank = this.state.settings.colour === "rank";
    const vocab = Math.max(...Object.keys(d.vocab).map(Number), 2);
    const scale = byRank
      ? colorScale({ scheme: "Viridis", reverse: true, domain: [0, Math.log10(Math.max(vocab, 10))], label: "log₁₀(1 + rank of the target)" })
      : colorScale({ scheme: "Viridis", domain: [0, 1], label: "probability of the target" });
    const table = el("table", { class: "rs-lens", "aria-label": "Logit lens" });
    const head = el("tr", {}, el("th", { scope: "col", class: "rs-corner", text: "stream \\ token" }));
    d.str_tokens.forEach((t, p) => head.append(el("th", { scope: "col", class: "rs-token", "data-pos": String(p), title: `position ${p}, id ${d.ids[p]}`, text: visibleText(t) })));
    table.append(el("thead", {}, head));
    const body = el("tbody");
    for (let l = nLayers - 1; l >= 0; l -= 1) {
      const row = el("tr", {}, el("th", { scope: "row", text: lens.labels[l] }));
      for (let p = 0; p < nPos; p += 1) {
        const i = l * nPos + p;
        const rank = targetRank[i];
        const value = rank < 0 ? NaN : byRank ? Math.log10(1 + rank) : targetProb[i];
        const cell = el(
          "td",
          {
            class: `rs-cell${l === d.layer && p === d.position ? " lw-selected" : ""}`,
            "data-layer": String(l),
            "data-pos": String(p),
            "data-token": String(topIds[i]),
            "data-value": String(topProbs[i]),
            "data-target-prob": String(targetProb[i]),
            "data-target-rank": String(rank),
            tabindex: "0",
            title: rank < 0 ? "no target here" : `target ${visibleText(d.vocab[lens.target[p]] ?? String(lens.target[p]))}: probability ${probability(targetProb[i])}, rank ${rank}`,
          },
          el("span", { class: "rs-top", text: visibleText(d.vocab[String(topIds[i])]) }),
          el("span", { class: "rs-prob num", text: probability(topProbs[i]) }),
        );
        cell.style.background = scale.color(value);
        cell.style.color = scale.ink(value);
        cell.addEventListener("click", () => this.selectCell(l, p));
        cell.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && this.selectCell(l, p));
        row.append(cell);
      }
      body.append(row);
    }
    table.append(body);
    const legend = el("div", { class: "rs-legend" });
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    svg.setAttribute("width", "260");
    svg.setAttribute("height", "48");
    legend.append(svg);
    drawLegend(svg, scale, { x: 4, y: 2, width: 240 });
    const what = lens.target_text ? `the token ${visibleText(lens.target_text)} at every position` : "the token that actually comes next (none after the last)";
    $("lens").replaceChildren(el("p", { class: "small", text: `Colour: ${byRank ? "rank" : "probability"} of ${what}.` }), el("div", { class: "rs-scroll" }, table), legend);
  }

  drawCell() {
    const d = this.data;
    const target = d.lens.target[d.position];
    const bars = d.lens.cell.map((t, r) => ({ label: t.text, value: d.lens.cell_probs[r], highlight: t.id === target }));
    const options = {
      title: `Stream ${d.lens.labels[d.layer]} at position ${d.position}: top ${bars.length}`,
      exportName: "lens-cell",
      format: ".3%",
      tokenLabels: true,
      xLabel: "probability",
      domain: [0, 1],
    };
    if (this.views.cell) this.views.cell.update({ bars }, options);
    else this.views.cell = barChart($("cell"), { bars }, options);
  }

  drawDecomposition() {
    const dec = this.data.decompose;
    const bars = dec.bars.map((b) => ({ label: b.label, value: b.value }));
    const options = {
      title: `Direct contributions to logit[${visibleText(dec.answer.text)}] − logit[${visibleText(dec.wrong.text)}] at position ${dec.position}`,
      exportName: "direct-logit-attribution",
      format: ".4g",
      xLabel: "direct contribution (logits)",
      tokenLabels: false,
    };
    if (this.views.dla) this.views.dla.update({ bars }, options);
    else this.views.dla = barChart($("dla"), { bars }, options);
    const number = (id, value) => el("b", { id, class: "num", "data-value": String(value), text: sig(value) });
    $("dla-totals").replaceChildren("The bars add up to ", number("dla-sum", dec.sum), "; the model's own logit difference is ", number("dla-actual", dec.actual), ".");
  }

  drawNorms() {
    const d = this.data;
    const norms = decodeTensor(d.norms.norms);
    const data = { values: norms, rowLabels: d.norms.labels, colLabels: d.str_tokens };
    const options = {
      title: "Size of each component's write (L2 norm)",
      exportName: "write-norms",
      format: ".4g",
      rowTitle: "component",
      colTitle: "token",
      tokenLabels: true,
      scale: { scheme: "Blues", label: "‖write‖", format: ".4g" },
    };
    if (this.views.norms) this.views.norms.update(data, options);
    else this.views.norms = heatmap($("norms"), data, options);
  }
}

async function main() {
  try {
    const page = new ResidualPage(await request("GET", "/api/residual/schema"));
    window.residualPage = page; // for the browser tests and the console
    await page.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    $("banner").hidden = false;
    $("banner").querySelector(".banner-message").textContent = error.message;
  }
}

main();
