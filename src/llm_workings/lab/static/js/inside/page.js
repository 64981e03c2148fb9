// The "Inside a transformer" page: one forward pass of the learner's prompt, followed through one
// position, one layer and one head, stage by stage, with the engine's cached numbers
// (lab/inside/). This file keeps the state and the URL, and asks the server; render.js draws.

import { Lesson } from "../lesson.js";
import { promptInput } from "../prompt-input.js";
import { el } from "../views/common.js";
import { modelPicker } from "../views/model-picker.js";
import { tokenStrip } from "../views/token-strip.js";
import { inside as api } from "./api.js";
import { drawStage } from "./render.js";
import { CHOICES, InsideState } from "./state.js";

const $ = (id) => document.getElementById(id);

// The block's wiring in words, from the config flags the server sent (no family names).
export function wiringSteps(w) {
  const norm = w.norm === "rmsnorm" ? "RMSNorm" : "LayerNorm";
  const positions = { learned: "+ learned position embedding", rotary: `rotary positions (${w.rotary_dim} of ${w.d_head} dims of q and k rotate)`, none: "no positions" }[w.positions];
  const heads = w.n_kv_heads === w.n_heads ? `${w.n_heads} heads` : `${w.n_heads} query heads sharing ${w.n_kv_heads} key/value heads`;
  const attention = `${norm} → attention (${heads}, d_head ${w.d_head})`;
  const mlp = `${norm} → ${w.gated_mlp ? `gated MLP: ${w.act}(x W_gate) × (x W_in)` : `MLP (${w.act})`}, d_mlp ${w.d_mlp}`;
  let block;
  if (w.attn_only) block = [`${attention} → add to the stream`, "no MLP (attention-only)"];
  else if (w.parallel_residual) block = [`in parallel, both reading resid_pre: ${attention}; ${mlp}`, "resid_post = resid_pre + attn_out + mlp_out"];
  else block = [`${attention} → add: resid_mid`, `${mlp} → add: resid_post`];
  return [`token embedding ${positions}`, ...block.map((s) => `× ${w.n_layers} blocks: ${s}`), `${norm} (ln_final) → unembed → softmax over ${w.d_vocab} tokens`];
}

class InsidePage {
  constructor(schema) {
    this.urlState = new InsideState(schema);
    this.state = this.urlState.parse(location.search);
    this.limits = schema.limits;
    this.data = null;
    this.records = []; // what the heatmaps show, cell by cell
    this.pending = 0;
    this.asked = 0;
    this.inputs = {};
    for (const setting of schema.settings) {
      const input = $(`choice-${setting.name}`);
      input.title = setting.help;
      input.closest("label").title = setting.help;
      input.addEventListener("change", () => {
        const text = input.value.trim();
        this.set(setting.name, /^[+-]?\d+(\.\d+)?$/.test(text) ? Number(text) : text);
      });
      this.inputs[setting.name] = input;
    }
    this.lesson = new Lesson($("lesson"), this);
  }

  async start() {
    this.picker = modelPicker($("model-picker"), { value: this.state.model, onChange: (id, entry) => this.setModel(id, entry) });
    await this.picker.ready;
    this.state.model = this.picker.value ?? this.state.model;
    this.makeBox();
    await this.track(this.box.ready);
    await this.show();
  }

  // The prompt box for the state's model and prompt (made anew when a link sets both at once, so
  // the old prompt is never tokenized for the new model).
  makeBox() {
    this.box?.destroy();
    this.box = promptInput($("prompt"), {
      model: this.state.model,
      value: this.state.prompt,
      maxTokens: this.limits.tokens,
      onChange: (prompt) => this.setPrompt(prompt),
      onError: () => {},
    });
  }

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

  async applyQuery(href) {
    this.state = this.urlState.parse(new URL(href, location.href).search);
    this.picker.setValue(this.state.model);
    this.makeBox();
    await this.track(this.box.ready);
    await this.show();
  }

  async show() {
    for (const name of CHOICES) this.inputs[name].value = String(this.state.settings[name]);
    this.writeUrl();
    await this.walk();
  }

  setModel(id, entry) {
    this.state.model = id;
    // keep the layer and head within the new model (the server names the limit if they are not)
    if (entry?.n_layers && typeof this.state.settings.layer === "number") this.state.settings.layer = Math.min(this.state.settings.layer, entry.n_layers - 1);
    if (entry?.n_heads && typeof this.state.settings.head === "number") this.state.settings.head = Math.min(this.state.settings.head, entry.n_heads - 1);
    this.box.setModel(id, { notify: false });
    this.show();
  }

  setPrompt(prompt) {
    this.state.prompt = prompt;
    this.state.settings.position = -1;
    this.show();
  }

  set(name, value) {
    this.state.settings[name] = value;
    this.show();
  }

  refuse(error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
    for (const [name, input] of Object.entries(this.inputs)) input.classList.toggle("invalid", error.field === name);
  }

  clearRefusal() {
    $("banner").hidden = true;
    for (const input of Object.values(this.inputs)) input.classList.remove("invalid");
  }

  async walk() {
    const asked = ++this.asked;
    const { model, prompt, settings } = this.state;
    $("status").textContent = "Running the model…";
    let data;
    try {
      data = await this.track(api.walk({ model, prompt, ...settings }));
    } catch (error) {
      if (asked !== this.asked) return;
      this.data = null;
      $("status").textContent = "";
      $("stages").replaceChildren();
      this.refuse(error);
      return;
    }
    if (asked !== this.asked) return;
    this.clearRefusal();
    this.data = data;
    this.draw();
  }

  draw() {
    const d = this.data;
    const n = d.ids.length;
    $("status").textContent = `${n} tokens${d.bos ? " (a BOS token first)" : ""} · following position ${d.position}, layer ${d.layer}, head ${d.head}`;
    tokenStrip($("position-strip"), { tokens: d.ids.map((id, i) => ({ id, text: d.str_tokens[i] })) }, {
      title: "Click a token to follow its position",
      legend: false,
      selected: d.position,
      onSelect: (i) => i !== null && this.set("position", i),
    });
    $("wiring").replaceChildren(...wiringSteps(d.wiring).map((s) => el("li", { text: s })));
    $("preamble").textContent = d.preamble;
    $("thinned").textContent = d.thinned.length ? `Thinned to fit the response: ${d.thinned.join("; ")}.` : "";
    this.records = [];
    $("stages").replaceChildren(...d.stages.map((stage) => drawStage(stage, "after the Python at the top", this.records)));
  }
}

async function main() {
  try {
    const page = new InsidePage(await api.schema());
    window.insidePage = page; // for the browser tests and the console
    await page.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
  }
}

main();
