// The Train page: a recipe's settings as a form built from its table (GET /api/train/schema), checked
// by the server as they change; a run of it as a job (the shared job panel, with pause and resume),
// whose loss, evaluations and snapshots stream in; the queue and the paused runs; and the finished
// runs in a model picker with their cards. Every number is the trainer's; this file only draws.

import { Controls } from "../controls.js";
import { Lesson } from "../lesson.js";
import { jobPanel } from "../views/job-panel.js";
import { lineChart } from "../views/line-chart.js";
import { modelPicker } from "../views/model-picker.js";
import { train as api } from "./api.js";
import { TrainState } from "./state.js";

const $ = (id) => document.getElementById(id);
const FINAL = new Set(["done", "cancelled", "paused", "failed"]);
const CHECK_DELAY_MS = 200;
const POLL_MS = 1000; // the queue's places, while any run is unfinished
const LESSON_PAGES = { induction: "/induction-heads", "modular-addition": "/grokking" }; // they replay a run's snapshots
const GROUPS = ["data", "model", "train"];

// Four significant digits, the full value kept in data-value for the tests.
function shownNumber(value) {
  const el = document.createElement("span");
  el.className = "num";
  el.dataset.value = String(value);
  el.textContent = Number.isInteger(value) ? String(value) : Number(value.toPrecision(4)).toString();
  return el;
}

function make(tag, attrs = {}, text = "") {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text) el.textContent = text;
  return el;
}

class TrainPage {
  constructor(schema) {
    this.schema = schema;
    this.urlState = new TrainState(schema);
    this.state = this.urlState.parse(location.search);
    this.recipes = Object.fromEntries(schema.recipes.map((r) => [r.name, r]));
    this.pending = 0; // requests in flight (the browser tests wait for 0)
    this.asked = 0; // an answer to an old check is dropped
    this.evals = []; // the followed run's evaluations, {step, metric: value}
    this.snapshots = [];
    this.jobId = null;
    this.builtFor = null;
    for (const r of schema.recipes) $("recipe").append(new Option(r.name, r.name));
    $("recipe").addEventListener("change", () => this.setRecipe($("recipe").value));
    $("run-name").addEventListener("change", () => {
      this.state.name = $("run-name").value.trim();
      this.writeUrl();
    });
    this.panel = jobPanel($("job-panel"), {
      form: false,
      pausable: true,
      body: () => this.body(),
      onProgress: (point, job) => this.progress(point, job),
      onState: (job) => this.jobState(job),
      onFinished: (result) => this.finished(result),
    });
    this.picker = modelPicker($("runs-picker"), {
      filter: { source: "run" },
      label: "Your training runs",
      onChange: (id) => this.showCard(id),
    });
    this.picker.ready.then(() => this.picker.value && this.showCard(this.picker.value));
    this.lesson = new Lesson($("lesson"), this);
    this.show();
    this.refreshLists();
  }

  // -- the form and the URL ------------------------------------------------------------------
  buildControls() {
    if (this.builtFor === this.state.recipe) return;
    this.builtFor = this.state.recipe;
    const containers = Object.fromEntries(GROUPS.map((g) => [g, $(`settings-${g}`)]));
    for (const el of Object.values(containers)) el.replaceChildren();
    this.controls = new Controls({ settings: this.recipes[this.state.recipe].settings }, containers, (name, value) => this.setSetting(name, value));
    for (const el of Object.values(containers)) el.hidden = !el.children.length;
  }

  show() {
    this.buildControls();
    this.controls.set(this.state.settings);
    $("recipe").value = this.state.recipe;
    $("run-name").value = this.state.name;
    $("recipe-summary").textContent = this.recipes[this.state.recipe].summary;
    this.writeUrl();
    return this.check();
  }

  writeUrl() {
    const url = this.urlState.format(this.state);
    if (url !== location.search) history.replaceState(null, "", url);
  }

  setRecipe(name) {
    this.state = { recipe: name, settings: this.urlState.defaults(name), name: "" };
    this.show();
  }

  setSetting(name, value) {
    this.state.settings[name] = value;
    this.writeUrl();
    clearTimeout(this.checkTimer);
    this.checkTimer = setTimeout(() => this.check(), CHECK_DELAY_MS);
  }

  async applyQuery(href, { play = false } = {}) {
    this.state = this.urlState.parse(new URL(href, location.href).search);
    await this.show();
    if (play) await this.panel.start();
  }

  body() {
    const body = { kind: "train", recipe: this.state.recipe, overrides: this.urlState.overrides(this.state) };
    if (this.state.name) body.name = this.state.name;
    return body;
  }

  // The server's check: its refusal names the setting (marked, and said in the banner); its warnings are listed.
  async check() {
    const asked = ++this.asked;
    this.pending++;
    try {
      const checked = await api.check({ recipe: this.state.recipe, overrides: this.urlState.overrides(this.state) });
      if (asked !== this.asked) return;
      this.controls.flag(null);
      $("banner").hidden = true;
      $("warnings").replaceChildren(...checked.warnings.map((w) => make("li", { "data-field": w.field }, w.message)));
    } catch (error) {
      if (asked !== this.asked) return;
      this.controls.flag(error.field);
      $("banner").querySelector(".banner-message").textContent = error.message;
      $("banner").hidden = false;
      $("warnings").replaceChildren();
    } finally {
      this.pending--;
    }
  }

  // -- the run ---------------------------------------------------------------------------------
  jobState(job) {
    if (job.id !== this.jobId) {
      const resumed = job.params.resumed_from;
      const sameRun = this.run === job.params.model;
      this.jobId = job.id;
      this.run = job.params.model;
      this.task = this.recipes[job.params.recipe]?.task;
      if (resumed == null || !sameRun) this.evals = [];
      else this.evals = this.evals.filter((e) => e.step <= resumed);
      if (resumed == null) this.snapshots = [];
      this.drawEvals();
      this.drawSnapshots();
    }
    this.refreshLists();
  }

