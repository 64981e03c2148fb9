// The Tokens and predictions page: the text as the model's tokens, coloured by how surprised the
// model was by each; the distribution it predicted for the selected token; the sampling panel,
// which reshapes that distribution with the server's own sampling code; and a seeded sample.
// Every number is the engine's (lab/tokens/compute.py); this file only draws and keeps the URL.

import { Controls } from "../controls.js";
import { Lesson } from "../lesson.js";
import { barChart } from "../views/bar-chart.js";
import { modelPicker } from "../views/model-picker.js";
import { decodeTensor } from "../views/tensor.js";
import { tokenStrip } from "../views/token-strip.js";
import { tokens as api } from "./api.js";
import { bits, nats, probability } from "./format.js";
import { TokensState } from "./state.js";

const $ = (id) => document.getElementById(id);
const TEXT_DELAY_MS = 350; // wait for a pause in typing before asking for predictions
const SAMPLING = ["temperature", "top_k", "top_p"];

function quoted(text) {
  return `“${text.replace(/\n/g, "↵").replace(/ /g, "·")}”`;
}

class TokensPage {
  constructor(schema) {
    this.urlState = new TokensState(schema);
    this.state = this.urlState.parse(location.search);
    this.data = null; // the last predictions
    this.pending = 0; // requests in flight (the browser tests wait for 0)
    this.asked = 0; // request counters: an answer to an old request is dropped
    this.reshapeAsked = 0;
    this.controls = new Controls(schema, { predictions: $("settings-predictions"), sampling: $("settings-sampling") }, (name, value) =>
      this.setSetting(name, value),
    );
    // The temperature, top-k and top-p sliders reshape while they are dragged, not only on release.
    $("settings-sampling").addEventListener("input", (e) => {
      const control = e.target.closest(".control");
      if (e.target.type !== "range" || !SAMPLING.includes(control?.dataset.name)) return;
      const text = control.querySelector("input.number").value;
      this.state.settings[control.dataset.name] = Number(text);
      this.reshape();
    });
    this.strip = tokenStrip($("strip"), { tokens: [] }, {
      title: "Tokens, coloured by surprise",
      exportName: "tokens",
      scale: { scheme: "Oranges", label: "surprise (bits)", format: ".2f", domain: [0, 12] },
      onSelect: (index) => this.select(index),
    });
    this.text = $("text");
    this.text.maxLength = schema.limits.text_chars;
    this.text.addEventListener("input", () => {
      clearTimeout(this.typing);
      this.typing = setTimeout(() => this.setText(this.text.value), TEXT_DELAY_MS);
    });
    $("next").addEventListener("click", () => this.select(null));
    $("sample").addEventListener("click", () => this.sample());
    $("new-seed").addEventListener("click", () => this.setSetting("seed", Math.floor(Math.random() * 2 ** 31), { sample: true }));
    $("use-sample").addEventListener("click", () => this.useSample());
    this.lesson = new Lesson($("lesson"), this);
  }

  async start() {
    this.picker = modelPicker($("model-picker"), {
      value: this.state.model,
      filter: { hasTokenizer: true },
      onChange: (id) => this.setModel(id),
    });
    await this.picker.ready;
    this.state.model = this.picker.value ?? this.state.model;
    await this.show();
  }

