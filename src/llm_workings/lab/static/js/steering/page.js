// The Steering page: a direction built from prompt pairs or a probe, added to the residual stream
// while the model writes (two generations, same seed, with and without it), and a sweep of its
// coefficient that measures the behaviour it causes and the perplexity it costs, each against a
// random direction of the same norm. Every number is the engine's (lab/steering/compute.py over
// llm_workings.steering); this file only draws and keeps the URL.

import { request } from "../api.js";
import { Controls } from "../controls.js";
import { fmt } from "../format.js";
import { Lesson } from "../lesson.js";
import { promptInput } from "../prompt-input.js";
import { lineChart } from "../views/line-chart.js";
import { modelPicker } from "../views/model-picker.js";
import { tokenStrip } from "../views/token-strip.js";
import { SteeringState } from "./state.js";

const $ = (id) => document.getElementById(id);
const DELAY_MS = 300;

function cell(value, key) {
  const td = document.createElement("td");
  td.className = "num";
  td.dataset.key = key;
  td.dataset.value = String(value);
  td.textContent = fmt(value);
  return td;
}

class SteeringPage {
  constructor(schema) {
    this.schema = schema;
    this.urlState = new SteeringState(schema);
    this.state = this.urlState.parse(location.search);
    this.pending = 0; // requests in flight (the browser tests wait for 0)
    this.asked = 0;
    this.measureAsked = 0;
    this.sweep = null;
    this.controls = new Controls(
      { settings: schema.settings.filter((s) => s.kind !== "text") },
      { vector: $("settings-vector"), apply: $("settings-apply"), generate: $("settings-apply"), measure: $("settings-measure") },
      (name, value) => this.setSetting(name, value),
    );
    this.pairs = $("pairs");
    this.pairs.addEventListener("input", () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(() => this.setSetting("pairs", this.pairs.value), DELAY_MS);
    });
    this.sae = $("sae");
    this.sae.addEventListener("change", () => this.setSetting("sae", this.sae.value));
    this.target = $("target");
    this.target.addEventListener("change", () => this.setSetting("target", this.target.value));
    $("measure").addEventListener("click", () => this.measure());
    this.lesson = new Lesson($("lesson"), this);
  }

  async start() {
    this.picker = modelPicker($("model-picker"), { value: this.state.model, filter: { hasTokenizer: true }, onChange: (id) => this.setModel(id) });
    await this.picker.ready;
    this.state.model = this.picker.value ?? this.state.model;
    this.prompt = promptInput($("prompt"), {
      model: this.state.model,
      value: this.state.prompt,
      onChange: (prompt) => {
        this.state.prompt = prompt;
        this.state.measured = false;
        this.show();
      },
    });
    await this.track(this.prompt.ready);
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

  writeUrl() {
    history.replaceState(null, "", this.urlState.format(this.state));
  }

  async applyQuery(href) {
    this.state = this.urlState.parse(new URL(href, location.href).search);
    this.picker.setValue(this.state.model);
    await this.track(this.prompt.setModel(this.state.model, { notify: false }));
    await this.track(this.prompt.setValue(this.state.prompt));
    await this.show();
  }

  setModel(id) {
    this.state.model = id;
    this.state.measured = false;
    const layers = this.picker.entry?.n_layers;
    if (layers && this.state.settings.layer >= layers) this.state.settings.layer = layers - 1; // keep the layer on the model
    this.track(this.prompt.setModel(id, { notify: false })).then(() => this.show());
  }

  setSetting(name, value) {
    if (this.state.settings[name] === value) return;
    this.state.settings[name] = value;
    // The coefficient and the generation settings leave a measured sweep valid; the vector's do not.
    if (!["coefficient", "positions", "new_tokens", "temperature", "seed"].includes(name)) this.state.measured = false;
    this.show();
  }

  showSettings() {
    const s = this.state.settings;
    this.controls.set(s);
    if (this.pairs.value !== s.pairs && document.activeElement !== this.pairs) this.pairs.value = s.pairs;
    if (this.target.value !== s.target) this.target.value = s.target;
    $("pairs-box").hidden = s.source !== "pairs";
    $("sae-box").hidden = s.source !== "sae";
    const shown = { aggregation: s.source === "pairs", probe: s.source === "probe", layer: s.source !== "sae", latent: s.source === "sae" };
    for (const [name, visible] of Object.entries(shown)) {
      const control = document.querySelector(`.control[data-name="${name}"]`);
      if (control) control.style.display = visible ? "" : "none"; // .control's display rule outranks [hidden]
    }
    // The bundled SAEs of this model (the server refuses any other by name).
    const saes = this.schema.saes.filter((x) => x.model === this.state.model);
    const names = saes.map((x) => x.name);
    if ([...this.sae.options].map((o) => o.value).join() !== [...names, s.sae].join()) {
      this.sae.replaceChildren(...saes.map((x) => new Option(`${x.name} (${x.hook})`, x.name)));
      if (!names.includes(s.sae)) this.sae.append(new Option(`${s.sae} (not an SAE of this model)`, s.sae));
    }
    this.sae.value = s.sae;
  }

  async show() {
    this.showSettings();
    this.writeUrl();
    await this.generate();
    if (this.state.measured) await this.measure();
    else this.clearSweep();
  }

  body() {
    return { model: this.state.model, prompt: this.state.prompt, settings: this.state.settings };
  }

  refuse(error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
    this.controls.flag(error.field);
    this.pairs.classList.toggle("invalid", error.field === "pairs");
    this.sae.classList.toggle("invalid", error.field === "sae");
    this.target.classList.toggle("invalid", error.field === "target");
  }

  clearRefusal() {
    $("banner").hidden = true;
    this.controls.flag(null);
    this.pairs.classList.remove("invalid");
    this.sae.classList.remove("invalid");
    this.target.classList.remove("invalid");
  }

  showVector(vector) {
    $("vector-summary").textContent = vector.summary;
    const acc = vector.metadata.probe_test_accuracy;
    const parts = [`hook ${vector.hook}`, `|vector| ${fmt(vector.norm)}`, vector.normalisation];
    if (acc !== undefined) parts.push(`probe accuracy on held-out positions ${fmt(acc)}`);
    if (vector.metadata.n_pairs !== undefined) parts.push(`${vector.metadata.n_pairs} pairs`);
    if (vector.metadata.latent !== undefined) parts.push(`latent ${vector.metadata.latent}, its top logits ${vector.metadata.top_logits}`);
    $("vector-facts").textContent = parts.join(" · ");
  }

  async generate() {
    const asked = ++this.asked;
    $("status").textContent = "Generating…";
    let out;
    try {
      out = await this.track(request("POST", "/api/steering/generate", this.body()));
    } catch (error) {
      if (asked !== this.asked) return;
      this.refuse(error);
      $("status").textContent = "";
      for (const id of ["plain", "steered"]) $(id).replaceChildren();
      return;
    }
    if (asked !== this.asked) return;
    this.clearRefusal();
    this.showVector(out.vector);
    const s = this.state.settings;
    for (const [id, generation, title] of [
      ["plain", out.plain, "Without the vector"],
      ["steered", out.steered, `With it: coefficient ${fmt(s.coefficient)}, added at ${s.positions} positions`],
    ]) {
      const tokens = generation.str_tokens.map((text, i) => ({ text, id: generation.ids[i] }));
      tokenStrip($(id), { tokens }, { title, legend: false, exportName: `steering-${id}` });
      $(id).dataset.text = generation.text;
    }
    $("status").textContent = `${out.plain.ids.length} new tokens each, seed ${s.seed}, temperature ${s.temperature}: the two differ only by the vector.`;
  }

  clearSweep() {
    this.sweep = null;
    for (const id of ["behaviour-chart", "cost-chart"]) $(id).replaceChildren();
    $("sweep-table").replaceChildren();
    $("sweep-note").textContent = "Press Measure to sweep the coefficient (a few seconds on a laptop's CPU).";
  }

  async measure() {
    const asked = ++this.measureAsked;
    const button = $("measure");
    button.disabled = true;
    $("sweep-note").textContent = "Measuring…";
    try {
      const out = await this.track(request("POST", "/api/steering/sweep", this.body()));
      if (asked !== this.measureAsked) return;
      this.state.measured = true;
      this.writeUrl();
      this.sweep = out;
      this.showSweep(out);
    } catch (error) {
      if (asked === this.measureAsked) {
        this.refuse(error);
        $("sweep-note").textContent = "";
      }
    } finally {
      button.disabled = false;
    }
  }

  showSweep(out) {
    const x = out.coefficients;
    const target = JSON.stringify(this.state.settings.target);
    lineChart(
      $("behaviour-chart"),
      { series: [{ name: "the vector", x, y: out.behaviour }, { name: "random vector, same norm", x, y: out.random_behaviour }] },
      { title: `P(next token contains ${target})`, xLabel: "coefficient", yLabel: "probability", exportName: "steering-behaviour", format: ".4~g" },
    );
    lineChart(
      $("cost-chart"),
      { series: [{ name: "the vector", x, y: out.perplexity }, { name: "random vector, same norm", x, y: out.random_perplexity }] },
      { title: "Perplexity of neutral text (the cost)", xLabel: "coefficient", yLabel: "perplexity", exportName: "steering-cost", format: ".4~g" },
    );
    const head = document.createElement("tr");
    for (const h of ["coefficient", "behaviour", "random's behaviour", "perplexity", "random's perplexity"]) head.append(Object.assign(document.createElement("th"), { textContent: h }));
    const rows = x.map((c, i) => {
      const tr = document.createElement("tr");
      tr.append(cell(c, `coefficients.${i}`), cell(out.behaviour[i], `behaviour.${i}`), cell(out.random_behaviour[i], `random_behaviour.${i}`), cell(out.perplexity[i], `perplexity.${i}`), cell(out.random_perplexity[i], `random_perplexity.${i}`));
      return tr;
    });
    $("sweep-table").replaceChildren(head, ...rows);
    const unsteered = document.createElement("span");
    unsteered.append(
      `Layer ${out.layer}, the vector added at every position of the prompt and of the neutral text. Unsteered: behaviour `,
      Object.assign(document.createElement("b"), { className: "num", textContent: fmt(out.unsteered_behaviour) }),
      `, perplexity `,
      Object.assign(document.createElement("b"), { className: "num", textContent: fmt(out.unsteered_perplexity) }),
      `. ${out.targets} tokens contain ${target}.`,
    );
    $("sweep-note").replaceChildren(unsteered);
  }
}

async function main() {
  try {
    const page = new SteeringPage(await request("GET", "/api/steering/schema"));
    window.steeringPage = page; // for the browser tests and the console
    await page.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
  }
}

main();
