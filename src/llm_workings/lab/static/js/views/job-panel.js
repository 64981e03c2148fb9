// The job panel: start a training run, follow it (queue place, progress bar, step, loss, a live loss
// line), cancel it, and start it again. Unlike the pure views beside it, it talks to /api/jobs itself.
//
//   const panel = jobPanel(el, {recipe: "induction-2l", steps: 200, onFinished(result) {...}});
//   panel.start(); panel.cancel(); panel.job;  // the job's last view from the server, or null
//
// A page with its own settings form passes `form: false` and `body()` (the POST /api/jobs body);
// `pausable: true` adds Pause (the run stops with a checkpoint, the job ends "paused") and Resume
// (a new job continues it; the loss line keeps what came before). `onProgress(point, job)` and
// `onState(job)` hear every event; `panel.follow(job)` follows a job started elsewhere (a resume
// from a list of runs); `panel.curve` is the loss line's {x, y}. `kind` (default "train") is the job
// kind it resumes (POST /api/jobs {kind, resume}) and picks up when the page opens mid-run.
//
// Progress comes as Server-Sent Events (GET /api/jobs/{id}/events, same origin, so CSP
// connect-src 'self' allows it). The stream ends after the final state; the panel closes its
// EventSource then, so the browser does not reconnect. It links static/css/jobs.css itself.
import { request } from "../api.js";
import { lineChart } from "./line-chart.js";

const FINAL = new Set(["done", "cancelled", "paused", "failed"]);
const RECIPES = [
  ["induction-2l", "induction-2l: induction heads on repeated tokens"],
  ["modadd-113", "modadd-113: modular addition (groks)"],
  ["shakespeare-char", "shakespeare-char: a character-level GPT"],
];
const MAX_STEPS = 5000;
const STYLESHEET = new URL("../../css/jobs.css", import.meta.url).href;

function linkStylesheet() {
  if ([...document.querySelectorAll('link[rel="stylesheet"]')].some((l) => l.href === STYLESHEET)) return;
  document.head.append(Object.assign(document.createElement("link"), { rel: "stylesheet", href: STYLESHEET }));
}

function make(tag, attrs = {}, text = "") {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text) node.textContent = text;
  return node;
}

const post = (path, body) => request("POST", path, body ?? {});

function describe(job) {
  if (job.state === "queued") return `Waiting in the queue: place ${job.place}`;
  if (job.state === "running") return job.cancel_requested ? "Cancelling…" : `Training: ${job.message}`;
  if (job.state === "done") return `Done: saved as the run ${job.result.run}`;
  if (job.state === "cancelled") return "Cancelled: nothing was saved";
  if (job.state === "paused") return `Paused at step ${job.result.step}: resume to continue from its checkpoint`;
  if (job.state === "running" && job.pause_requested) return "Pausing after this step…";
  return `Failed: ${job.error}`;
}

