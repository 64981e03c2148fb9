// The Fine-tuning page: the job's settings, the run (the shared job panel, with pause, resume and
// cancel), learning and forgetting as they stream in, and, once a run has finished, its generations,
// ΔW per module and the task vector's λ. Every number is the engine's (lab/jobs/finetuning.py,
// lab/finetune/compute.py); this file only draws and keeps the URL.

import { Controls } from "../controls.js";
import { fmt } from "../format.js";
import { Lesson } from "../lesson.js";
import { barChart } from "../views/bar-chart.js";
import { jobPanel } from "../views/job-panel.js";
import { lineChart } from "../views/line-chart.js";
import { finetune as api } from "./api.js";
import { FineTuneState } from "./state.js";

const $ = (id) => document.getElementById(id);
const TOP_VALUES = 16; // singular values of ΔW drawn (the rest are at the noise floor for a LoRA run)

function number(el, value) {
  el.textContent = fmt(value);
  el.dataset.value = String(value);
}

class FineTunePage {
  constructor(schema) {
    this.schema = schema;
    this.urlState = new FineTuneState(schema);
    this.state = this.urlState.parse(location.search);
    this.pending = 0; // requests in flight (the browser tests wait for 0)
    this.curves = { step: [], target: [], original: [] };
    this.spectra = null;
    this.lambdas = null;
    this.controls = new Controls(schema, { "": $("settings") }, (name, value) => this.setSetting(name, value));
    this.controls.set(this.state.settings);
    this.panel = jobPanel($("job-panel"), {
      form: false,
      kind: "finetune",
      pausable: true,
      body: () => ({ kind: "finetune", settings: this.urlState.changed(this.state) }),
      onProgress: (point) => this.onProgress(point),
      onFinished: (result) => this.showRun(result.run),
      onState: () => this.listRuns(),
    });
    $("generate").addEventListener("click", () => this.generate());
    $("module").addEventListener("change", () => this.setView({ module: $("module").value }));
    $("lambda").addEventListener("input", () => this.setView({ lambda: String(this.lambdas[Number($("lambda").value)].scale) }));
    $("prompt").value = this.state.prompt;
    $("gen-seed").value = this.state.gen_seed;
    this.lesson = new Lesson($("lesson"), this);
    if (this.state.run) this.showRun(this.state.run);
    this.listRuns();
  }

  // The runs folder's fine-tuning runs: a finished one opens below, a paused one resumes.
  async listRuns() {
    const { runs } = await this.track(api.runs());
    $("run-list").replaceChildren(
      ...runs.map((run) => {
        const item = Object.assign(document.createElement("li"), { textContent: `${run.name} ` });
        item.dataset.run = run.name;
        if (run.finished) {
          const open = Object.assign(document.createElement("button"), { type: "button", className: "ft-open", textContent: "Show" });
          open.addEventListener("click", () => this.showRun(run.name));
          item.append(open);
        } else if (!run.job) {
          const resume = Object.assign(document.createElement("button"), { type: "button", className: "ft-resume", textContent: "Resume" });
          resume.addEventListener("click", () => this.panel.resume(run.name));
          item.append(resume);
        } else item.append("(training)");
        return item;
      }),
    );
  }

  setSetting(name, value) {
    this.state.settings[name] = value;
    history.replaceState(null, "", this.urlState.format(this.state));
  }

  setView(changes) {
    Object.assign(this.state, changes);
    history.replaceState(null, "", this.urlState.format(this.state));
    this.drawModule();
    this.drawLambda();
  }

  // A try-this link or a checkpoint: its settings on the defaults; `play` starts the run.
  applyQuery(query, { play = false } = {}) {
    this.state = this.urlState.parse(query);
    history.replaceState(null, "", this.urlState.format(this.state));
    this.controls.set(this.state.settings);
    $("after-panel").hidden = true;
    if (play) return this.panel.start();
  }

  // A run reports step 0 (the base) first, and a resumed one then its evaluations before the pause.
  onProgress(point) {
    const e = point.metrics.evaluated;
    if (!e) return;
    if (e.step === 0) this.curves = { step: [], target: [], original: [] };
    if (!this.curves.step.includes(e.step)) {
      this.curves.step.push(e.step);
      this.curves.target.push(e.target_val_loss);
      this.curves.original.push(e.original_val_loss);
    }
    this.drawCurves();
  }

  drawCurves() {
    const data = {
      series: [
        { name: "target domain (learning)", x: this.curves.step, y: this.curves.target },
        { name: "original domain (forgetting)", x: this.curves.step, y: this.curves.original },
      ],
    };
    if (this.curveChart) this.curveChart.update(data);
    else this.curveChart = lineChart($("curves-chart"), data, { title: "Validation loss", xLabel: "step", yLabel: "loss (nats)", height: 200, exportName: "learning-forgetting" });
    const table = $("curves-chart").querySelector(".ft-evals") ?? $("curves-chart").appendChild(Object.assign(document.createElement("table"), { className: "ft-evals" }));
    table.replaceChildren();
    table.insertRow().append(...["step", "target loss", "original loss"].map((t) => Object.assign(document.createElement("th"), { textContent: t })));
    this.curves.step.forEach((step, i) => {
      const row = table.insertRow();
      row.dataset.step = String(step);
      row.insertCell().textContent = String(step);
      number(Object.assign(row.insertCell(), { className: "target" }), this.curves.target[i]);
      number(Object.assign(row.insertCell(), { className: "original" }), this.curves.original[i]);
    });
  }

