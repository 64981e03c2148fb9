// The "Induction heads form" page: a scrubber over a run's snapshots; the losses and every head's
// scores over training, with the current step marked and the phase change shaded; at the scrubbed
// step, the featured heads' patterns, the loss at every position and the score table. Every number
// is the engine's (lab/induction/compute.py); this file only draws and keeps the URL.

import { Controls } from "../controls.js";
import { Lesson } from "../lesson.js";
import { ReplayPage, ReplayState, runPage, showNumber } from "../replay.js";
import { heatmap } from "../views/heatmap.js";
import { lineChart } from "../views/line-chart.js";
import { decodeTensor } from "../views/tensor.js";
import { induction as api } from "./api.js";

const $ = (id) => document.getElementById(id);
const DEFAULT_MODEL = "induction-2l";

function heads(nLayers, nHeads) {
  return Array.from({ length: nLayers * nHeads }, (_, i) => [Math.floor(i / nHeads), i % nHeads]);
}

class InductionPage extends ReplayPage {
  constructor(schema) {
    super(new ReplayState(schema, DEFAULT_MODEL), { pickerFilter: (e) => e.task === "induction" || (e.source === "run" && e.task === "unknown") });
    this.controls = new Controls(schema, { "": $("settings-probe") }, (name, value) => this.setSetting(name, value));
    this.lossChart = lineChart($("loss-chart"), { series: [] }, { title: "Loss when each snapshot was taken", xLabel: "step", yLabel: "loss (nats)", exportName: "induction-losses" });
    this.positionChart = lineChart($("position-chart"), { series: [] }, { title: "Loss by position on the probe", xLabel: "position of the predicted token", yLabel: "loss (nats)", exportName: "induction-loss-by-position" });
    this.previousChart = lineChart($("previous-chart"), { series: [] }, { title: "Previous-token score of every head", xLabel: "step", yLabel: "score", yDomain: [0, 1], exportName: "previous-token-scores" });
    this.inductionChart = lineChart($("induction-chart"), { series: [] }, { title: "Induction score of every head", xLabel: "step", yLabel: "score", yDomain: [0, 1], exportName: "induction-scores" });
    this.compositionChart = lineChart($("composition-chart"), { series: [] }, { title: "K-composition from the previous-token head", xLabel: "step", yLabel: "composition score", exportName: "k-composition" });
    this.patternViews = [];
    this.lesson = new Lesson($("lesson"), this);
  }

  probe() {
    return { model: this.state.model, ...this.state.settings };
  }

  seriesRequest() {
    return api.series(this.probe());
  }

  snapshotRequest(step) {
    return api.snapshot({ ...this.probe(), step });
  }

  decodeSeries(s) {
    const t = (name) => decodeTensor(s[name]);
    return { ...s, firstCopy: t("first_copy_loss").data, secondCopy: t("second_copy_loss").data, previous: t("previous_token"), inductionScores: t("induction"), composition: t("k_composition") };
  }

  decodeSnapshot(s) {
    return { ...s, patterns: decodeTensor(s.patterns), lossByPosition: decodeTensor(s.loss_by_position).data, previous: decodeTensor(s.previous_token), inductionScores: decodeTensor(s.induction) };
  }

  // -- drawing the whole run -----------------------------------------------------------------------
  drawSeries() {
    const s = this.series;
    const steps = s.steps;
    const band = s.transition ? [{ from: s.transition.start_step, to: s.transition.end_step, label: s.transition.name }] : [];
    const perHead = (tensor) =>
      heads(s.n_layers, s.n_heads).map(([l, h]) => ({
        name: `L${l}H${h}`,
        x: steps,
        y: steps.map((_, i) => tensor.data[(i * s.n_layers + l) * s.n_heads + h]),
      }));
    this.lossChart.update({ series: [{ name: "loss", x: steps, y: s.loss }, { name: "repeated half", x: steps, y: s.repeated_half_loss }] }, { bands: band });
    this.previousChart.update({ series: perHead(s.previous) }, { bands: band });
    this.inductionChart.update({ series: perHead(s.inductionScores) }, { bands: band });
    const n = s.n_heads;
    const fromHead = s.previous_head;
    this.compositionChart.update(
      {
        series: [
          ...Array.from({ length: n }, (_, h) => ({ name: `L0H${fromHead} → L1H${h}`, x: steps, y: steps.map((_, i) => s.composition.data[(i * n + fromHead) * n + h]) })),
          { name: "random", x: steps, y: steps.map(() => s.composition_baseline), color: "#9aa5b1" },
        ],
      },
      { bands: band },
    );
    this.mountScrubber($("scrubber"), steps, band);
    $("status").textContent = `${steps.length} snapshots, steps ${steps[0]} to ${steps[steps.length - 1]}` + (s.transition ? ` · ${s.transition.name}: steps ${s.transition.start_step} to ${s.transition.end_step}` : "");
  }

