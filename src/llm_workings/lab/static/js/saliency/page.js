// The Saliency page: the prompt with each token coloured by its score under one method, a toggle
// between the three methods, all three side by side (each scaled to its largest score), and the
// completeness check of integrated gradients. Every number is the engine's
// (analysis/saliency.py through lab/saliency/routes.py); this file only draws and keeps the URL.

import { request } from "../api.js";
import { Controls } from "../controls.js";
import { Lesson } from "../lesson.js";
import { promptInput } from "../prompt-input.js";
import { UrlState } from "../url-state.js";
import { el, visibleText } from "../views/common.js";
import { heatmap } from "../views/heatmap.js";
import { modelPicker } from "../views/model-picker.js";
import { decodeTensor } from "../views/tensor.js";
import { tokenStrip } from "../views/token-strip.js";

const $ = (id) => document.getElementById(id);
const DEFAULTS = { model: "austen-bpe", prompt: { text: "Mr. Darcy and Miss Bennet. Mr. Darcy and Miss" } };
export const METHOD_NAMES = {
  integrated_gradients: "Integrated gradients",
  gradient_x_input: "Gradient × input",
  attention_rollout: "Attention rollout (heuristic)",
};
// 4 significant digits; the full value goes in data-value.
const sig = (x) => (Number.isFinite(x) ? Number(x).toPrecision(4) : "—");

class SaliencyPage {
  constructor(schema) {
    this.urlState = new UrlState(schema.settings, DEFAULTS);
    this.state = this.urlState.parse(location.search);
    this.data = null;
    this.pending = 0; // requests in flight (the browser tests wait for 0)
    this.asked = 0;
    this.controls = new Controls(schema, { target: $("settings-target"), ig: $("settings-ig") }, (name, value) => this.setSetting(name, value));
    for (const button of document.querySelectorAll("button.sl-method")) {
      button.addEventListener("click", () => this.setMethod(button.dataset.method));
    }
    this.lesson = new Lesson($("lesson"), this);
  }

