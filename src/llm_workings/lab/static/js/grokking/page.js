// The Grokking page: a scrubber over a modular-addition run's snapshots; accuracy, loss (log
// scale), the progress measures, the key frequencies' energy and the weight norm over training,
// with the current step marked and grokking shaded; at the scrubbed step, the embedding's spectrum
// and its circle. Every number is the engine's (lab/grokking/compute.py); this file only draws.

import { Lesson } from "../lesson.js";
import { ReplayPage, ReplayState, runPage, showNumber } from "../replay.js";
import { lineChart } from "../views/line-chart.js";
import { decodeTensor } from "../views/tensor.js";
import { grokking as api } from "./api.js";

const $ = (id) => document.getElementById(id);
const DEFAULT_MODEL = "modadd-113";
const MEASURES = ["train_loss", "test_loss", "train_accuracy", "test_accuracy", "restricted_loss", "excluded_loss"];

class GrokkingPage extends ReplayPage {
  constructor() {
    super(new ReplayState({ settings: [] }, DEFAULT_MODEL), { pickerFilter: (e) => e.task === "modular-addition" || (e.source === "run" && e.task === "unknown") });
    const chart = (id, options) => lineChart($(id), { series: [] }, { xLabel: "step", ...options });
    this.accuracyChart = chart("accuracy-chart", { title: "Accuracy", yLabel: "accuracy", yDomain: [0, 1], format: ".1%", exportName: "grokking-accuracy" });
    this.lossChart = chart("loss-chart", { title: "Loss (log scale)", yLabel: "loss (nats)", yType: "log", exportName: "grokking-loss" });
    this.measuresChart = chart("measures-chart", { title: "Progress measures (log scale)", yLabel: "loss (nats)", yType: "log", exportName: "progress-measures" });
    this.energyChart = chart("energy-chart", { title: "The embedding's energy at the key frequencies", yLabel: "share of the energy", yDomain: [0, 1], exportName: "key-frequency-energy" });
    this.normChart = chart("norm-chart", { title: "Total weight norm", yLabel: "√(sum of weights²)", height: 180, exportName: "weight-norm" });
    this.spectrumChart = lineChart($("spectrum-chart"), { series: [] }, { title: "The embedding's spectrum", xLabel: "frequency k", yLabel: "norm of W_E at k", exportName: "embedding-spectrum" });
    this.circleChart = lineChart($("circle-chart"), { series: [] }, { title: "The circle", xLabel: "cos component", yLabel: "sin component", height: 320, exportName: "embedding-circle" });
    this.lesson = new Lesson($("lesson"), this);
  }

  seriesRequest() {
    return api.series({ model: this.state.model });
  }

  snapshotRequest(step) {
    return api.snapshot({ model: this.state.model, step });
  }

  decodeSeries(s) {
    const measures = Object.fromEntries(MEASURES.map((name) => [name, Array.from(decodeTensor(s.measures[name]).data)]));
    return { ...s, measures, keyShare: Array.from(decodeTensor(s.key_share).data), keyNorms: decodeTensor(s.key_norms), weightNorm: Array.from(decodeTensor(s.weight_norm).data) };
  }

  decodeSnapshot(s) {
    return { ...s, spectrum: Array.from(decodeTensor(s.spectrum).data), circle: decodeTensor(s.circle).data };
  }

  drawSeries() {
    const s = this.series;
    const steps = s.steps;
    const m = s.measures;
    const bands = s.transition ? [{ from: s.transition.start_step, to: s.transition.end_step, label: s.transition.name }] : [];
    const line = (name, y, color) => ({ name, x: steps, y, color });
    this.accuracyChart.update({ series: [line("train", m.train_accuracy), line("test", m.test_accuracy)] }, { bands });
    this.lossChart.update({ series: [line("train", m.train_loss), line("test", m.test_loss)] }, { bands });
    this.measuresChart.update({ series: [line("restricted loss", m.restricted_loss), line("excluded loss", m.excluded_loss), line("test loss", m.test_loss, "#9aa5b1")] }, { bands });
    const keys = s.key_freqs;
    this.energyChart.update({ series: [line(`share at the ${keys.length} key frequencies`, s.keyShare)] }, { bands });
    this.normChart.update({ series: [line("weight norm", s.weightNorm)] }, { bands });
    this.mountScrubber($("scrubber"), steps, bands);
    $("status").textContent =
      `${steps.length} snapshots, steps ${steps[0]} to ${steps[steps.length - 1]} · p = ${s.p}, ${s.train_pairs} training pairs · key frequencies ${keys.join(", ")}` +
      (s.transition ? ` · ${s.transition.name}: steps ${s.transition.start_step} to ${s.transition.end_step}` : "");
  }

  drawSeriesAt(index) {
    const s = this.series;
    for (const chart of [this.accuracyChart, this.lossChart, this.measuresChart, this.energyChart, this.normChart]) chart.mark(s.steps[index]);
    for (const name of MEASURES) showNumber($(`num-${name}`), s.measures[name][index]);
    showNumber($("num-key_share"), s.keyShare[index]);
    showNumber($("num-weight_norm"), s.weightNorm[index]);
  }

  drawStep(view) {
    const s = this.series;
    const freqs = view.spectrum.map((_, k) => k);
    const keyBands = s.key_freqs.map((k) => ({ from: k - 0.5, to: k + 0.5 }));
    this.spectrumChart.update({ series: [{ name: "norm", x: freqs, y: view.spectrum }] }, { bands: keyBands, title: `The embedding's spectrum at step ${view.step} (key frequencies shaded)` });
    // the numbers in the order the strongest frequency visits them: x = 0, k, 2k, ... (mod p)
    const order = Array.from({ length: s.p + 1 }, (_, i) => (i * s.strongest) % s.p);
    this.circleChart.update(
      { series: [{ name: `x·${s.strongest} mod ${s.p}`, x: order.map((x) => view.circle[2 * x]), y: order.map((x) => view.circle[2 * x + 1]) }] },
      { title: `The circle at step ${view.step}: each number on frequency ${s.strongest}'s plane` },
    );
  }
}

runPage("grokkingPage", async () => new GrokkingPage());
