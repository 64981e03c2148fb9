// The computation view: one training step written out as math with the real numbers.
//
// Typesetting is slow, so the formulas are typeset only when their shape changes (a new
// architecture, another selected neuron, regularization switched on...). When only the
// numbers change, as they do on every step, each number is updated in place.

import { buildEquations, isFull, resolve } from "./equations.js";
import { fmt } from "./format.js";
import { setNumber, typeset } from "./math.js";

export class ComputationView {
  constructor({ root, examples, formulas, onExample, onFocus }) {
    this.root = root;
    this.examples = examples;
    this.formulas = formulas;
    this.onExample = onExample;
    this.onFocus = onFocus;
    this.shape = null;
    this.numbers = [];
    this.exampleShape = null;
    this.renders = 0; // how many times the formulas were typeset (for tests and the benchmark)
    this.updates = 0;
  }

  // Draw `state` with `focus` (selected neuron per layer). Cheap unless the shape changed.
  show(state, focus) {
    const trace = state.trace;
    if (!trace) {
      this.shape = null;
      this.numbers = [];
      this.examples.replaceChildren();
      this.root.innerHTML = `<p class="empty">Step 0: nothing has been computed yet. Press <b>Step forward</b> to take one training step, then every number of it appears here: the forward pass, the loss, the backward pass and the update.</p>`;
      return;
    }
    const net = state.network;
    const full = isFull(net.sizes);
    const shape = JSON.stringify([net.sizes, net.activations, net.loss, trace.regularization, trace.momentum > 0, full ? null : focus]);
    if (shape !== this.shape) {
      this.render(trace, net, focus);
      this.shape = shape;
    } else {
      for (const el of this.numbers) setNumber(el, resolve(trace, el.dataset.key));
      this.updates++;
    }
    this.showExamples(trace);
  }

  render(trace, net, focus) {
    const sections = buildEquations(trace, net, focus, this.formulas);
    const full = isFull(net.sizes);
    const out = document.createDocumentFragment();
    const head = document.createElement("p");
    head.className = "step-line";
    head.innerHTML = `Training step <span class="num" data-key="step"></span>: the step that produced the weights shown above, from the weights before it.`;
    out.append(head);
    for (const section of sections) {
      const el = document.createElement("section");
      el.className = `calc calc-${section.id}`;
      el.innerHTML = `<h3>${section.title}</h3><p class="intro">${section.intro}</p>`;
      for (const block of section.blocks) {
        const b = document.createElement("div");
        b.className = "calc-block";
        if (block.heading) {
          const h = document.createElement("h4");
          h.textContent = block.heading;
          if (!full && block.focus !== undefined) h.append(this.neuronPicker(block.layer, block.focus, net.sizes[block.layer]));
          b.append(h);
        }
        for (const item of block.tex) b.append(this.item(item));
        el.append(b);
      }
      out.append(el);
    }
    this.root.replaceChildren(out);
    this.numbers = [...this.root.querySelectorAll("[data-key]")];
    for (const el of this.numbers) if (el.classList.contains("num")) setNumber(el, resolve(trace, el.dataset.key));
    this.renders++;
  }

  item(item) {
    if (typeof item === "string") {
      const eq = document.createElement("div");
      eq.className = "eq";
      typeset(eq, item);
      return eq;
    }
    if (item.formula) {
      const f = this.formulas.losses[item.formula];
      return this.note(`${f.title}: `, f.f);
    }
    if (item.derivative) return this.note("where ", this.formulas.activations[item.derivative].df);
    return Object.assign(document.createElement("p"), { className: "note", textContent: item.note });
  }

  note(prefix, tex) {
    const p = document.createElement("p");
    p.className = "note";
    p.append(prefix);
    const span = document.createElement("span");
    typeset(span, tex, false);
    p.append(span);
    return p;
  }

  neuronPicker(layer, focus, units) {
    const label = document.createElement("label");
    label.className = "neuron-picker";
    label.append(" · following neuron ");
    const select = document.createElement("select");
    for (let u = 0; u < units; u++) select.append(new Option(String(u), String(u), false, u === focus));
    select.addEventListener("change", () => this.onFocus(layer - 1, Number(select.value)));
    label.append(select, ` of ${units}`);
    return label;
  }

  // The batch's examples, to pick which one the per-example numbers follow.
  showExamples(trace) {
    const shape = `${trace.batch_size}/${trace.example}`;
    const rows = trace.batch_X.map((x, b) => ({ x, y: trace.batch_Y[b], b }));
    if (shape !== this.exampleShape) {
      this.exampleShape = shape;
      const label = document.createElement("span");
      label.className = "label";
      label.textContent = `Example (${trace.batch_size} in this batch):`;
      const list = document.createElement("div");
      list.className = "example-list";
      const shown = rows.length <= 16 ? rows : rows.filter((r) => Math.abs(r.b - trace.example) <= 3 || r.b === 0 || r.b === rows.length - 1);
      for (const r of shown) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "example" + (r.b === trace.example ? " selected" : "");
        button.setAttribute("aria-pressed", String(r.b === trace.example));
        button.dataset.example = String(r.b);
        button.innerHTML = `<span class="ex-index">#${r.b + 1}</span> x = (<span class="num" data-key="batch_X.${r.b}.0"></span>, <span class="num" data-key="batch_X.${r.b}.1"></span>) y = ${r.y.length > 1 ? "(" : ""}${r.y.map((_, k) => `<span class="num" data-key="batch_Y.${r.b}.${k}"></span>`).join(", ")}${r.y.length > 1 ? ")" : ""}`;
        button.addEventListener("click", () => this.onExample(r.b));
        list.append(button);
      }
      if (shown.length < rows.length) {
        list.append(Object.assign(document.createElement("span"), { className: "more", textContent: `${rows.length - shown.length} more: use ‹ ›` }));
        const prev = Object.assign(document.createElement("button"), { type: "button", className: "mini", textContent: "‹", title: "Previous example" });
        const next = Object.assign(document.createElement("button"), { type: "button", className: "mini", textContent: "›", title: "Next example" });
        prev.disabled = trace.example === 0;
        next.disabled = trace.example === rows.length - 1;
        prev.addEventListener("click", () => this.onExample(trace.example - 1));
        next.addEventListener("click", () => this.onExample(trace.example + 1));
        list.append(prev, next);
      }
      this.examples.replaceChildren(label, list);
    }
    for (const el of this.examples.querySelectorAll("[data-key]")) {
      const value = resolve(trace, el.dataset.key);
      el.dataset.value = String(value);
      el.textContent = fmt(value);
    }
  }
}
