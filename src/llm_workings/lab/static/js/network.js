// The network view: neurons as small heatmaps over the input plane, weights as curves
// coloured by sign and as thick as they are large. Hovering shows a weight with its
// gradient, or a neuron with its numbers for the selected example; clicking a neuron
// selects it for the computation view. The +/- buttons change the architecture.

import { prepare, watchWidth } from "./canvas.js";
import { decodedMaps } from "./heatmap.js";
import { NEGATIVE, POSITIVE, fmt, rgb } from "./format.js";

const TOP = 58; // room for the per-layer buttons and captions
const BOTTOM = 16;
const LEFT = 34;
const RIGHT = 34;

function nodeSize(maxUnits) {
  return maxUnits <= 4 ? 42 : maxUnits <= 8 ? 32 : 24;
}

function layout(sizes, width) {
  const maxUnits = Math.max(...sizes);
  const size = nodeSize(maxUnits);
  const pitch = size + 18; // node plus its value label
  const height = Math.max(300, TOP + BOTTOM + maxUnits * pitch);
  const span = width - LEFT - RIGHT - size;
  const columns = sizes.map((n, c) => {
    const x = LEFT + (sizes.length > 1 ? (span * c) / (sizes.length - 1) : 0);
    const y0 = TOP + (height - TOP - BOTTOM - n * pitch) / 2;
    return { x, units: Array.from({ length: n }, (_, u) => ({ x, y: y0 + u * pitch + 4 })) };
  });
  return { sizes, width, height, size, columns, dense: maxUnits > 8 };
}

function edgePath(geo, c, from, to) {
  const a = geo.columns[c].units[from];
  const b = geo.columns[c + 1].units[to];
  const half = geo.size / 2;
  const x1 = a.x + geo.size;
  const x2 = b.x;
  const mid = (x1 + x2) / 2;
  return [x1, a.y + half, mid, a.y + half, mid, b.y + half, x2, b.y + half];
}

function bezierPoints([x1, y1, c1x, c1y, c2x, c2y, x2, y2], n = 16) {
  const points = [];
  for (let k = 0; k <= n; k++) {
    const t = k / n;
    const u = 1 - t;
    points.push([
      u * u * u * x1 + 3 * u * u * t * c1x + 3 * u * t * t * c2x + t * t * t * x2,
      u * u * u * y1 + 3 * u * u * t * c1y + 3 * u * t * t * c2y + t * t * t * y2,
    ]);
  }
  return points;
}

// Thicker for larger weights; thinner overall when there are many, so the picture stays legible.
function edgeWidth(w, dense = false) {
  return dense ? 0.4 + Math.min(Math.abs(w), 5) * 0.55 : 0.6 + Math.min(Math.abs(w), 5) * 1.3;
}

export class NetworkView {
  constructor({ canvas, tooltip, arch, limits, onArchitecture, onFocus }) {
    this.canvas = canvas;
    this.tooltip = tooltip;
    this.arch = arch;
    this.limits = limits; // {minUnits, maxUnits, maxLayers}
    this.onArchitecture = onArchitecture;
    this.onFocus = onFocus;
    this.state = null;
    this.geo = null;
    this.focus = [];
    this.showFocus = false;
    this.hover = null;
    this.dirty = true; // redraw on the next frame only when something shown has changed
    this.box = watchWidth(canvas.parentElement, () => {
      this.geo = null;
      this.dirty = true;
    });
    canvas.addEventListener("mousemove", (e) => this.onMove(e));
    canvas.addEventListener("mouseleave", () => this.setHover(null));
    canvas.addEventListener("click", (e) => this.onClick(e));
  }

  setState(state) {
    const sizes = state.network.sizes;
    if (!this.geo || this.geo.sizes.join() !== sizes.join()) this.geo = null;
    this.state = state;
    this.dirty = true;
    if (this.hover) this.renderTooltip();
  }

  setFocus(focus, show) {
    this.focus = focus;
    this.showFocus = show;
    this.dirty = true;
  }

  geometry() {
    const width = Math.max(320, this.box.width || 560);
    if (!this.geo || this.geo.width !== width) {
      this.geo = layout(this.state.network.sizes, width);
      this.buildOverlay();
    }
    return this.geo;
  }

  // -- architecture buttons --------------------------------------------------------

  buildOverlay() {
    const { sizes, columns, size } = this.geo;
    const activations = this.state.network.activations;
    const hidden = sizes.slice(1, -1);
    this.arch.replaceChildren();
    const captions = sizes.map((n, c) =>
      c === 0 ? "Input" : c === sizes.length - 1 ? `Output · ${activations[c - 1]}` : `Hidden ${c} · ${activations[c - 1]}`,
    );
    columns.forEach((col, c) => {
      const group = document.createElement("div");
      group.className = "arch-column";
      group.style.left = `${col.x + size / 2}px`;
      if (c > 0 && c < sizes.length - 1) {
        const units = hidden[c - 1];
        group.append(
          this.button("−", `Remove a neuron from hidden layer ${c}`, units <= this.limits.minUnits, () => {
            const next = [...hidden];
            next[c - 1] -= 1;
            this.onArchitecture(next);
          }),
          Object.assign(document.createElement("span"), { className: "arch-count", textContent: `${units}` }),
          this.button("+", `Add a neuron to hidden layer ${c}`, units >= this.limits.maxUnits, () => {
            const next = [...hidden];
            next[c - 1] += 1;
            this.onArchitecture(next);
          }),
        );
      }
      const caption = document.createElement("div");
      caption.className = "arch-caption";
      caption.textContent = captions[c];
      group.append(caption);
      this.arch.append(group);
    });
  }