  async track(promise) {
    this.pending += 1;
    try {
      return await promise;
    } finally {
      this.pending -= 1;
    }
  }

  async showRun(name) {
    this.state.run = name;
    history.replaceState(null, "", this.urlState.format(this.state));
    try {
      const run = await this.track(api.run(name));
      if (!run.finished) return;
      this.curves = { step: [0], target: [run.baseline.target_val_loss], original: [run.baseline.original_val_loss] };
      for (const e of run.evals) {
        this.curves.step.push(e.step);
        this.curves.target.push(e.target_val_loss);
        this.curves.original.push(e.original_val_loss);
      }
      this.drawCurves();
      $("run-name").textContent = name;
      $("after-panel").hidden = false;
      const [spectra, lambdas] = await this.track(Promise.all([api.spectra(name), api.lambda(name), this.generate()]));
      this.spectra = spectra;
      this.lambdas = lambdas.rows;
      $("module").replaceChildren(...spectra.modules.map((m) => new Option(`${m.name}${m.intruders.length ? ` (${m.intruders.length} intruders)` : ""}`, m.name)));
      $("lambda").max = String(this.lambdas.length - 1);
      this.drawModule();
      this.drawLambda();
    } catch (error) {
      this.refuse(error);
    }
  }

  refuse(error) {
    $("banner").querySelector(".banner-message").textContent = error.message;
    $("banner").hidden = false;
  }

  async generate() {
    this.state.prompt = $("prompt").value;
    this.state.gen_seed = $("gen-seed").value;
    history.replaceState(null, "", this.urlState.format(this.state));
    const body = { run: this.state.run, prompt: { text: this.state.prompt }, seed: Number(this.state.gen_seed) };
    try {
      const out = await this.track(api.generate(body));
      $("banner").hidden = true;
      const cells = [["base", "base (adapter disabled)"], ["tuned", "fine-tuned"], ["merged", out.merged_is_tuned ? "merged (full fine-tuning: the fine-tuned model itself)" : "merged"]];
      $("generations").replaceChildren(
        ...cells.map(([key, label]) => {
          const box = Object.assign(document.createElement("figure"), { className: `ft-generation ft-${key}` });
          box.dataset.model = key;
          box.append(Object.assign(document.createElement("figcaption"), { textContent: label }));
          box.append(Object.assign(document.createElement("pre"), { textContent: out.prompt.join("") + out[key].text }));
          return box;
        }),
      );
    } catch (error) {
      this.refuse(error);
    }
  }

  drawModule() {
    if (!this.spectra) return;
    const modules = this.spectra.modules;
    const m = modules.find((x) => x.name === this.state.module) ?? modules[0];
    $("module").value = m.name;
    const figures = $("module-figures");
    figures.replaceChildren();
    for (const [label, key] of [["‖ΔW‖ / ‖W₀‖ = ", "relative_norm"], ["; rank ", "rank"], ["; effective rank ", "effective_rank"]]) {
      figures.append(label);
      const span = Object.assign(document.createElement("span"), { className: "figure" });
      span.dataset.key = key;
      number(span, m[key]);
      figures.append(span);
    }
    figures.append(`; intruders: ${m.intruders.length ? m.intruders.map((i) => `u${i + 1}`).join(", ") : "none"}`);
    const values = m.singular_values.slice(0, TOP_VALUES);
    const spectrum = { series: [{ name: "σᵢ(ΔW)", x: values.map((_, i) => i + 1), y: values.map((v) => Math.max(v, 1e-12)) }] };
    const options = { title: `Singular values of ΔW, ${m.name}`, xLabel: "i", yLabel: "σᵢ", yType: "log", height: 200, exportName: "delta-w-spectrum" };
    if (this.spectrumChart) this.spectrumChart.update(spectrum, options);
    else this.spectrumChart = lineChart($("spectrum-chart"), spectrum, options);
    const bars = m.top_cosines.map((c, i) => ({ label: `u${i + 1}${m.intruders.includes(i) ? " intruder" : ""}`, value: c, highlight: m.intruders.includes(i) }));
    const barOptions = { title: "|cos| of the tuned and the base's i-th direction", domain: [0, 1], exportName: "top-directions" };
    if (this.cosineChart) this.cosineChart.update({ bars }, barOptions);
    else this.cosineChart = barChart($("cosine-chart"), { bars }, barOptions);
  }

  drawLambda() {
    if (!this.lambdas) return;
    const wanted = this.state.lambda === "" ? 1 : Number(this.state.lambda);
    let index = this.lambdas.findIndex((r) => r.scale === wanted);
    if (index === -1) index = this.lambdas.findIndex((r) => r.scale === 1);
    const row = this.lambdas[index];
    $("lambda").value = String(index);
    $("lambda-value").textContent = `λ = ${row.scale}`;
    number($("lambda-target"), row.target_val_loss);
    number($("lambda-original"), row.original_val_loss);
    const xs = this.lambdas.map((r) => r.scale);
    const data = {
      series: [
        { name: "target domain", x: xs, y: this.lambdas.map((r) => r.target_val_loss) },
        { name: "original domain", x: xs, y: this.lambdas.map((r) => r.original_val_loss) },
      ],
    };
    const options = { title: "Both losses of θ_base + λτ", xLabel: "λ", yLabel: "loss (nats)", height: 200, exportName: "task-vector-lambda" };
    if (this.lambdaChart) this.lambdaChart.update(data, options);
    else this.lambdaChart = lineChart($("lambda-chart"), data, options);
  }
}

api.schema().then((schema) => {
  window.finetunePage = new FineTunePage(schema);
});
