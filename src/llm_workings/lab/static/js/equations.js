// The equations of one training step, as TeX, with every number taken from the trace.
//
// Layers are numbered from 1 in the math (a⁽⁰⁾ is the input x) and from 0 in the trace,
// so layer l's numbers live at trace.layers[l - 1]. Each number is written with its trace
// path as key, e.g. layers.0.z.2 or layers.1.dL_dW.0.3, so tests can check it.
//
// Small networks (no layer wider than 8) are written with whole matrices. Wider ones
// follow one selected neuron per layer, with a window of its inputs.

import { number } from "./math.js";

export const FULL_LIMIT = 8;
const WINDOW = 7; // entries shown of a long vector
const GAP = null;


export function resolve(trace, key) {
  let v = trace;
  for (const part of key.split(".")) v = v[/^\d+$/.test(part) ? Number(part) : part];
  return v;
}

// Up to WINDOW indices of 0..n-1: the start, the end, and the neighbourhood of `focus`, with GAP where some are skipped.
export function pick(n, focus = 0) {
  if (n <= WINDOW) return [...Array(n).keys()];
  const chosen = new Set([0, 1, n - 1, focus - 1, focus, focus + 1].filter((i) => i >= 0 && i < n));
  for (let i = 2; chosen.size < WINDOW - 1 && i < n; i++) chosen.add(i);
  const sorted = [...chosen].sort((a, b) => a - b);
  const out = [];
  sorted.forEach((i, k) => {
    if (k > 0 && i > sorted[k - 1] + 1) out.push(GAP);
    out.push(i);
  });
  return out;
}

const d = (num, den) => `\\frac{\\partial ${num}}{\\partial ${den}}`;

export function isFull(sizes) {
  return Math.max(...sizes) <= FULL_LIMIT;
}