  async start() {
    this.picker = modelPicker($("model-picker"), { value: this.state.model, onChange: (id) => this.setModel(id) });
    await this.picker.ready;
    this.state.model = this.picker.value ?? this.state.model;
    this.box = promptInput($("prompt"), {
      model: this.state.model,
      value: this.state.prompt,
      maxTokens: 128,
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
    if (name === "method") this.setMethod(value);
    else this.show();
  }

  // The toggle redraws from the scores already here: all three came in one answer.
  setMethod(method) {
    this.state.settings.method = method;
    this.controls.set(this.state.settings);
    history.replaceState(null, "", this.urlState.format(this.state));
    if (this.data) this.drawStrip();
  }

  refuse(error) {
    $("banner").hidden = false;
    $("banner").querySelector(".banner-message").textContent = error.message;
    this.controls.flag(error.field);
    document.body.dataset.refused = "true";
    for (const id of ["strip", "compare", "completeness", "target-line"]) $(id).replaceChildren();
    this.strip = this.compare = null;
    this.data = null;
  }

  async show() {
    this.controls.set(this.state.settings);
    history.replaceState(null, "", this.urlState.format(this.state));
    const asked = ++this.asked;
    const { model, prompt, settings } = this.state;
    const { method, ...body } = settings;
    try {
      const data = await this.track(request("POST", "/api/saliency/run", { model, prompt, ...body }));
      if (asked !== this.asked) return;
      $("banner").hidden = true;
      this.controls.flag(null);
      delete document.body.dataset.refused;
      this.data = data;
      this.scores = Object.fromEntries(Object.entries(data.methods).map(([name, m]) => [name, Array.from(decodeTensor(m.scores).data)]));
      this.drawTarget();
      this.drawStrip();
      this.drawComparison();
      this.drawCompleteness();
    } catch (error) {
      if (asked === this.asked) this.refuse(error);
    }
  }

  drawTarget() {
    const d = this.data;
    const tok = (t) => el("code", { text: visibleText(t.text) });
    const line = $("target-line");
    if (d.target === "loss") line.replaceChildren("Target: the next-token loss over the whole prompt.");
    else if (d.target === "logit") line.replaceChildren("Target: the logit of ", tok(d.answer), ` at position ${d.position}.`);
    else line.replaceChildren("Target: logit[", tok(d.answer), "] − logit[", tok(d.wrong), `] at position ${d.position}.`);
  }

  drawStrip() {
    const d = this.data;
    const method = this.state.settings.method;
    for (const button of document.querySelectorAll("button.sl-method")) button.setAttribute("aria-pressed", String(button.dataset.method === method));
    const values = this.scores[method];
    const heuristic = d.methods[method].heuristic;
    const data = { tokens: d.ids.map((id, i) => ({ id, text: d.str_tokens[i] })), values, labels: values.map(sig) };
    const options = {
      title: `${METHOD_NAMES[method]}: ${d.methods[method].target}`,
      exportName: `saliency-${method}`,
      scale: heuristic ? { scheme: "Oranges", label: "share of attention (heuristic)", format: ".4g" } : { kind: "diverging", scheme: "RdBu", label: "attribution", format: ".4g" },
      notice: heuristic ? "a heuristic: not an attribution of the target" : "",
    };
    if (this.strip) this.strip.update(data, options);
    else this.strip = tokenStrip($("strip"), data, options);
    $("strip").dataset.method = method;
  }

  drawComparison() {
    const d = this.data;
    const names = Object.keys(METHOD_NAMES);
    const values = names.map((name) => {
      const row = this.scores[name];
      const top = Math.max(...row.map(Math.abs)) || 1;
      return row.map((v) => v / top);
    });
    const data = { values, rowLabels: names.map((n) => METHOD_NAMES[n]), colLabels: d.str_tokens };
    const options = {
      title: "All three, each scaled to its largest |score|",
      exportName: "saliency-compared",
      rowTitle: "method",
      colTitle: "token",
      tokenLabels: true,
      format: ".3f",
      scale: { kind: "diverging", scheme: "RdBu", domain: [-1, 0, 1], label: "score ÷ largest |score|", format: ".3f" },
    };
    if (this.compare) this.compare.update(data, options);
    else this.compare = heatmap($("compare"), data, options);
  }

  drawCompleteness() {
    const ig = this.data.integrated;
    const number = (id, value, text = sig(value)) => el("b", { id, class: "num", "data-value": String(value), text });
    const ok = Number.isFinite(ig.relative_error) && ig.relative_error <= 0.01; // null: no change to attribute
    $("completeness").replaceChildren(
      el(
        "p",
        {},
        `From the baseline (${ig.baseline === "zero" ? "the zero embedding" : visibleText(ig.baseline)}) to the prompt, in ${ig.steps} steps, the target goes from `,
        number("ig-baseline-metric", ig.baseline_metric),
        " to ",
        number("ig-metric", ig.metric),
        ". The attributions add up to ",
        number("ig-sum", ig.attribution_sum),
        ".",
      ),
      el(
        "p",
        { class: ok ? "sl-ok" : "sl-warn" },
        "Completeness error: ",
        number("ig-error", ig.completeness_error),
        " (",
        number("ig-relative", ig.relative_error, Number.isFinite(ig.relative_error) ? `${(100 * ig.relative_error).toPrecision(3)}%` : "—"),
        ok ? " of the change: within 1%)." : " of the change: more steps, or another baseline)."
      ),
    );
  }
}

async function main() {
  try {
    const page = new SaliencyPage(await request("GET", "/api/saliency/schema"));
    window.saliencyPage = page; // for the browser tests and the console
    await page.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    $("banner").hidden = false;
    $("banner").querySelector(".banner-message").textContent = error.message;
  }
}

main();
