// Line charts drawn by hand on canvas: the loss curves and the parameters' history.

import { prepare, watchWidth } from "./canvas.js";

const PAD = { left: 44, right: 10, top: 10, bottom: 22 };

function niceMax(value) {
  if (!(value > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= value) return m * p;
  return 10 * p;
}

// Axis labels: short, and in powers of ten once they get long.
function tick(v) {
  if (v === 0) return "0";
  if (Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3) {
    const [m, e] = v.toExponential(1).split("e");
    return `${m.replace("-", "−")}×10${String(Number(e)).replace(/[-\d]/g, (c) => "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"["-0123456789".indexOf(c)])}`;
  }
  return String(Number(v.toPrecision(3))).replace("-", "−");
}

// Room on the left for the widest y label.
function leftPad(ctx, labels) {
  ctx.font = "10px system-ui, sans-serif";
  return Math.max(PAD.left, Math.ceil(Math.max(...labels.map((l) => ctx.measureText(l).width))) + 10);
}

function frame(ctx, width, height, xMax, yTicks, yLabel, left = PAD.left) {
  ctx.strokeStyle = "#d5d9de";
  ctx.lineWidth = 1;
  ctx.fillStyle = "#6b7280";
  ctx.font = "10px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const [y, label] of yTicks) {
    ctx.beginPath();
    ctx.moveTo(left, y + 0.5);
    ctx.lineTo(width - PAD.right, y + 0.5);
    ctx.stroke();
    ctx.fillText(label, left - 4, y);
  }
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText("0", left, height - PAD.bottom + 5);
  ctx.textAlign = "right";
  ctx.fillText(`step ${xMax}`, width - PAD.right, height - PAD.bottom + 5);
  if (yLabel) {
    ctx.textAlign = "left";
    ctx.fillText(yLabel, left + 4, PAD.top);
  }
}

export const CURVES = [
  { key: "train", label: "train", colour: "#0877bd", dash: [] },
  { key: "test", label: "test", colour: "#f59322", dash: [5, 3] },
  { key: "clean", label: "clean", colour: "#4b5563", dash: [1.5, 3] },
];

export class LossChart {
  constructor(canvas, { height = 170 } = {}) {
    this.canvas = canvas;
    this.height = height;
    this._log = false;
    this.state = null;
    this.dirty = true;
    this.box = watchWidth(canvas.parentElement, () => (this.dirty = true));
  }

  get log() {
    return this._log;
  }

  set log(value) {
    this._log = value;
    this.dirty = true;
  }

  setState(state) {
    this.state = state;
    this.dirty = true;
  }

  draw() {
    if (!this.state || !this.dirty) return;
    this.dirty = false;
    const width = Math.max(240, this.box.width || 320);
    const height = this.height;
    const ctx = prepare(this.canvas, width, height);
    const { steps, ...curves } = this.state.curves;
    const xMax = Math.max(1, steps[steps.length - 1] ?? 1);
    const values = CURVES.flatMap((c) => curves[c.key]).filter((v) => v !== null && Number.isFinite(v));
    const plotH = height - PAD.top - PAD.bottom;
    let y;
    let ticks;
    if (this.log) {
      const lo = Math.floor(Math.log10(Math.max(1e-6, Math.min(...values, 1))));
      const hi = Math.ceil(Math.log10(Math.max(...values, 1e-6) * 1.0001));
      const top = Math.max(hi, lo + 1);
      y = (v) => PAD.top + ((top - Math.log10(Math.max(v, 10 ** lo))) / (top - lo)) * plotH;
      ticks = [];
      for (let e = lo; e <= top; e++) ticks.push([y(10 ** e), `10${e < 0 ? "⁻" : ""}${String(Math.abs(e)).replace(/\d/g, (d) => "⁰¹²³⁴⁵⁶⁷⁸⁹"[d])}`]);
    } else {
      const top = niceMax(Math.max(...values, 0));
      y = (v) => PAD.top + (1 - v / top) * plotH;
      ticks = [0, 0.5, 1].map((f) => [y(f * top), tick(f * top)]);
    }
    const left = leftPad(ctx, ticks.map((t) => t[1]));
    frame(ctx, width, height, xMax, ticks, this.log ? "loss (log)" : "loss", left);
    const x = (s) => left + (s / xMax) * (width - left - PAD.right);
    ctx.lineWidth = 1.8;
    for (const c of CURVES) {
      ctx.strokeStyle = c.colour;
      ctx.setLineDash(c.dash);
      ctx.beginPath();
      let pen = false;
      curves[c.key].forEach((v, i) => {
        if (v === null || !Number.isFinite(v)) {
          pen = false;
          return;
        }
        const py = Math.max(PAD.top - 2, Math.min(height - PAD.bottom, y(v)));
        if (pen) ctx.lineTo(x(steps[i]), py);
        else ctx.moveTo(x(steps[i]), py);
        pen = true;
      });
      ctx.stroke();
    }
    ctx.setLineDash([]);
  }
}