// `formulas` is the schema's maths table (symbols, dL/da, fused pairs, penalties), written once, in Python.
export function buildEquations(trace, network, focus, formulas) {
  const n = (key) => number(key, resolve(trace, key));
  const col = (keys, gap = "\\vdots") => (keys.length === 1 ? n(keys[0]) : `\\begin{bmatrix}${keys.map((k) => (k === GAP ? gap : n(k))).join("\\\\")}\\end{bmatrix}`);
  const row = (keys) => (keys.length === 1 ? n(keys[0]) : `\\begin{bmatrix}${keys.map((k) => (k === GAP ? "\\cdots" : n(k))).join("&")}\\end{bmatrix}`);
  const mat = (rows) => `\\begin{bmatrix}${rows.map((r) => r.map(n).join("&")).join("\\\\")}\\end{bmatrix}`;
  const range = (count) => [...Array(count).keys()];
  const keysOf = (indices, prefix) => indices.map((i) => (i === GAP ? GAP : `${prefix}.${i}`));
  // A scalar times a vector or matrix; with a bare number on the right, show the product sign.
  const scale = (scalar, tex) => (tex.startsWith("\\htmlData") ? `${scalar} \\cdot ${tex}` : `${scalar}\\,${tex}`);

  const sizes = network.sizes;
  const L = sizes.length - 1;
  const full = isFull(sizes);
  const acts = network.activations;
  const outAct = acts[L - 1];
  const fused = formulas.fused.some(([output, loss]) => output === outAct && loss === network.loss);
  const symbol = (activation) => formulas.activations[activation].symbol;
  const regGrad = (W) => formulas.penalties[trace.regularization].dR_dW.replaceAll("#W", W);
  const reg = trace.regularization !== "none";
  const momentum = trace.momentum > 0;
  const at = (l) => `layers.${l - 1}`; // trace path of math layer l
  const prevA = (l) => (l === 1 ? "x" : `${at(l - 1)}.a`);
  const unit = (l) => Math.min(focus[l - 1] ?? 0, sizes[l] - 1); // selected neuron of layer l
  const inputsOf = (l) => pick(sizes[l - 1], l === 1 ? 0 : unit(l - 1));

  const sections = [];

  // -- forward -------------------------------------------------------------------------
  const forward = { id: "forward", title: "Forward pass", intro: "From the input to the output, for the selected example.", blocks: [] };
  forward.blocks.push({ tex: [`a^{[0]} = x = ${col(keysOf(range(sizes[0]), "x"))},\\qquad y = ${col(keysOf(range(sizes[L]), "y"))}`] });
  for (let l = 1; l <= L; l++) {
    const f = symbol(acts[l - 1]);
    const block = { layer: l, heading: layerHeading(l, L, sizes[l], acts[l - 1]), tex: [] };
    if (full) {
      const W = range(sizes[l]).map((i) => range(sizes[l - 1]).map((j) => `${at(l)}.W_before.${i}.${j}`));
      block.tex.push(
        `z^{[${l}]} = W^{[${l}]}\\,a^{[${l - 1}]} + b^{[${l}]} = ${mat(W)}${col(keysOf(range(sizes[l - 1]), prevA(l)))} + ${col(keysOf(range(sizes[l]), `${at(l)}.b_before`))} = ${col(keysOf(range(sizes[l]), `${at(l)}.z`))}`,
        `a^{[${l}]} = ${f}\\big(z^{[${l}]}\\big) = ${col(keysOf(range(sizes[l]), `${at(l)}.a`))}`,
      );
    } else {
      const j = unit(l);
      const ins = inputsOf(l);
      block.focus = j;
      block.tex.push(
        `z^{[${l}]}_{${j}} = \\sum_{i} W^{[${l}]}_{${j},i}\\,a^{[${l - 1}]}_i + b^{[${l}]}_{${j}} = ${row(keysOf(ins, `${at(l)}.W_before.${j}`))}${col(keysOf(ins, prevA(l)))} + ${n(`${at(l)}.b_before.${j}`)} = ${n(`${at(l)}.z.${j}`)}`,
        `a^{[${l}]}_{${j}} = ${f}\\big(z^{[${l}]}_{${j}}\\big) = ${n(`${at(l)}.a.${j}`)}`,
      );
      if (sizes[l - 1] > WINDOW) block.tex.push({ note: `Showing ${ins.filter((i) => i !== GAP).length} of the ${sizes[l - 1]} inputs; ⋯ stands for the rest.` });
    }
    forward.blocks.push(block);
  }
  sections.push(forward);

  // -- loss ------------------------------------------------------------------------------
  const loss = { id: "loss", title: "Loss", intro: "Averaged over the whole batch, so every example's gradient carries a factor 1/B.", blocks: [] };
  const lossTex = [`L_{\\text{data}} = ${n("data_loss")}\\qquad (B = ${n("batch_size")}\\text{ examples})`];
  if (reg) {
    const R = formulas.penalties[trace.regularization].R;
    lossTex.push(`R = ${R} = ${n("reg_loss")}\\qquad (\\lambda = ${n("reg_rate")})`);
    lossTex.push(`L = L_{\\text{data}} + R = ${n("data_loss")} + ${n("reg_loss")} = ${n("loss")}`);
  } else {
    lossTex.push(`L = L_{\\text{data}} = ${n("loss")}\\qquad\\text{(no regularization)}`);
  }
  loss.blocks.push({ tex: [{ formula: network.loss }, ...lossTex] });
  sections.push(loss);

  // -- backward ----------------------------------------------------------------------------
  const backward = {
    id: "backward",
    title: "Backward pass",
    intro: "From the loss back to the first layer. Each line multiplies by one local derivative: that is the chain rule.",
    blocks: [],
  };
  for (let l = L; l >= 1; l--) {
    const block = { layer: l, heading: layerHeading(l, L, sizes[l], acts[l - 1]), tex: [] };
    const fp = `${symbol(acts[l - 1])}'`;
    const j = unit(l);
    const sel = full ? "" : `_{${j}}`; // subscript for the selected neuron
    const vec = (field) => (full ? col(keysOf(range(sizes[l]), `${at(l)}.${field}`)) : n(`${at(l)}.${field}.${j}`));
    const times = full ? "\\odot" : "\\cdot";
    if (l === L) {
      block.tex.push(`${d("L", `a^{[L]}${sel}`)} = ${formulas.losses[network.loss].dL_da} = ${vec("dL_da")}`);
      if (fused) {
        block.tex.push(
          `${d("L", `z^{[L]}${sel}`)} = ${d("L", `a^{[L]}${sel}`)} ${times} ${fp}\\big(z^{[L]}${sel}\\big) = \\frac{1}{B}\\big(a^{[L]}${sel} - y${sel}\\big) = \\frac{1}{${n("batch_size")}}\\Big(${vec("a")} - ${full ? col(keysOf(range(sizes[L]), "y")) : n(`y.${j}`)}\\Big) = ${vec("dL_dz")}`,
        );
        block.tex.push({
          note:
          `With a ${outAct} output and ${formulas.losses[network.loss].title} the two factors cancel to (a − y)/B. The engine computes it in that form, which stays exact even when the output saturates and ∂L/∂a alone would be infinite (shown as ±∞).`,
        });
      } else {
        block.tex.push(`${d("L", `z^{[L]}${sel}`)} = ${d("L", `a^{[L]}${sel}`)} ${times} ${fp}\\big(z^{[L]}${sel}\\big) = ${vec("dL_da")} ${times} ${fp}\\Big(${vec("z")}\\Big) = ${vec("dL_dz")}`);
        block.tex.push({ derivative: acts[l - 1] });
      }
    } else {
      if (full) {
        const WT = range(sizes[l]).map((i) => range(sizes[l + 1]).map((k) => `${at(l + 1)}.W_before.${k}.${i}`));
        block.tex.push(
          `${d("L", `a^{[${l}]}`)} = \\big(W^{[${l + 1}]}\\big)^{\\!\\top} ${d("L", `z^{[${l + 1}]}`)} = ${mat(WT)}${col(keysOf(range(sizes[l + 1]), `${at(l + 1)}.dL_dz`))} = ${vec("dL_da")}`,
        );
      } else {
        const outs = pick(sizes[l + 1], unit(l + 1));
        block.tex.push(
          `${d("L", `a^{[${l}]}_{${j}}`)} = \\sum_{k} W^{[${l + 1}]}_{k,${j}}\\,${d("L", `z^{[${l + 1}]}_k`)} = ${row(outs.map((k) => (k === GAP ? GAP : `${at(l + 1)}.W_before.${k}.${j}`)))}${col(keysOf(outs, `${at(l + 1)}.dL_dz`))} = ${vec("dL_da")}`,
        );
      }
      block.tex.push(`${d("L", `z^{[${l}]}${sel}`)} = ${d("L", `a^{[${l}]}${sel}`)} ${times} ${fp}\\big(z^{[${l}]}${sel}\\big) = ${vec("dL_da")} ${times} ${fp}\\Big(${vec("z")}\\Big) = ${vec("dL_dz")}`);
      block.tex.push({ derivative: acts[l - 1] });
    }
    // Gradients of the parameters: summed over the batch.
    const ins = full ? range(sizes[l - 1]) : inputsOf(l);
    if (full) {
      const G = (field) => mat(range(sizes[l]).map((i) => range(sizes[l - 1]).map((c) => `${at(l)}.${field}.${i}.${c}`)));
      block.tex.push(`${d("L", `W^{[${l}]}`)} = \\sum_{b=1}^{B} ${d("L", `z^{[${l}]}_b`)}\\,\\big(a^{[${l - 1}]}_b\\big)^{\\!\\top} = ${G("dL_dW")}`);
      block.tex.push(`\\text{this example's term: }\\; ${scale(col(keysOf(range(sizes[l]), `${at(l)}.dL_dz`)), row(keysOf(ins, prevA(l))))}`);
      block.tex.push(`${d("L", `b^{[${l}]}`)} = \\sum_{b=1}^{B} ${d("L", `z^{[${l}]}_b`)} = ${col(keysOf(range(sizes[l]), `${at(l)}.dL_db`))}`);
      if (reg) block.tex.push(`${d("R", `W^{[${l}]}`)} = ${regGrad(`W^{[${l}]}`)} = ${G("dR_dW")}`);
    } else {
      block.tex.push(`${d("L", `W^{[${l}]}_{${j},:}`)} = \\sum_{b=1}^{B} ${d("L", `z^{[${l}]}_{b,${j}}`)}\\,\\big(a^{[${l - 1}]}_b\\big)^{\\!\\top} = ${row(keysOf(ins, `${at(l)}.dL_dW.${j}`))}`);
      block.tex.push(`${d("L", `b^{[${l}]}_{${j}}`)} = \\sum_{b=1}^{B} ${d("L", `z^{[${l}]}_{b,${j}}`)} = ${n(`${at(l)}.dL_db.${j}`)}`);
      if (reg) block.tex.push(`${d("R", `W^{[${l}]}_{${j},:}`)} = ${regGrad(`W^{[${l}]}_{${j},:}`)} = ${row(keysOf(ins, `${at(l)}.dR_dW.${j}`))}`);
    }
    backward.blocks.push(block);
  }
  sections.push(backward);

  // -- update ------------------------------------------------------------------------------
  const update = {
    id: "update",
    title: "Update",
    intro: momentum
      ? "Each parameter moves against its gradient, scaled by the learning rate η, plus μ times its previous move v (momentum's memory, which the trace does not list)."
      : "Each parameter moves a small step against its gradient, scaled by the learning rate η.",
    blocks: [],
  };
  const mom = momentum ? ` + ${n("momentum")}\\,v_{\\text{prev}}` : "";
  const momSym = momentum ? " + \\mu\\,v_{\\text{prev}}" : "";
  for (let l = 1; l <= L; l++) {
    const block = { layer: l, heading: layerHeading(l, L, sizes[l], acts[l - 1]), tex: [] };
    const Wl = `W^{[${l}]}`;
    const gradSym = reg ? `\\Big(${d("L", Wl)} + ${d("R", Wl)}\\Big)` : d("L", Wl);
    if (full) {
      const M = (field) => mat(range(sizes[l]).map((i) => range(sizes[l - 1]).map((c) => `${at(l)}.${field}.${i}.${c}`)));
      const V = (field) => col(keysOf(range(sizes[l]), `${at(l)}.${field}`));
      const grads = reg ? `\\Big(${M("dL_dW")} + ${M("dR_dW")}\\Big)` : M("dL_dW");
      const split = reg && sizes[l - 1] > 3;
      block.tex.push(
        `\\begin{aligned} W^{[${l}]}_{\\text{new}} &= W^{[${l}]}${momSym} - \\eta\\,${gradSym} \\\\ &= ${M("W_before")}${mom} - ${n("learning_rate")}\\,${split ? `\\Big(${M("dL_dW")} \\\\ &\\qquad + ${M("dR_dW")}\\Big)` : grads} \\\\ &= ${M("W_after")} \\end{aligned}`,
        `b^{[${l}]}_{\\text{new}} = b^{[${l}]}${momSym} - \\eta\\,${d("L", `b^{[${l}]}`)} = ${V("b_before")}${mom} - ${scale(n("learning_rate"), V("dL_db"))} = ${V("b_after")}`,
      );
    } else {
      const j = unit(l);
      const ins = inputsOf(l);
      const C = (field) => col(keysOf(ins, `${at(l)}.${field}.${j}`));
      const grads = reg ? `\\Big(${C("dL_dW")} + ${C("dR_dW")}\\Big)` : C("dL_dW");
      block.focus = j;
      block.tex.push(
        `\\big(W^{[${l}]}_{${j},:}\\big)^{\\!\\top}_{\\text{new}} = ${C("W_before")}${mom} - ${scale(n("learning_rate"), grads)} = ${C("W_after")}`,
        `b^{[${l}]}_{${j},\\text{new}} = ${n(`${at(l)}.b_before.${j}`)}${mom} - ${n("learning_rate")} \\cdot ${n(`${at(l)}.dL_db.${j}`)} = ${n(`${at(l)}.b_after.${j}`)}`,
      );
      block.tex.push({ note: "The weights into the selected neuron, written as a column." });
    }
    update.blocks.push(block);
  }
  sections.push(update);
  return sections;
}

function layerHeading(l, L, units, activation) {
  return `Layer ${l} · ${l === L ? "output" : "hidden"} · ${units} neuron${units === 1 ? "" : "s"} · ${activation}`;
}
