// The data and the decision: the network's output over the input plane, with the
// training points (filled) and test points (rings) on top; for XOR, the four corners.

import { prepare, watchWidth } from "./canvas.js";
import { decodedMaps } from "./heatmap.js";
import { CLASS_COLOURS, fmt, percent } from "./format.js";

export class DecisionView {
  constructor({ canvas, xorTable }) {
    this.canvas = canvas;
    this.xorTable = xorTable;
    this.state = null;
    this.data = null;
    this.xorKey = null;
    this.dirty = true;
    this.box = watchWidth(canvas.parentElement, () => (this.dirty = true));
  }

  setData(data) {
    if (data !== this.data) this.dirty = true;
    this.data = data;
  }

  setState(state) {
    this.state = state;
    this.dirty = true;
    this.renderXor(state.xor);
  }

  draw() {
    if (!this.state || !this.data || !this.dirty) return;
    this.dirty = false;
    const size = Math.max(200, Math.min(this.box.width || 300, 340));
    const ctx = prepare(this.canvas, size, size);
    const [x0, x1, , y1] = this.data.domain;
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(decodedMaps(this.state).output, 0, 0, size, size);
    ctx.drawImage(this.pointsLayer(size), 0, 0, size, size);
    // Axis ticks at the domain's corners, so the plane's scale is readable.
    ctx.fillStyle = "rgba(0,0,0,0.55)";
    ctx.font = "10px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    ctx.textAlign = "left";
    ctx.fillText(`${x0}`, 3, size - 2);
    ctx.textAlign = "right";
    ctx.fillText(`x₁ ${x1}`, size - 3, size - 2);
    ctx.textBaseline = "top";
    ctx.textAlign = "left";
    ctx.fillText(`x₂ ${y1}`, 3, 2);
  }

  // The points never change during a run: draw them once into their own layer.
  pointsLayer(size) {
    const key = `${size}@${window.devicePixelRatio || 1}`;
    if (this.points?.data === this.data && this.points.key === key && this.points.xor === !!this.state.xor) return this.points.canvas;
    const canvas = this.points?.canvas ?? document.createElement("canvas");
    const ctx = prepare(canvas, size, size);
    const [x0, x1, y0, y1] = this.data.domain;
    const px = (x) => ((x - x0) / (x1 - x0)) * size;
    const py = (y) => ((y1 - y) / (y1 - y0)) * size;
    const radius = this.data.train.X.length > 300 ? 2.5 : 3.5;
    const points = (set, test) => {
      for (let i = 0; i < set.X.length; i++) {
        const [x, y] = set.X[i];
        ctx.beginPath();
        ctx.arc(px(x), py(y), test ? radius + 0.5 : radius, 0, 2 * Math.PI);
        if (test) {
          ctx.fillStyle = "#fff";
          ctx.fill();
          ctx.lineWidth = 2;
          ctx.strokeStyle = CLASS_COLOURS[set.y[i]];
          ctx.stroke();
        } else {
          ctx.fillStyle = CLASS_COLOURS[set.y[i]];
          ctx.fill();
          ctx.lineWidth = 0.8;
          ctx.strokeStyle = "rgba(0,0,0,0.55)";
          ctx.stroke();
        }
      }
    };
    const xor = !!this.state.xor && this.data.train.X.length === 4;
    points(this.data.test, true);
    points(this.data.train, false);
    if (xor) {
      // The four XOR points are both the training and the test set: draw them large.
      this.state.xor.points.forEach(([x, y], i) => {
        ctx.beginPath();
        ctx.arc(px(x), py(y), 8, 0, 2 * Math.PI);
        ctx.fillStyle = CLASS_COLOURS[this.state.xor.labels[i]];
        ctx.fill();
        ctx.lineWidth = 2.5;
        ctx.strokeStyle = "#fff";
        ctx.stroke();
        ctx.beginPath();
        ctx.arc(px(x), py(y), 9.5, 0, 2 * Math.PI);
        ctx.lineWidth = 1;
        ctx.strokeStyle = "rgba(0,0,0,0.6)";
        ctx.stroke();
      });
    }
    this.points = { data: this.data, key, xor: !!this.state.xor, canvas };
    return canvas;
  }

  renderXor(xor) {
    if (!xor) {
      this.xorTable.hidden = true;
      this.xorKey = null;
      return;
    }
    this.xorTable.hidden = false;
    if (this.xorKey !== "xor") {
      this.xorKey = "xor";
      const rows = xor.points
        .map(
          (p, i) => `<tr>
            <td>(${p[0]}, ${p[1]})</td><td>${xor.labels[i]}</td>
            <td class="num" data-key="xor.outputs.${i}"></td>
            <td class="num" data-key="xor.predictions.${i}"></td><td data-mark="${i}"></td></tr>`,
        )
        .join("");
      this.xorTable.innerHTML = `<table class="xor"><caption>XOR's four points</caption>
        <thead><tr><th>x</th><th>target</th><th>output</th><th>predicted</th><th></th></tr></thead>
        <tbody>${rows}</tbody>
        <tfoot><tr><td colspan="3">accuracy</td><td colspan="2" class="num" data-key="xor.accuracy"></td></tr></tfoot></table>`;
    }
    for (const el of this.xorTable.querySelectorAll("[data-key]")) {
      const [, field, index] = el.dataset.key.split(".");
      const value = index === undefined ? xor[field] : xor[field][Number(index)];
      el.dataset.value = String(value);
      el.textContent = field === "accuracy" ? percent(value) : fmt(value);
    }
    for (const el of this.xorTable.querySelectorAll("[data-mark]")) {
      const i = Number(el.dataset.mark);
      const right = xor.predictions[i] === xor.labels[i];
      el.textContent = right ? "✓" : "✗";
      el.className = right ? "right" : "wrong";
    }
  }
}
