// The Features page: a bundled SAE's latents on its model, sorted by density or by the learner's text;
// one latent's dashboard (its strongest corpus windows coloured by activation, its histogram, its
// logit effects, its nearest latents); and the latents firing on each token of the learner's text.
// Every number is the engine's (lab/features/compute.py over llm_workings.sae); this file only draws
// and keeps the URL.

import { request } from "../api.js";
import { fmt } from "../format.js";
import { Lesson } from "../lesson.js";
import { promptInput } from "../prompt-input.js";
import { Controls } from "../controls.js";
import { barChart } from "../views/bar-chart.js";
import { jobPanel } from "../views/job-panel.js";
import { modelPicker } from "../views/model-picker.js";
import { tokenStrip } from "../views/token-strip.js";
import { formatState, parseState } from "./state.js";

const $ = (id) => document.getElementById(id);
const LIST_ROWS = 40;
const ACTIVATION = { scheme: "Oranges", label: "activation", format: ".4~g" };

function number(value, key, tag = "span") {
  const node = document.createElement(tag);
  node.className = "num";
  node.dataset.key = key;
  node.dataset.value = String(value);
  node.textContent = fmt(value);
  return node;
}

function button(text, onClick, attrs = {}) {
  const b = Object.assign(document.createElement("button"), { type: "button", textContent: text });
  for (const [k, v] of Object.entries(attrs)) b.dataset[k] = v;
  b.addEventListener("click", onClick);
  return b;
}

class FeaturesPage {
  constructor(schema) {
    this.schema = schema;
    this.state = parseState(location.search);
    this.pending = 0; // requests in flight (the browser tests wait for 0)
    this.asked = 0;
    this.latents = null; // the SAE's densities
    this.text = null; // the latents on the learner's text
    this.dashboard = null;
    $("sae").addEventListener("change", () => this.setSae($("sae").value));
    $("sort").addEventListener("change", () => {
      this.state.sort = $("sort").value;
      this.setFrom(0);
    });
    $("list-previous").addEventListener("click", () => this.setFrom(this.state.from - LIST_ROWS));
    $("list-next").addEventListener("click", () => this.setFrom(this.state.from + LIST_ROWS));
    this.lesson = new Lesson($("lesson"), this);
    this.training = Object.fromEntries(schema.train_settings.map((s) => [s.name, s.default]));
    this.trainControls = new Controls({ settings: schema.train_settings }, { layer: $("train-settings"), d_sae: $("train-settings"), k: $("train-settings"), steps: $("train-settings") }, (name, value) => {
      this.training[name] = value;
    });
    this.trainControls.set(this.training);
    // kind: the panel picks up a running SAE job on page open (where the panel supports the option)
    this.job = jobPanel($("train-job"), { form: false, kind: "sae-train", onFinished: (result) => this.trained(result) });
    $("train-start").addEventListener("click", () => this.train());
  }

  async train() {
    const note = $("train-note");
    this.trainControls.flag(null);
    try {
      const job = await request("POST", "/api/features/train", { model: this.state.model, settings: this.training });
      note.textContent = `Training ${job.params.sae} at ${job.params.hook_name}.`;
      this.job.follow(job);
    } catch (error) {
      note.textContent = `Not started: ${error.message}`;
      this.trainControls.flag(error.field);
    }
  }

  async trained(result) {
    if (!result?.sae) return; // a job of another kind the panel picked up
    this.schema = await request("GET", "/api/features/schema");
    $("train-note").textContent = `${result.sae} is ready: L0 ${fmt(result.metrics.l0)}, explained variance ${fmt(result.metrics.explained_variance)}.`;
    this.setSae(result.sae);
  }

  saesOf(model) {
    return this.schema.saes.filter((s) => s.model === model);
  }