export function jobPanel(
  el,
  { recipe = "induction-2l", steps = 200, kind = "train", form: ownForm = true, body = null, pausable = false, onFinished = () => {}, onProgress = () => {}, onState = () => {} } = {},
) {
  linkStylesheet();
  el.replaceChildren();
  el.classList.add("lw-job-panel");
  const form = make("form", { class: "lw-job-form" });
  const recipeSelect = make("select", { name: "recipe", "aria-label": "Recipe" });
  for (const [value, label] of RECIPES) recipeSelect.append(new Option(label, value, false, value === recipe));
  const stepsInput = make("input", { name: "steps", type: "number", min: "1", max: String(MAX_STEPS), value: String(steps) });
  const startButton = make("button", { type: "submit", class: "lw-job-start" }, "Train");
  const cancelButton = make("button", { type: "button", class: "lw-job-cancel", hidden: "" }, "Cancel");
  const pauseButton = make("button", { type: "button", class: "lw-job-pause", hidden: "" }, "Pause");
  const resumeButton = make("button", { type: "button", class: "lw-job-resume", hidden: "" }, "Resume");
  const recipeLabel = make("label", {}, "Recipe ");
  recipeLabel.append(recipeSelect);
  const stepsLabel = make("label", {}, "Steps ");
  stepsLabel.append(stepsInput);
  if (ownForm) form.append(recipeLabel, stepsLabel);
  form.append(startButton, ...(pausable ? [pauseButton, resumeButton] : []), cancelButton);

  const status = make("p", { class: "lw-job-status", role: "status", "aria-live": "polite" }, "Not started.");
  const bar = make("progress", { class: "lw-job-progress", max: "1", value: "0" });
  const numbers = make("dl", { class: "lw-job-numbers" });
  const shown = {};
  for (const [key, label] of [["step", "step"], ["loss", "loss"], ["tokens_per_second", "tokens/s"]]) {
    numbers.append(make("dt", {}, label));
    shown[key] = numbers.appendChild(make("dd", { "data-metric": key }, "—"));
  }
  const chartHolder = make("div", { class: "lw-job-chart" });
  el.append(form, status, bar, numbers, chartHolder);

  let source = null;
  let losses = { x: [], y: [] };
  let chart = null;
  let drawPending = false;
  const panel = { job: null, start, cancel, pause, resume, follow, destroy, get curve() { return losses; } };

  function drawChart() {
    drawPending = false;
    const data = { series: [{ name: "training loss", x: losses.x, y: losses.y }] };
    if (chart) chart.update(data);
    else chart = lineChart(chartHolder, data, { title: "Training loss", xLabel: "step", yLabel: "loss", height: 160, exportName: "training-loss" });
  }

  function showState(job) {
    panel.job = job;
    el.dataset.state = job.state;
    status.textContent = describe(job);
    bar.value = job.fraction;
    const finished = FINAL.has(job.state);
    cancelButton.hidden = finished;
    pauseButton.hidden = job.state !== "running";
    pauseButton.disabled = job.pause_requested || job.cancel_requested;
    resumeButton.hidden = job.state !== "paused";
    startButton.textContent = finished ? "Restart" : "Train";
    startButton.disabled = !finished;
    if (finished) {
      source?.close();
      source = null;
    }
    onState(job);
    if (finished && job.state === "done") onFinished(job.result);
  }

  function showProgress(point) {
    bar.value = point.fraction;
    if (panel.job && panel.job.state === "running") {
      Object.assign(panel.job, { fraction: point.fraction, message: point.message });
      status.textContent = describe(panel.job);
    }
    onProgress(point, panel.job);
    const m = point.metrics;
    if (m.step === undefined) return;
    shown.step.textContent = `${m.step} of ${m.steps}`;
    shown.loss.textContent = m.loss.toFixed(4);
    shown.loss.dataset.value = String(m.loss);
    shown.tokens_per_second.textContent = Math.round(m.tokens_per_second).toLocaleString("en");
    losses.x.push(m.step);
    losses.y.push(m.loss);
    if (!drawPending) {
      drawPending = true;
      requestAnimationFrame(drawChart);
    }
  }

  // `keepUpTo`: a resumed run's step; the loss line keeps what came before it, or starts from `curve`
  // (the run's history, for a run paused before this page was opened).
  function follow(job, { keepUpTo = null, curve = null } = {}) {
    source?.close();
    if (curve) losses = { x: [...curve.x], y: [...curve.y] };
    else if (keepUpTo === null) losses = { x: [], y: [] };
    else {
      const kept = losses.x.filter((step) => step <= keepUpTo).length;
      losses = { x: losses.x.slice(0, kept), y: losses.y.slice(0, kept) };
    }
    if (keepUpTo === null) for (const key in shown) shown[key].textContent = "—";
    if (losses.x.length) requestAnimationFrame(drawChart);
    showState(job);
    source = new EventSource(`/api/jobs/${job.id}/events`);
    source.addEventListener("progress", (event) => showProgress(JSON.parse(event.data)));
    source.addEventListener("state", (event) => showState(JSON.parse(event.data)));
    // On a dropped connection EventSource reconnects by itself, resuming after the last event id.
  }

  async function start() {
    startButton.disabled = true;
    status.textContent = "Starting…";
    try {
      const posted = body ? body() : { kind: "train", recipe: recipeSelect.value, overrides: { steps: Number(stepsInput.value) } };
      follow(await post("/api/jobs", posted));
    } catch (error) {
      status.textContent = `Not started: ${error.message}`;
      startButton.disabled = false;
    }
  }

  async function cancel() {
    if (!panel.job) return;
    try {
      showState(await post(`/api/jobs/${panel.job.id}/cancel`));
    } catch (error) {
      status.textContent = `Could not cancel: ${error.message}`;
    }
  }

  async function pause() {
    if (!panel.job) return;
    try {
      showState(await post(`/api/jobs/${panel.job.id}/pause`));
    } catch (error) {
      status.textContent = `Could not pause: ${error.message}`;
    }
  }

  // Resume a paused run: this panel's last one, or the run named.
  async function resume(name = panel.job?.params?.name, { curve = null } = {}) {
    if (!name) return;
    resumeButton.disabled = true;
    try {
      const job = await post("/api/jobs", { kind, resume: name });
      follow(job, { keepUpTo: job.params.resumed_from, curve });
    } catch (error) {
      status.textContent = `Could not resume: ${error.message}`;
    } finally {
      resumeButton.disabled = false;
    }
  }

  function destroy() {
    source?.close();
    chart?.destroy();
    el.replaceChildren();
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    start();
  });
  cancelButton.addEventListener("click", cancel);
  pauseButton.addEventListener("click", pause);
  resumeButton.addEventListener("click", () => resume());

  // A run started before this page was opened (or reloaded) is picked up where it is.
  fetch("/api/jobs")
    .then((response) => (response.ok ? response.json() : { jobs: [] }))
    .then(({ jobs }) => {
      const current = jobs.filter((j) => j.kind === kind && !FINAL.has(j.state)).pop();
      if (current && !panel.job) follow(current);
    })
    .catch(() => {});
  return panel;
}
