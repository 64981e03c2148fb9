// Rotation pairs: coordinate pairs of a vector drawn as arrows in the plane, before (grey) and after
// (colour) a rotation, with the angle between them: rotary position embeddings turn each pair of a
// query or key by position × the pair's frequency.

import { el, figureExports, frame, FONT, INK, MUTED, svgEl, tooltip, viewHandle } from "./common.js";

const SIZE = 96;

/**
 * rotationPairs(element, {pairs: [{label, before: [x, y], after: [x, y], angle, trail?}]}, options) -> handle.
 * `trail`: optional points [x, y] (e.g. where the pair points at every position), drawn as dots.
 * See README.md in this folder.
 */
export function rotationPairs(container, data, options = {}) {
  let current = data;
  const exports = figureExports(figureSvg, exportJson);
  const view = frame(container, options, { className: "lw-rotation-pairs", exportName: "rotation-pairs", title: "Rotation", exports });
  // layout set inline, so views.css stays as the other views left it
  const host = el("div", { class: "lw-pairs", style: "display:flex;flex-wrap:wrap;gap:6px;position:relative" });
  view.body.append(host);
  const tip = tooltip(view.body);
  const show = (v) => (options.formatValue ? options.formatValue(v) : v.toPrecision(4));

  function plot(pair, reach) {
    const svg = svgEl("svg", { width: SIZE, height: SIZE + 16, class: "lw-pair", style: "display:block" });
    const c = SIZE / 2;
    const k = (SIZE / 2 - 6) / reach;
    svg.append(svgEl("line", { x1: 4, y1: c, x2: SIZE - 4, y2: c, stroke: "#d5dbe2" }), svgEl("line", { x1: c, y1: 4, x2: c, y2: SIZE - 4, stroke: "#d5dbe2" }));
    svg.append(svgEl("circle", { cx: c, cy: c, r: Math.hypot(...pair.before) * k, fill: "none", stroke: "#e6e9ee", "stroke-dasharray": "2 2" }));
    for (const [x, y] of pair.trail ?? []) svg.append(svgEl("circle", { cx: c + x * k, cy: c - y * k, r: 1.6, fill: "#f59322", "fill-opacity": 0.45, class: "lw-trail" }));
    const arrow = ([x, y], colour, cls) => svgEl("line", { x1: c, y1: c, x2: c + x * k, y2: c - y * k, stroke: colour, "stroke-width": 2, "stroke-linecap": "round", class: cls });
    svg.append(arrow(pair.before, "#9aa5b1", "lw-before"), arrow(pair.after, "#d9480f", "lw-after"));
    const label = svgEl("text", { x: c, y: SIZE + 12, "text-anchor": "middle", "font-size": 11, "font-family": FONT, fill: MUTED });
    label.textContent = pair.label;
    svg.append(label);
    return svg;
  }

  function render() {
    const reach = Math.max(1e-12, ...current.pairs.map((p) => Math.max(Math.hypot(...p.before), Math.hypot(...p.after))));
    host.replaceChildren(
      ...current.pairs.map((pair, i) => {
        const box = el("span", { class: "lw-pair-box", "data-index": String(i), tabindex: "0", style: "display:inline-block;cursor:crosshair" });
        box.append(plot(pair, reach));
        const lines = () => [pair.label, `before: (${pair.before.map(show).join(", ")})`, `after: (${pair.after.map(show).join(", ")})`, `angle: ${show(pair.angle)} rad`];
        box.addEventListener("pointerenter", () => tip.show(lines(), box.offsetLeft, box.offsetTop + SIZE / 2));
        box.addEventListener("pointerleave", () => tip.hide());
        return box;
      }),
    );
  }

  function exportJson() {
    return { view: "rotation-pairs", pairs: current.pairs.map((p) => ({ ...p })) };
  }

  function figureSvg() {
    const reach = Math.max(1e-12, ...current.pairs.map((p) => Math.max(Math.hypot(...p.before), Math.hypot(...p.after))));
    const svg = svgEl("svg", { width: current.pairs.length * (SIZE + 8), height: SIZE + 20, color: INK });
    current.pairs.forEach((pair, i) => {
      const g = svgEl("g", { transform: `translate(${i * (SIZE + 8)},0)` });
      g.append(...plot(pair, reach).childNodes);
      svg.append(g);
    });
    return svg;
  }

  render();
  return viewHandle({ container, view, options, exports, accept: (next) => (current = next), redraw: render });
}