  // -- drawing one step ----------------------------------------------------------------------------
  drawSeriesAt(index) {
    const s = this.series;
    for (const chart of [this.lossChart, this.previousChart, this.inductionChart, this.compositionChart]) chart.mark(s.steps[index]);
    showNumber($("num-loss"), s.loss[index]);
    showNumber($("num-repeated"), s.repeated_half_loss[index]);
    showNumber($("num-first"), s.firstCopy[index]);
    showNumber($("num-second"), s.secondCopy[index]);
  }

  drawStep(view) {
    const s = this.series;
    const [, q, k] = view.patterns.shape;
    const labels = view.tokens.map((t, i) => (i === 0 ? "BOS" : String(t)));
    if (this.patternViews.length !== view.heads.length) {
      $("patterns").replaceChildren();
      this.patternViews = view.heads.map((name) => {
        const figure = document.createElement("figure");
        figure.className = "rp-figure";
        figure.dataset.head = name;
        const caption = document.createElement("figcaption");
        const holder = document.createElement("div");
        figure.append(caption, holder);
        $("patterns").append(figure);
        return heatmap(holder, { values: [[0]] }, { title: "", rowTitle: "query", colTitle: "key", scale: { domain: [0, 1], label: "attention", scheme: "Blues" }, labels: false, exportName: `pattern-${name}` });
      });
    }
    view.heads.forEach((name, i) => {
      const values = { shape: [q, k], data: view.patterns.data.subarray(i * q * k, (i + 1) * q * k) };
      const kind = i === 0 ? "previous-token head" : "induction head";
      this.patternViews[i].update({ values, rowLabels: labels, colLabels: labels });
      $("patterns").children[i].querySelector("figcaption").textContent = `${name}, the ${kind}, at step ${view.step}`;
    });
    const positions = Array.from(view.lossByPosition, (_, t) => t + 1);
    const half = s.half;
    const copy = (from, to) => positions.map((p, j) => (p >= from && p <= to ? view.lossByPosition[j] : NaN));
    this.positionChart.update({ series: [{ name: "first copy", x: positions, y: copy(1, half) }, { name: "second copy", x: positions, y: copy(half + 1, 2 * half) }] }, { title: `Loss by position on the probe at step ${view.step}` });
    this.drawScores(view);
  }

  drawScores(view) {
    const s = this.series;
    const table = $("score-table");
    if (table.rows.length !== s.n_layers * s.n_heads + 1) {
      table.replaceChildren();
      const head = table.insertRow();
      for (const text of ["head", "previous-token", "induction"]) head.append(Object.assign(document.createElement("th"), { textContent: text }));
      for (const [l, h] of heads(s.n_layers, s.n_heads)) {
        const row = table.insertRow();
        row.dataset.head = `L${l}H${h}`;
        row.append(Object.assign(document.createElement("th"), { textContent: `L${l}H${h}` }));
        for (const kind of ["previous", "induction"]) row.append(Object.assign(document.createElement("td"), { className: `num score-${kind}` }));
      }
    }
    for (const [l, h] of heads(s.n_layers, s.n_heads)) {
      const row = table.querySelector(`tr[data-head="L${l}H${h}"]`);
      showNumber(row.querySelector(".score-previous"), view.previous.data[l * s.n_heads + h]);
      showNumber(row.querySelector(".score-induction"), view.inductionScores.data[l * s.n_heads + h]);
    }
  }
}

runPage("inductionPage", async () => new InductionPage(await api.schema()));
