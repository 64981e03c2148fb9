// The vector strip: one vector (a residual stream, a head's q, an MLP's activations) as a row of
// coloured cells, one per entry, with the entry's index and value on hover. Its few layout rules
// are set inline, so views.css stays as the other views left it.

import { el, figureExports, frame, svgEl, tooltip, viewHandle } from "./common.js";
import { colorScale, drawLegend } from "./scale.js";

const CELLS_PER_ROW = 64;

/**
 * vectorStrip(element, {values, indices?}, options) -> handle. See README.md in this folder.
 * `values`: numbers (an array or Float32Array); `indices`: each entry's index in the whole vector
 * (default 0..n-1), for a vector thinned before it was sent.
 */
export function vectorStrip(container, data, options = {}) {
  let current = data;
  let scale;
  let cells = [];
  const exports = figureExports(figureSvg, exportJson);
  const view = frame(container, options, { className: "lw-vector-strip", exportName: "vector", title: "Vector", exports });
  const host = el("div", { class: "lw-vcells", role: "img", style: "display:flex;flex-direction:column;gap:1px;position:relative" });
  view.body.append(host);
  const tip = tooltip(view.body);
  const show = (v) => (options.formatValue ? options.formatValue(v) : scale.format(v));

  function index(i) {
    return current.indices ? current.indices[i] : i;
  }

  function describe(i) {
    return [`${options.axis ?? "entry"} ${index(i)}`, `${scale.label || "value"}: ${show(current.values[i])}`];
  }

  function render() {
    const values = Array.from(current.values);
    scale = colorScale({ kind: "diverging", label: options.label ?? "value", ...(options.scale || {}) }, values);
    host.setAttribute("aria-label", `${options.title ?? "vector"}: ${values.length} values`);
    const size = options.cellSize ?? 9;
    cells = values.map((v, i) => {
      const cell = el("span", { class: "lw-vcell", "data-index": String(index(i)), "data-value": String(v) });
      Object.assign(cell.style, { display: "inline-block", width: `${size}px`, height: "14px", cursor: "crosshair", background: Number.isFinite(v) ? scale.color(v) : "#eef0f3" });
      return cell;
    });
    const rows = [];
    const perRow = options.cellsPerRow ?? CELLS_PER_ROW;
    for (let start = 0; start < cells.length; start += perRow) rows.push(el("span", { class: "lw-vrow", style: "display:flex" }, ...cells.slice(start, start + perRow)));
    host.replaceChildren(...rows);
  }

  let hovered = null;
  const outline = (cell) => {
    if (hovered) hovered.style.outline = "";
    hovered = cell;
    if (cell) cell.style.outline = "1px solid #1f2933";
  };
  host.addEventListener("pointermove", (event) => {
    const cell = event.target.closest(".lw-vcell");
    outline(cell);
    if (!cell) return tip.hide();
    const i = cells.indexOf(cell);
    tip.show(describe(i), cell.offsetLeft, cell.offsetTop);
    options.onHover?.(index(i), current.values[i]);
  });
  host.addEventListener("pointerleave", () => {
    outline(null);
    tip.hide();
    options.onHover?.(null, null);
  });

  function exportJson() {
    return { view: "vector-strip", title: options.title ?? "", axis: options.axis ?? "entry", indices: Array.from(current.values, (_, i) => index(i)), values: Array.from(current.values) };
  }

  function figureSvg() {
    const size = options.cellSize ?? 9;
    const perRow = options.cellsPerRow ?? CELLS_PER_ROW;
    const rows = Math.ceil(current.values.length / perRow);
    const width = Math.max(240, perRow * size + 20);
    const svg = svgEl("svg", { width, height: rows * size + 60 });
    Array.from(current.values).forEach((v, i) => {
      const x = 10 + (i % perRow) * size;
      const y = 6 + Math.floor(i / perRow) * size;
      svg.append(svgEl("rect", { x, y, width: size, height: size, fill: Number.isFinite(v) ? scale.color(v) : "#eef0f3" }));
    });
    drawLegend(svg, scale, { x: 10, y: rows * size + 14, width: 200 });
    return svg;
  }

  render();
  return viewHandle(
    { container, view, options, exports, accept: (next) => (current = next), redraw: render },
    {
      get cells() {
        return cells;
      },
    },
  );
}
