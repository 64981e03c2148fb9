// The job panel: start a training run, follow it (queue place, progress bar, step, loss, a live loss
// line), cancel it, and start it again. Unlike the pure views beside it, it talks to /api/jobs itself.
//
//   const panel = jobPanel(el, {recipe: "induction-2l", steps: 200, onFinished(result) {...}});
//   panel.start(); panel.cancel(); panel.job;  // the job's last view from the server, or null
//
// Progress comes as Server-Sent Events (GET /api/jobs/{id}/events, same origin, so CSP
// connect-src 'self' allows it). The stream ends after the final state; the panel closes its
// EventSource then, so the browser does not reconnect. It links static/css/jobs.css itself.
import { request } from "../api.js";
import { lineChart } from "./line-chart.js";

const FINAL = new Set(["done", "cancelled", "failed"]);
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
  return `Failed: ${job.error}`;
}

export function jobPanel(el, { recipe = "induction-2l", steps = 200, onFinished = () => {} } = {}) {
  linkStylesheet();
  el.replaceChildren();
  el.classList.add("lw-job-panel");
  const form = make("form", { class: "lw-job-form" });
  const recipeSelect = make("select", { name: "recipe", "aria-label": "Recipe" });
  for (const [value, label] of RECIPES) recipeSelect.append(new Option(label, value, false, value === recipe));
  const stepsInput = make("input", { name: "steps", type: "number", min: "1", max: String(MAX_STEPS), value: String(steps) });
  const startButton = make("button", { type: "submit", class: "lw-job-start" }, "Train");
  const cancelButton = make("button", { type: "button", class: "lw-job-cancel", hidden: "" }, "Cancel");
  const recipeLabel = make("label", {}, "Recipe ");
  recipeLabel.append(recipeSelect);
  const stepsLabel = make("label", {}, "Steps ");
  stepsLabel.append(stepsInput);
  form.append(recipeLabel, stepsLabel, startButton, cancelButton);

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
  const panel = { job: null, start, cancel, destroy };

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
    startButton.textContent = finished ? "Restart" : "Train";
    startButton.disabled = !finished;
    if (finished) {
      source?.close();
      source = null;
      if (job.state === "done") onFinished(job.result);
    }
  }

  function showProgress(point) {
    bar.value = point.fraction;
    if (panel.job && panel.job.state === "running") {
      Object.assign(panel.job, { fraction: point.fraction, message: point.message });
      status.textContent = describe(panel.job);
    }
    const m = point.metrics;
    if (m.step === undefined) return;
    shown.step.textContent = `${m.step} of ${m.steps}`;
    shown.loss.textContent = m.loss.toFixed(4);
    shown.tokens_per_second.textContent = Math.round(m.tokens_per_second).toLocaleString("en");
    losses.x.push(m.step);
    losses.y.push(m.loss);
    if (!drawPending) {
      drawPending = true;
      requestAnimationFrame(drawChart);
    }
  }

  function follow(job) {
    source?.close();
    losses = { x: [], y: [] };
    for (const key in shown) shown[key].textContent = "—";
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
      const body = { kind: "train", recipe: recipeSelect.value, overrides: { steps: Number(stepsInput.value) } };
      follow(await post("/api/jobs", body));
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

  // A run started before this page was opened (or reloaded) is picked up where it is.
  fetch("/api/jobs")
    .then((response) => (response.ok ? response.json() : { jobs: [] }))
    .then(({ jobs }) => {
      const current = jobs.filter((j) => j.kind === "train" && !FINAL.has(j.state)).pop();
      if (current && !panel.job) follow(current);
    })
    .catch(() => {});
  return panel;
}