  button(text, title, disabled, action) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "mini";
    b.textContent = text;
    b.title = title;
    b.setAttribute("aria-label", title);
    b.disabled = disabled;
    b.addEventListener("click", action);
    return b;
  }

  // -- drawing ------------------------------------------------------------------------

  draw() {
    if (!this.state || !this.dirty) return;
    this.dirty = false;
    const geo = this.geometry();
    const ctx = prepare(this.canvas, geo.width, geo.height);
    const { weights } = this.state.network;
    const trace = this.state.trace;
    const maps = decodedMaps(this.state);
    ctx.lineCap = "butt";
    // One path per (sign, width) bucket: a few strokes instead of one per weight.
    const buckets = new Map();
    let hovered = null;
    for (let l = 0; l < weights.length; l++) {
      const W = weights[l];
      for (let to = 0; to < W.length; to++) {
        for (let from = 0; from < W[to].length; from++) {
          const w = W[to][from];
          const p = edgePath(geo, l, from, to);
          if (this.hover?.kind === "edge" && this.hover.layer === l && this.hover.to === to && this.hover.from === from) hovered = [p, w];
          const width = Math.round(edgeWidth(w, geo.dense) * 2) / 2;
          const key = `${w < 0 ? "-" : "+"}${width}`;
          if (!buckets.has(key)) buckets.set(key, { negative: w < 0, width, paths: [] });
          buckets.get(key).paths.push(p);
        }
      }
    }
    for (const { negative, width, paths } of buckets.values()) {
      ctx.beginPath();
      for (const p of paths) {
        ctx.moveTo(p[0], p[1]);
        ctx.bezierCurveTo(p[2], p[3], p[4], p[5], p[6], p[7]);
      }
      ctx.strokeStyle = rgb(negative ? NEGATIVE : POSITIVE, 0.8);
      ctx.lineWidth = width;
      ctx.stroke();
    }
    if (hovered) {
      const [p, w] = hovered;
      ctx.beginPath();
      ctx.moveTo(p[0], p[1]);
      ctx.bezierCurveTo(p[2], p[3], p[4], p[5], p[6], p[7]);
      ctx.strokeStyle = "#111";
      ctx.lineWidth = edgeWidth(w, geo.dense) + 1.5;
      ctx.stroke();
    }
    ctx.imageSmoothingEnabled = true;
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    geo.columns.forEach((col, c) => {
      col.units.forEach((unit, u) => {
        if (c === 0) ctx.drawImage(maps.inputs[u], unit.x, unit.y, geo.size, geo.size);
        else ctx.drawImage(maps.atlas, ...maps.cell(c - 1, u), unit.x, unit.y, geo.size, geo.size);
        const focused = this.showFocus && c > 0 && this.focus[c - 1] === u;
        const hovered = this.hover?.kind === "node" && this.hover.column === c && this.hover.unit === u;
        ctx.lineWidth = focused || hovered ? 2.5 : 1;
        ctx.strokeStyle = focused ? "#111" : hovered ? "#444" : "rgba(0,0,0,0.25)";
        ctx.strokeRect(unit.x + 0.5, unit.y + 0.5, geo.size - 1, geo.size - 1);
        const value = trace ? (c === 0 ? trace.x[u] : trace.layers[c - 1].a[u]) : null;
        ctx.fillStyle = "#333";
        ctx.fillText(trace ? fmt(value) : "", unit.x + geo.size / 2, unit.y + geo.size + 2);
      });
    });
    ctx.fillStyle = "#555";
    ctx.textBaseline = "middle";
    geo.columns[0].units.forEach((unit, u) => {
      ctx.textAlign = "right";
      ctx.fillText(u === 0 ? "x₁" : "x₂", unit.x - 6, unit.y + geo.size / 2);
    });
  }

  // -- hover and click ------------------------------------------------------------------

  hit(event) {
    if (!this.geo || !this.state) return null;
    const r = this.canvas.getBoundingClientRect();
    const x = event.clientX - r.left;
    const y = event.clientY - r.top;
    const { size, columns } = this.geo;
    for (let c = 0; c < columns.length; c++) {
      for (let u = 0; u < columns[c].units.length; u++) {
        const n = columns[c].units[u];
        if (x >= n.x && x <= n.x + size && y >= n.y && y <= n.y + size) return { kind: "node", column: c, unit: u, x, y };
      }
    }
    let best = null;
    const weights = this.state.network.weights;
    for (let l = 0; l < weights.length; l++) {
      const left = columns[l].x + size;
      const right = columns[l + 1].x;
      if (x < left - 4 || x > right + 4) continue;
      for (let to = 0; to < weights[l].length; to++) {
        for (let from = 0; from < weights[l][to].length; from++) {
          const reach = Math.max(4, edgeWidth(weights[l][to][from], this.geo.dense) / 2 + 2);
          for (const [px, py] of bezierPoints(edgePath(this.geo, l, from, to))) {
            const d = Math.hypot(px - x, py - y);
            if (d <= reach && (!best || d < best.d)) best = { kind: "edge", layer: l, to, from, d, x, y };
          }
        }
      }
    }
    return best;
  }

  onMove(event) {
    this.setHover(this.hit(event));
  }

  onClick(event) {
    const h = this.hit(event);
    if (h?.kind === "node" && h.column > 0) this.onFocus(h.column - 1, h.unit);
  }

  setHover(hover) {
    const same = JSON.stringify(hover && [hover.kind, hover.layer, hover.to, hover.from, hover.column, hover.unit]) === JSON.stringify(this.hover && [this.hover.kind, this.hover.layer, this.hover.to, this.hover.from, this.hover.column, this.hover.unit]);
    this.hover = hover;
    if (!same) this.dirty = true;
    this.canvas.style.cursor = hover?.kind === "node" && hover.column > 0 ? "pointer" : "default";
    this.renderTooltip();
  }

  renderTooltip() {
    const h = this.hover;
    if (!h || !this.state) {
      this.tooltip.hidden = true;
      return;
    }
    const trace = this.state.trace;
    const rows = [];
    const row = (label, key, value) => rows.push([label, key, value]);
    let title;
    if (h.kind === "edge") {
      const { layer: l, to, from } = h;
      const last = l === this.state.network.weights.length - 1;
      const source = l === 0 ? `x${sub(from + 1)}` : `hidden ${l}, neuron ${from}`;
      const target = last ? `output ${to}` : `hidden ${l + 1}, neuron ${to}`;
      title = `W${sub(l + 1)}[${to},${from}]: ${source} → ${target}`;
      row("weight now", `network.weights.${l}.${to}.${from}`, this.state.network.weights[l][to][from]);
      if (trace) {
        row("∂L/∂W (last step)", `trace.layers.${l}.dL_dW.${to}.${from}`, trace.layers[l].dL_dW[to][from]);
        if (trace.regularization !== "none") row("∂R/∂W (last step)", `trace.layers.${l}.dR_dW.${to}.${from}`, trace.layers[l].dR_dW[to][from]);
        row("before last step", `trace.layers.${l}.W_before.${to}.${from}`, trace.layers[l].W_before[to][from]);
      }
    } else if (h.column === 0) {
      title = `Input x${sub(h.unit + 1)}`;
      if (trace) row("value for this example", `trace.x.${h.unit}`, trace.x[h.unit]);
    } else {
      const l = h.column - 1;
      const last = l === this.state.network.weights.length - 1;
      title = `${last ? "Output" : `Hidden layer ${h.column}`} neuron ${h.unit}`;
      row("bias now", `network.biases.${l}.${h.unit}`, this.state.network.biases[l][h.unit]);
      if (trace) {
        row("z (this example)", `trace.layers.${l}.z.${h.unit}`, trace.layers[l].z[h.unit]);
        row("a (this example)", `trace.layers.${l}.a.${h.unit}`, trace.layers[l].a[h.unit]);
        row("∂L/∂z (this example)", `trace.layers.${l}.dL_dz.${h.unit}`, trace.layers[l].dL_dz[h.unit]);
      }
    }
    const body = document.createElement("div");
    const heading = Object.assign(document.createElement("div"), { className: "tip-title", textContent: title });
    body.append(heading);
    for (const [label, key, value] of rows) {
      const line = document.createElement("div");
      line.className = "tip-row";
      const number = Object.assign(document.createElement("span"), { className: "num", textContent: fmt(value) });
      number.dataset.key = key;
      number.dataset.value = String(value);
      line.append(Object.assign(document.createElement("span"), { textContent: label }), number);
      body.append(line);
    }
    if (!trace) body.append(Object.assign(document.createElement("div"), { className: "tip-note", textContent: "Take a step to see gradients." }));
    if (h.kind === "node" && h.column > 0) body.append(Object.assign(document.createElement("div"), { className: "tip-note", textContent: "Click to follow this neuron in the computation below." }));
    this.tooltip.replaceChildren(body);
    this.tooltip.hidden = false;
    const maxLeft = (this.geo?.width ?? 400) - 230;
    this.tooltip.style.left = `${Math.max(0, Math.min(h.x + 14, maxLeft))}px`;
    // Below the pointer, or above it where the panel would cut the tooltip off.
    const below = h.y + 14;
    const height = this.tooltip.offsetHeight;
    this.tooltip.style.top = `${below + height > (this.geo?.height ?? 0) ? Math.max(0, h.y - 10 - height) : below}px`;
  }
}

function sub(n) {
  return String(n).replace(/\d/g, (d) => "₀₁₂₃₄₅₆₇₈₉"[d]);
}