const LAYER_COLOURS = ["#0877bd", "#7c3aed", "#059669", "#db2777", "#ca8a04", "#0891b2", "#dc2626"];

export class ParameterChart {
  constructor(canvas, { height = 160 } = {}) {
    this.canvas = canvas;
    this.height = height;
    this.parameters = null;
    this.highlight = null;
    this.cache = null;
    this.box = watchWidth(canvas.parentElement, () => (this.cache = null));
  }

  setParameters(parameters) {
    if (parameters && parameters !== this.parameters) {
      this.parameters = parameters;
      this.cache = null;
    }
  }

  setHighlight(name) {
    if (name !== this.highlight) {
      this.highlight = name;
      this.cache = null;
    }
  }

  draw() {
    const p = this.parameters;
    if (!p) return;
    const width = Math.max(240, this.box.width || 320);
    const height = this.height;
    const ratio = window.devicePixelRatio || 1;
    const key = `${width}x${height}@${ratio}`;
    // The history changes twice a second at most while playing: draw only then.
    if (this.cache && this.cache.key === key) return;
    this.cache = { key };
    this.render(this.canvas, width, height);
  }

  render(canvas, width, height) {
    const p = this.parameters;
    const ctx = prepare(canvas, width, height);
    const xMax = Math.max(1, p.steps[p.steps.length - 1] ?? 1);
    let bound = 0;
    for (const series of p.values) for (const v of series) bound = Math.max(bound, Math.abs(v));
    bound = niceMax(bound);
    const plotH = height - PAD.top - PAD.bottom;
    const y = (v) => PAD.top + ((bound - v) / (2 * bound)) * plotH;
    const ticks = [[y(bound), tick(bound)], [y(0), "0"], [y(-bound), tick(-bound)]];
    const left = leftPad(ctx, ticks.map((t) => t[1]));
    const x = (s) => left + (s / xMax) * (width - left - PAD.right);
    frame(ctx, width, height, xMax, ticks, "value", left);
    const many = p.values.length > 60;
    const drawSeries = (i, emphasised) => {
      const name = p.names[i];
      const layer = Number(name.slice(1, name.indexOf("[")));
      ctx.strokeStyle = emphasised ? "#111" : LAYER_COLOURS[(layer - 1) % LAYER_COLOURS.length];
      ctx.globalAlpha = emphasised ? 1 : many ? 0.45 : 0.85;
      ctx.lineWidth = emphasised ? 2.5 : name.startsWith("b") ? 1 : 1.3;
      ctx.setLineDash(name.startsWith("b") ? [4, 3] : []);
      ctx.beginPath();
      p.values[i].forEach((v, k) => (k ? ctx.lineTo(x(p.steps[k]), y(v)) : ctx.moveTo(x(p.steps[k]), y(v))));
      ctx.stroke();
    };
    let highlighted = -1;
    p.values.forEach((_, i) => {
      if (p.names[i] === this.highlight) highlighted = i;
      else drawSeries(i, false);
    });
    if (highlighted >= 0) drawSeries(highlighted, true);
    ctx.globalAlpha = 1;
    ctx.setLineDash([]);
  }
}
