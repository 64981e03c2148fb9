// Small multiples: a grid of heatmaps (e.g. layers x heads) sharing one colour scale and legend.

import { el, figureExports, FONT, frame, MUTED, SVG_NS, svgEl, viewHandle } from "./common.js";
import { heatmap } from "./heatmap.js";
import { colorScale, drawLegend } from "./scale.js";

/** smallMultiples(element, {panels: [{title, values, rowLabels?, colLabels?}]}, options) -> handle. */
export function smallMultiples(container, data, options = {}) {
  const exports = figureExports(figureSvg, exportJson);
  const view = frame(container, options, { className: "lw-small-multiples", exportName: "small-multiples", exports });
  const grid = el("div", { class: "lw-grid" });
  const legendHost = el("div", { class: "lw-legend-host" });
  view.body.append(grid, legendHost);
  let panels;
  let views = [];
  let scale;
  let selected = null;

  function render() {
    panels = normalize(data);
    const all = [];
    for (const p of panels) for (const v of flatValues(p.values)) all.push(v);
    scale = colorScale(options.scale || {}, all);
    const columns = options.columns ?? Math.max(1, Math.min(panels.length, 8));
    grid.style.gridTemplateColumns = `repeat(${columns}, max-content)`;
    grid.replaceChildren();
    views = panels.map((panel, index) => {
      const box = el("div", { class: "lw-panel", "data-panel": String(index) });
      const title = el("div", { class: "lw-panel-title", text: panel.title ?? String(index) });
      const host = el("div");
      box.append(title);
      if (panel.stats?.length) box.append(statsLine(panel.stats));
      if (options.onPanelClick) {
        title.classList.add("lw-clickable");
        title.addEventListener("click", () => options.onPanelClick(index));
      }
      box.append(host);
      grid.append(box);
      return heatmap(host, panel, {
        bare: true,
        legend: false,
        labels: options.labels ?? false,
        cellSize: options.cellSize ?? 6,
        tokenLabels: options.tokenLabels,
        rowTitle: options.rowTitle,
        colTitle: options.colTitle,
        title: panel.title,
        scale,
        onHover: (info) => options.onHover?.(info && { panel: index, ...info }),
        onSelect: (info) => choose(index, info),
      });
    });
    legendHost.replaceChildren();
    if (options.legend !== false) {
      const svg = svgEl("svg", { width: 260, height: 46 });
      legendHost.append(svg);
      drawLegend(svg, scale, { x: 4, y: 2, width: 240 });
    }
  }

  function choose(index, info, notify = true) {
    views.forEach((v, i) => {
      if (i !== index && v.selected) v.select(null, null, { notify: false });
    });
    selected = info ? { panel: index, ...info } : null;
    [...grid.children].forEach((box, i) => box.classList.toggle("lw-selected", !!selected && i === index));
    if (notify) options.onSelect?.(selected);
  }

  function select(panel, row, col, { notify = true } = {}) {
    if (panel == null) {
      views.forEach((v) => v.select(null, null, { notify: false }));
      return choose(null, null, notify);
    }
    if (!(panel >= 0 && panel < views.length)) throw new Error(`panel ${panel} is out of range: the grid has ${views.length} panels`);
    views[panel].select(row, col, { notify: false });
    choose(panel, views[panel].selected, notify);
  }

  function figureSvg() {
    const origin = grid.getBoundingClientRect();
    const svg = svgEl("svg");
    let width = 0;
    let height = 0;
    views.forEach((v, i) => {
      const box = grid.children[i].getBoundingClientRect();
      const x = box.left - origin.left;
      const y = box.top - origin.top;
      const t = svgEl("text", { x, y: y + 12, fill: MUTED, "font-size": 11.5, "font-family": FONT });
      t.textContent = panels[i].title ?? String(i);
      const inner = v.figureSvg();
      inner.setAttribute("x", x);
      inner.setAttribute("y", y + 17);
      svg.append(t, inner);
      width = Math.max(width, x + Number(inner.getAttribute("width")));
      height = Math.max(height, y + 17 + Number(inner.getAttribute("height")));
    });
    if (options.legend !== false) height += 6 + drawLegend(svg, scale, { x: 0, y: height + 6, width: 240 });
    width = Math.max(width, 250);
    svg.setAttribute("xmlns", SVG_NS);
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    return svg;
  }

  function exportJson() {
    return {
      view: "small-multiples",
      title: options.title || "",
      scale: { kind: scale.kind, scheme: scale.scheme, domain: scale.domain, label: scale.label },
      panels: views.map((v) => {
        const { title, rowLabels, colLabels, values } = v.exportJson();
        const stats = panels[views.indexOf(v)].stats;
        return stats ? { title, rowLabels, colLabels, values, stats: stats.map(({ name, label, value }) => ({ name, label, value })) } : { title, rowLabels, colLabels, values };
      }),
    };
  }

  function accept(next) {
    data = next;
    selected = null;
  }

  render();
  return viewHandle({ container, view, options, exports, accept, redraw: render }, {
    select,
    get selected() {
      return selected;
    },
    get scale() {
      return scale;
    },
    get panels() {
      return views;
    },
  });
}

/** A [R, C, rows, cols] tensor ({shape, data}) -> panels titled "L0 H0", "L0 H1", ... row-major. */
export function panelsFromTensor(tensor, { rowName = "L", colName = "H", rowLabels, colLabels } = {}) {
  if (!tensor || !tensor.shape || tensor.shape.length !== 4) throw new Error("panelsFromTensor needs a 4-d tensor {shape: [R, C, rows, cols], data}");
  const [R, C, rows, cols] = tensor.shape;
  const size = rows * cols;
  const panels = [];
  for (let r = 0; r < R; r += 1) {
    for (let c = 0; c < C; c += 1) {
      const start = (r * C + c) * size;
      panels.push({ title: `${rowName}${r} ${colName}${c}`, values: { shape: [rows, cols], data: tensor.data.subarray(start, start + size) }, rowLabels, colLabels });
    }
  }
  return panels;
}

/** A panel's numbers under its title: one span per stat, its full value in data-value. */
function statsLine(stats) {
  const line = el("div", { class: "lw-panel-stats" });
  for (const stat of stats) {
    const value = Number.isFinite(stat.value) ? String(stat.value) : "null";
    line.append(el("span", { class: "lw-panel-stat", "data-name": stat.name, "data-value": value, title: stat.label }, `${stat.short ?? stat.label} `, el("b", { text: stat.text })));
  }
  return line;
}

function normalize(data) {
  if (!data || !Array.isArray(data.panels)) throw new Error("smallMultiples needs data.panels: an array of {title, values}");
  return data.panels;
}

function flatValues(values) {
  if (values && values.data) return values.data;
  if (Array.isArray(values)) return values.flat();
  throw new Error("each panel needs values: an array of rows or a decoded tensor {shape, data}");
}