  progress(point, job) {
    if (!job || job.id !== this.jobId) return;
    const m = point.metrics;
    if (m.evaluated) {
      this.evals.push(m.evaluated);
      this.scheduleDraw();
    }
    if (m.snapshots && m.snapshots.length !== this.snapshots.length) {
      this.snapshots = m.snapshots;
      this.drawSnapshots();
    }
  }

  scheduleDraw() {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      this.drawEvals();
    });
  }

  drawEvals() {
    const keys = [...new Set(this.evals.flatMap((e) => Object.keys(e)))].filter((k) => k !== "step");
    const series = (pick) =>
      keys.filter(pick).map((k) => {
        const rows = this.evals.filter((e) => Number.isFinite(e[k]));
        return { name: k.replaceAll("_", " "), x: rows.map((e) => e.step), y: rows.map((e) => e[k]) };
      });
    const losses = series((k) => k.endsWith("loss"));
    const scores = series((k) => k.includes("accuracy") || k.includes("score"));
    this.lossChart = this.chart(this.lossChart, "eval-loss-chart", losses, "Evaluation loss", "loss (nats)", "eval-loss");
    this.scoreChart = this.chart(this.scoreChart, "eval-score-chart", scores, "Accuracy and head scores", "value", "eval-scores");
  }

  chart(existing, holder, series, title, yLabel, exportName) {
    if (!series.length) {
      existing?.destroy();
      $(holder).replaceChildren();
      return null;
    }
    const data = { series };
    if (existing) {
      existing.update(data);
      return existing;
    }
    return lineChart($(holder), data, { title, xLabel: "step", yLabel, height: 180, exportName });
  }

  drawSnapshots() {
    const page = LESSON_PAGES[this.task];
    $("snapshot-list").replaceChildren(
      ...this.snapshots.map((step) => {
        const item = make("li", { "data-step": String(step) });
        if (page && this.run) item.append(make("a", { href: `${page}?model=${encodeURIComponent(this.run)}&step=${step}` }, `step ${step}`));
        else item.textContent = `step ${step}`;
        return item;
      }),
    );
    if (!this.snapshots.length) $("snapshot-list").append(make("li", { class: "small" }, "None yet."));
  }

  async finished(result) {
    await this.picker.refresh();
    this.picker.setValue(result.model);
    await this.showCard(result.model);
    this.refreshLists();
  }

  async showCard(id) {
    this.pending++;
    try {
      const detail = await api.model(id);
      const rows = [["run", detail.label], ["task", detail.task], ["parameters", detail.parameters]];
      for (const [k, v] of Object.entries(detail.metrics)) if (typeof v === "number") rows.push([k.replaceAll("_", " "), v]);
      const items = [];
      for (const [k, v] of rows) {
        const value = make("dd", { "data-metric": k });
        value.append(typeof v === "number" ? shownNumber(v) : String(v ?? "—"));
        items.push(make("dt", {}, k), value);
      }
      if (detail.reproduce) {
        const value = make("dd", { "data-metric": "reproduce" });
        value.append(make("code", {}, detail.reproduce));
        items.push(make("dt", {}, "reproduce"), value);
      }
      $("card").replaceChildren(...items);
    } catch (error) {
      $("card").replaceChildren(make("dd", { role: "alert" }, `No card: ${error.message}`));
    } finally {
      this.pending--;
    }
  }

  // -- the queue and the paused runs -----------------------------------------------------------
  async refreshLists() {
    if (this.refreshing) return;
    this.refreshing = true;
    this.pending++;
    try {
      const [{ jobs }, { runs }] = await Promise.all([api.jobs(), api.runs()]);
      const active = jobs.filter((j) => j.kind === "train" && !FINAL.has(j.state));
      $("queue-list").replaceChildren(
        ...active.map((j) => {
          const text = j.state === "queued" ? `${j.params.name}: waiting, place ${j.place}` : `${j.params.name}: training (${j.message})`;
          return make("li", { "data-job": j.id, "data-state": j.state, ...(j.place ? { "data-place": String(j.place) } : {}) }, text);
        }),
      );
      if (!active.length) $("queue-list").append(make("li", { class: "small" }, "Nothing is training."));
      const paused = runs.filter((run) => !run.job); // the others are training, or queued, now
      $("resumable-list").replaceChildren(
        ...paused.map((run) => {
          const item = make("li", { "data-run": run.name }, `${run.name} (${run.recipe}), checkpoint at step ${run.step} `);
          const button = make("button", { type: "button", class: "tr-resume" }, "Resume");
          button.addEventListener("click", () => this.resumeRun(run));
          item.append(button);
          return item;
        }),
      );
      if (!paused.length) $("resumable-list").append(make("li", { class: "small" }, "None."));
      clearTimeout(this.pollTimer);
      if (active.length) this.pollTimer = setTimeout(() => this.refreshLists(), POLL_MS);
    } catch {
      // the next state change asks again
    } finally {
      this.refreshing = false;
      this.pending--;
    }
  }

  // A paused run, from the list: its curves start from its checkpoint's history.
  async resumeRun(run) {
    const past = await api.history(run.name);
    this.run = run.model;
    this.evals = past.evals;
    const curve = { x: past.losses.map((_, i) => i + 1), y: past.losses };
    await this.panel.resume(run.name, { curve });
  }
}

api.schema().then((schema) => {
  window.trainPage = new TrainPage(schema);
});