  async start() {
    const models = new Set(this.schema.saes.map((s) => s.model));
    this.picker = modelPicker($("model-picker"), { value: this.state.model, filter: (entry) => models.has(entry.id), onChange: (id) => this.setModel(id) });
    await this.picker.ready;
    this.state.model = this.picker.value ?? this.state.model;
    this.prompt = promptInput($("prompt"), {
      model: this.state.model,
      value: this.state.prompt,
      onChange: (prompt) => {
        this.state.prompt = prompt;
        this.state.token = null;
        if (this.state.sort === "text") this.state.from = 0;
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
    history.replaceState(null, "", formatState(this.state));
  }

  async applyQuery(href) {
    this.state = parseState(new URL(href, location.href).search);
    this.picker.setValue(this.state.model);
    await this.track(this.prompt.setModel(this.state.model, { notify: false }));
    await this.track(this.prompt.setValue(this.state.prompt));
    await this.show();
  }

  setModel(id) {
    this.state.model = id;
    this.state.sae = null;
    this.state.latent = null;
    this.state.token = null;
    this.state.from = 0;
    this.track(this.prompt.setModel(id, { notify: false })).then(() => this.show());
  }

  setSae(name) {
    this.state.sae = name;
    this.state.latent = null;
    this.state.from = 0;
    this.show();
  }

  setLatent(latent) {
    this.state.latent = latent;
    this.show();
  }

  setFrom(rank) {
    this.state.from = Math.max(0, rank);
    this.writeUrl();
    this.showList();
  }

  setToken(token) {
    this.state.token = token;
    this.writeUrl();
    this.showToken();
  }

  showSaes() {
    const saes = this.saesOf(this.state.model);
    if (!this.state.sae && saes.length) this.state.sae = saes[0].name;
    const select = $("sae");
    const names = saes.map((s) => s.name);
    if (this.state.sae && !names.includes(this.state.sae)) names.push(this.state.sae); // the server will say why it does not fit
    select.replaceChildren(...names.map((n) => Object.assign(document.createElement("option"), { value: n, textContent: n })));
    select.value = this.state.sae ?? "";
    $("sort").value = this.state.sort;
    const card = this.schema.saes.find((s) => s.name === this.state.sae);
    const line = $("sae-card");
    line.replaceChildren();
    if (!card) return;
    const m = card.metrics;
    line.append(`${card.summary}. ${card.architecture}, ${card.d_sae} latents${card.k ? `, k = ${card.k}` : ""}, at ${card.hook_name}. Card: L0 `, number(m.l0, "card.l0"), ", explained variance ", number(m.explained_variance, "card.explained_variance"), ", CE loss score ", number(m.ce_loss_score, "card.ce_loss_score"), ", dead ", number(m.dead_fraction, "card.dead_fraction"), ".");
  }

  body(extra = {}) {
    return { model: this.state.model, sae: this.state.sae, ...extra };
  }

  refuse(error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
  }

  async show() {
    const asked = ++this.asked;
    this.showSaes();
    this.writeUrl();
    if (!this.state.sae) return this.refuse({ message: `no bundled SAE reads ${this.state.model}` });
    const textBody = this.body({ prompt: this.state.prompt, ...(this.state.latent !== null ? { latent: this.state.latent } : {}) });
    try {
      const [latents, text, dashboard] = await this.track(
        Promise.all([
          request("POST", "/api/features/latents", this.body()),
          request("POST", "/api/features/text", textBody),
          this.state.latent === null ? null : request("POST", "/api/features/dashboard", this.body({ latent: this.state.latent })),
        ]),
      );
      if (asked !== this.asked) return;
      $("banner").hidden = true;
      Object.assign(this, { latents, text, dashboard });
    } catch (error) {
      if (asked !== this.asked) return;
      this.refuse(error);
      Object.assign(this, { latents: null, text: null, dashboard: null });
    }
    this.showText();
    this.showList();
    this.showDashboard();
  }

  showText() {
    const out = this.text;
    if (!out) return $("text-strip").replaceChildren(), $("token-latents").replaceChildren();
    const tokens = out.str_tokens.map((text, i) => ({ text, id: out.ids[i] }));
    const latent = this.state.latent;
    const data = latent === null ? { tokens, values: out.per_token.map((t) => t.values[0] ?? 0) } : { tokens, values: out.latent_values };
    const title = latent === null ? "Your text, coloured by each token's strongest latent" : `Your text, coloured by latent ${latent}`;
    if (this.state.token !== null && this.state.token >= tokens.length) this.state.token = null;
    this.strip = tokenStrip($("text-strip"), data, {
      title,
      scale: { ...ACTIVATION, domain: [0, Math.max(1e-9, ...data.values)] },
      selected: this.state.token,
      onSelect: (index) => this.setToken(index),
      exportName: "features-text",
    });
    this.showToken();
  }

  showToken() {
    const host = $("token-latents");
    const token = this.state.token;
    if (!this.text || token === null) {
      host.replaceChildren(Object.assign(document.createElement("p"), { className: "small", textContent: "Click a token to see which latents fire on it." }));
      return;
    }
    const row = this.text.per_token[token];
    const bars = row.latents.map((latent, i) => ({ label: `latent ${latent}`, value: row.values[i], highlight: latent === this.state.latent }));
    const chart = document.createElement("div");
    const list = document.createElement("div");
    list.className = "ft-buttons";
    list.append(...row.latents.map((latent, i) => {
      const b = button(`${latent}: `, () => this.setLatent(latent), { latent: String(latent) });
      b.append(number(row.values[i], `token.${token}.${latent}`));
      return b;
    }));
    host.replaceChildren(chart, list);
    barChart(chart, { bars }, {
      title: `Latents firing on token ${token} (${JSON.stringify(this.text.str_tokens[token])}): ${row.latents.length}`,
      xLabel: "activation", format: ".4~g", tokenLabels: false, barHeight: 14, exportName: "features-token",
      onSelect: (index) => this.setLatent(row.latents[index]),
    });
  }

  showList() {
    const table = $("latent-table");
    const out = this.latents;
    if (!out) return table.replaceChildren();
    const byText = this.state.sort === "text" && this.text;
    const head = document.createElement("tr");
    for (const h of ["latent", "density", "max on corpus", ...(byText ? ["max on your text", "tokens"] : [])]) head.append(Object.assign(document.createElement("th"), { textContent: h }));
    const ranked = byText ? this.text.latents : out.density.map((d, index) => ({ index, d })).sort((a, b) => b.d - a.d || a.index - b.index);
    const from = Math.min(this.state.from, Math.max(0, ranked.length - 1));
    const order = ranked.slice(from, from + LIST_ROWS);
    const rows = order.map((item) => {
      const i = item.index;
      const tr = document.createElement("tr");
      tr.dataset.latent = String(i);
      if (i === this.state.latent) tr.className = "ft-selected";
      const first = document.createElement("td");
      first.append(button(String(i), () => this.setLatent(i), { latent: String(i) }));
      tr.append(first, number(out.density[i], `density.${i}`, "td"), number(out.max_activation[i], `max_activation.${i}`, "td"));
      if (byText) tr.append(number(item.max, `text_max.${i}`, "td"), number(item.tokens, `text_tokens.${i}`, "td"));
      return tr;
    });
    table.replaceChildren(head, ...rows);
    const dead = out.density.filter((d) => d === 0).length;
    const ranks = `ranks ${from + 1} to ${from + rows.length}`;
    $("list-note").textContent = byText
      ? `${ranked.length} latents fire somewhere on your text, strongest first: ${ranks}.`
      : `${out.d_sae} latents by density on ${out.corpus_tokens} held-out tokens, densest first: ${ranks}; ${dead} never fire on them.`;
    $("list-previous").disabled = from === 0;
    $("list-next").disabled = from + LIST_ROWS >= ranked.length;
  }

  showDashboard() {
    const d = this.dashboard;
    const ids = ["top-logits", "bottom-logits", "histogram", "neighbours", "top-examples", "quantile-examples", "dashboard-stats", "dashboard-notes"];
    if (!d) {
      for (const id of ids) $(id).replaceChildren();
      $("dashboard-title").textContent = "Pick a latent";
      return;
    }
    $("dashboard-title").textContent = `Latent ${d.index}`;
    $("dashboard-stats").replaceChildren(`${d.hook_name}: fires on `, number(d.density, "dash.density"), ` of ${d.tokens_seen} tokens; largest activation `, number(d.max_activation, "dash.max_activation"), ".");
    $("dashboard-notes").textContent = d.notes.join(" ");
    const logits = (rows) => rows.map((r) => ({ label: r.token, value: r.value }));
    for (const [id, rows, title] of [["top-logits", d.top_logits, "Logits it pushes up most"], ["bottom-logits", d.bottom_logits, "Logits it pushes down most"]]) {
      if (!rows.length) $(id).replaceChildren();
      else barChart($(id), { bars: logits(rows) }, { title, xLabel: "direct logit effect", format: ".4~g", tokenLabels: true, barHeight: 16, exportName: `features-${id}` });
    }
    const h = d.histogram;
    if (h.counts.length) {
      const bars = h.counts.map((c, i) => ({ label: `${fmt(h.edges[i])}–${fmt(h.edges[i + 1])}`, value: c }));
      barChart($("histogram"), { bars }, { title: "Histogram of its positive activations", xLabel: "tokens", format: "d", tokenLabels: false, barHeight: 14, exportName: "features-histogram" });
    } else $("histogram").replaceChildren(Object.assign(document.createElement("p"), { className: "small", textContent: "It never fires on the corpus: a dead latent." }));
    $("neighbours").replaceChildren(...d.neighbours.map((n, i) => {
      const b = button(`${n.index} · cos `, () => this.setLatent(n.index), { latent: String(n.index) });
      b.append(number(n.cosine, `neighbours.${i}`));
      return b;
    }));
    this.drawExamples($("top-examples"), d.top_examples, d.max_activation, "top");
    const groups = d.quantile_examples.filter((g) => g.examples.length).reverse();
    const host = $("quantile-examples");
    host.replaceChildren();
    for (const [g, group] of groups.entries()) {
      const div = document.createElement("div");
      const label = document.createElement("h4");
      label.className = "ft-sub";
      label.append("(", number(group.low, `quantile.${g}.low`), ", ", number(group.high, `quantile.${g}.high`), `]: ${group.count} tokens`);
      host.append(label, div);
      this.drawExamples(div, group.examples, d.max_activation, `quantile-${g}`);
    }
  }

  drawExamples(host, examples, peak, name) {
    host.replaceChildren();
    if (!examples.length) host.append(Object.assign(document.createElement("p"), { className: "small", textContent: "No examples: it never fires." }));
    examples.forEach((ex, i) => {
      const div = document.createElement("div");
      div.className = "ft-example";
      div.dataset.value = String(ex.value);
      host.append(div);
      const tokens = ex.tokens.map((text, j) => ({ text, id: ex.token_ids[j] }));
      tokenStrip(div, { tokens, values: ex.values }, {
        title: `${fmt(ex.value)} · sequence ${ex.sequence}, position ${ex.position}`,
        scale: { ...ACTIVATION, domain: [0, Math.max(peak, 1e-9)] },
        startPosition: ex.start,
        selected: ex.position - ex.start,
        legend: false,
        breakAtNewlines: false,
        exportName: `features-${name}-${i}`,
      });
    });
  }
}

async function main() {
  try {
    const page = new FeaturesPage(await request("GET", "/api/features/schema"));
    window.featuresPage = page; // for the browser tests and the console
    await page.start();
    document.body.dataset.ready = "true";
  } catch (error) {
    const banner = $("banner");
    banner.hidden = false;
    banner.querySelector(".banner-message").textContent = error.message;
  }
}

main();