  // -- the state, the URL and the server --------------------------------------------------------
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
    this.state = this.urlState.parse(new URL(href, location.href).search);
    this.picker.setValue(this.state.model);
    await this.show();
  }

  async show() {
    this.controls.set(this.state.settings);
    if (this.text.value !== this.state.text) this.text.value = this.state.text;
    this.writeUrl();
    await this.predict();
    if (this.state.sampled) await this.sample();
    else this.clearSample();
  }

  setModel(id) {
    this.state.model = id;
    this.state.select = null;
    this.state.sampled = false;
    this.show();
  }

  setText(text) {
    if (text === this.state.text) return;
    this.state.text = text;
    this.state.select = null;
    this.state.sampled = false;
    this.show();
  }

  async setSetting(name, value, { sample = false } = {}) {
    this.state.settings[name] = value;
    this.state.sampled = sample;
    this.controls.set(this.state.settings);
    this.writeUrl();
    if (name === "k") await this.predict();
    else if (SAMPLING.includes(name)) await this.reshape();
    if (sample) await this.sample();
    else this.clearSample();
  }

  select(index) {
    const n = this.data?.ids.length ?? 0;
    this.state.select = index === null || index >= n ? null : index;
    this.writeUrl();
    this.showSelection();
    this.reshape();
  }

  refuse(error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
    this.controls.flag(error.field);
    this.text.classList.toggle("invalid", error.field === "text");
  }

  clearRefusal() {
    $("banner").hidden = true;
    this.controls.flag(null);
    this.text.classList.remove("invalid");
  }

  async predict() {
    const asked = ++this.asked;
    const { model, text, settings } = this.state;
    $("status").textContent = "Reading…";
    try {
      const data = await this.track(api.predict({ model, text, k: settings.k }));
      if (asked !== this.asked) return;
      this.clearRefusal();
      this.data = {
        ...data,
        topIds: decodeTensor(data.top_ids).data,
        topProbs: decodeTensor(data.top_probs).data,
        nextProb: decodeTensor(data.next_prob).data,
        nextLoss: decodeTensor(data.next_loss).data,
        surprise: decodeTensor(data.surprise_bits).data,
      };
    } catch (error) {
      if (asked !== this.asked) return;
      this.data = null;
      this.refuse(error);
      $("status").textContent = "";
      return;
    }
    this.showTokens();
    this.showSelection();
    await this.reshape();
  }

  // -- drawing ------------------------------------------------------------------------------------
  showTokens() {
    const d = this.data;
    const n = d.ids.length;
    const values = d.ids.map((_, j) => (j === 0 ? null : d.surprise[j - 1]));
    const labels = d.ids.map((_, j) => (j === 0 ? "" : probability(d.nextProb[j - 1])));
    this.strip.update(
      { tokens: d.ids.map((id, j) => ({ id, text: d.strings[j] })), values, labels },
      { selected: this.selectedIndex() < n ? this.selectedIndex() : null },
    );
    const meanLoss = d.nextLoss.reduce((a, b) => a + b, 0) / Math.max(1, d.nextLoss.length);
    const parts = [`${n} tokens${d.bos ? " (a BOS token first)" : ""}`];
    if (n > 1) parts.push(`average loss ${nats(meanLoss)}, ${bits(meanLoss / Math.LN2)} of surprise per token`);
    $("status").textContent = parts.join(" · ");
    const windowNote = $("window-note");
    windowNote.hidden = !d.context;
    if (d.context) {
      windowNote.textContent = `This model reads at most ${d.n_ctx} tokens at a time. From token ${d.n_ctx} on, each prediction sees only the last ${Math.min(...d.context.slice(d.n_ctx - 1))} to ${d.n_ctx} tokens of the text.`;
    }
  }

  selectedIndex() {
    const n = this.data?.ids.length ?? 0;
    return this.state.select === null ? n : Math.min(this.state.select, n);
  }

  showSelection() {
    const d = this.data;
    if (!d) return;
    const n = d.ids.length;
    const j = this.selectedIndex();
    this.strip.select(j < n ? j : null, { notify: false });
    $("next").classList.toggle("active", j === n);
    const readout = $("readout");
    const chart = $("topk");
    if (j === 0) {
      $("prediction-title").textContent = `Token 0 ${quoted(d.strings[0])}`;
      readout.textContent = "Nothing came before the first token, so the model made no prediction for it. Pick another token.";
      chart.replaceChildren();
      this.topk = null;
      return;
    }
    const p = j - 1;
    const k = d.k;
    const row = Array.from(d.topIds.subarray(p * k, (p + 1) * k));
    const actual = j < n ? d.ids[j] : null;
    const bars = row.map((id, r) => ({ label: d.vocab[String(id)], value: d.topProbs[p * k + r], highlight: id === actual }));
    $("prediction-title").textContent = j < n ? `What the model expected for token ${j}` : "What the model expects after the text";
    const seen = d.context ? d.context[p] : p + 1;
    const read = `after reading ${seen} token${seen === 1 ? "" : "s"}${d.context && seen < p + 1 ? " (the window it can see)" : ""}`;
    if (actual === null) {
      readout.innerHTML = "";
      readout.append(`Its ${k} likeliest next tokens ${read}. The sample button draws from this distribution.`);
    } else {
      readout.innerHTML = "";
      const inTop = row.includes(actual);
      readout.append(
        `It came out as `,
        Object.assign(document.createElement("b"), { className: "token", textContent: quoted(d.strings[j]) }),
        `, ${read}: probability `,
        Object.assign(document.createElement("b"), { id: "actual-prob", textContent: probability(d.nextProb[p]) }),
        `, loss `,
        Object.assign(document.createElement("b"), { id: "actual-loss", textContent: nats(d.nextLoss[p]) }),
        `, surprise `,
        Object.assign(document.createElement("b"), { id: "actual-bits", textContent: bits(d.surprise[p]) }),
        inTop ? ". It is the orange bar." : `. It is not among the ${k} likeliest.`,
      );
    }
    const options = { title: "Next-token probabilities", exportName: `top-${k}`, format: ".2%", tokenLabels: true, xLabel: "probability", domain: [0, 1], notice: d.thinned || "" };
    if (this.topk) this.topk.update({ bars }, options);
    else this.topk = barChart(chart, { bars }, options);
  }

  async reshape() {
    const d = this.data;
    const j = this.selectedIndex();
    const panel = $("sampling-panel");
    if (!d || j === 0) {
      panel.classList.add("idle");
      return;
    }
    panel.classList.remove("idle");
    const asked = ++this.reshapeAsked;
    const { model, text, settings } = this.state;
    let result;
    try {
      result = await this.track(api.reshape({ model, text, position: j - 1, k: Math.min(settings.k, 12), temperature: settings.temperature, top_k: settings.top_k, top_p: settings.top_p }));
    } catch (error) {
      if (asked === this.reshapeAsked) this.refuse(error);
      return;
    }
    if (asked !== this.reshapeAsked) return;
    this.clearRefusal();
    const label = (a) => a.text;
    const chart = (key, element, title, current) => {
      const bars = result.alternatives.map((a) => ({ label: label(a), value: a[key] }));
      const options = { title, exportName: `sampling-${key}`, format: ".2%", tokenLabels: true, domain: [0, 1], xLabel: "probability" };
      if (current) current.update({ bars }, options);
      return current ?? barChart(element, { bars }, options);
    };
    this.before = chart("before", $("before"), "As predicted (temperature 1)", this.before);
    this.after = chart("after", $("after"), "What a sample draws from", this.after);
    $("kept").textContent =
      `${result.kept.toLocaleString("en")} of ${result.d_vocab.toLocaleString("en")} tokens can still be drawn. ` +
      `Uncertainty (entropy): ${bits(result.entropy_before)} as predicted, ${bits(result.entropy_after)} with these settings.`;
  }

  clearSample() {
    $("continuation").replaceChildren();
    $("sample-note").textContent = "";
    $("use-sample").hidden = true;
    this.continuation = null;
  }

  async sample() {
    const { model, text, settings } = this.state;
    const button = $("sample");
    button.disabled = true;
    try {
      const out = await this.track(api.sample({ model, text, temperature: settings.temperature, top_k: settings.top_k, top_p: settings.top_p, seed: settings.seed, new_tokens: settings.new_tokens }));
      this.state.sampled = true;
      this.writeUrl();
      this.continuation = out;
      const shown = $("continuation");
      shown.replaceChildren(
        Object.assign(document.createElement("span"), { className: "prompt", textContent: text.slice(-120) }),
        Object.assign(document.createElement("span"), { className: "sampled", id: "sampled-text", textContent: out.text }),
      );
      $("sample-note").textContent =
        `${out.ids.length} new tokens, seed ${settings.seed}, temperature ${settings.temperature}` +
        `${settings.top_k ? `, top-k ${settings.top_k}` : ""}${settings.top_p < 1 ? `, top-p ${settings.top_p}` : ""}` +
        `${out.stopped_at_eos ? " (stopped at the end-of-text token)" : ""}. The URL now holds this sample: reload it and the same text comes back.`;
      $("use-sample").hidden = false;
    } catch (error) {
      this.refuse(error);
    } finally {
      button.disabled = false;
    }
  }

  useSample() {
    if (!this.continuation) return;
    const text = (this.state.text + this.continuation.text).slice(0, this.text.maxLength);
    this.text.value = text;
    this.setText(text);
  }
}

async function main() {
  try {
    const page = new TokensPage(await api.schema());
    window.tokensPage = page; // for the browser tests and the console
    await page.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
  }
}

main();
