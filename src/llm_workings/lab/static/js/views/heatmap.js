// The heatmap: cells on a canvas, labels, axis titles and the colour legend in an SVG around it.

import { asMatrix, el, ensureStyles, figureExports, FONT, frame, INK, MUTED, svgEl, textWidth, tooltip, truncate, viewHandle, visibleText } from "./common.js";
import { colorScale, drawLegend, MISSING_RGB } from "./scale.js";

const LABEL_FONT = `11px ${FONT}`;
const VECTOR_CELLS = 4096; // up to this many cells an exported SVG draws one <rect> per cell

/**
 * heatmap(element, {values, rowLabels?, colLabels?}, options) -> handle.
 * `values`: an array of rows or a decoded tensor {shape: [rows, cols], data}. See README.md.
 */
export function heatmap(container, data, options = {}) {
  const exports = figureExports(figureSvg, exportJson);
  const view = options.bare ? bareFrame(container) : frame(container, options, { className: "lw-heatmap", exportName: "heatmap", exports });
  const plot = el("div", { class: "lw-plot" });
  view.body.append(plot);
  const tip = tooltip(plot);
  let m;
  let labels;
  let scale;
  let layout;
  let selected = options.selected ?? null;
  let cursor = null;
  let svg;
  let canvas;
  let cells; // offscreen canvas, one pixel per cell
  let hoverRect;
  let selectRect;

  function render() {
    m = asMatrix(data.values);
    labels = {
      rows: labelList(data.rowLabels, m.rows, "rowLabels"),
      cols: labelList(data.colLabels, m.cols, "colLabels"),
    };
    scale = colorScale(options.scale || {}, m.flat);
    layout = computeLayout();
    drawCells();
    drawFrame();
  }

  function labelList(given, n, key) {
    if (given == null) return Array.from({ length: n }, (_, i) => String(i));
    if (given.length !== n) throw new Error(`data.${key} has ${given.length} labels for ${n} ${key === "rowLabels" ? "rows" : "columns"}`);
    return given.map((l) => truncate(options.tokenLabels ? visibleText(String(l)) : String(l), 16));
  }

  function computeLayout() {
    const available = Math.max(120, (options.width ?? (container.clientWidth || 640)) - 20);
    const titles = options.labels !== false; // without labels, the axis titles only name the tooltip's lines
    const widest = (list) => (titles ? Math.ceil(list.reduce((w, l) => Math.max(w, textWidth(l, LABEL_FONT)), 0)) : 0);
    const rowLabelWidth = widest(labels.rows);
    const colLabelWidth = widest(labels.cols);
    const left = (titles && options.rowTitle ? 18 : 0) + (titles ? rowLabelWidth + 6 : 0) + 2;
    const fit = Math.floor((available - left) / Math.max(1, m.cols));
    const cell = Math.max(1, options.cellSize ?? Math.min(28, fit));
    const rotate = colLabelWidth > cell - 2;
    const colLabelHeight = options.labels === false ? 0 : rotate ? colLabelWidth + 6 : 16;
    const plotWidth = cell * m.cols;
    const plotHeight = cell * m.rows;
    const bottomLabels = plotHeight + 4 + colLabelHeight + (titles && options.colTitle ? 16 : 0);
    const legendTop = bottomLabels + 6;
    const legendWidth = Math.min(240, Math.max(140, plotWidth));
    const legendHeight = options.legend === false ? 0 : 46;
    const width = Math.max(left + plotWidth + 4, options.legend === false ? 0 : left + legendWidth + 12);
    return {
      cell,
      left,
      top: 4,
      rotate,
      plotWidth,
      plotHeight,
      legendTop,
      legendWidth,
      width,
      height: legendTop + legendHeight + 4,
      rowEvery: Math.max(1, Math.ceil(13 / cell)),
      colEvery: rotate ? Math.max(1, Math.ceil(13 / cell)) : 1,
    };
  }

  function drawCells() {
    cells = document.createElement("canvas");
    cells.width = Math.max(1, m.cols);
    cells.height = Math.max(1, m.rows);
    const ctx = cells.getContext("2d");
    const image = ctx.createImageData(cells.width, cells.height);
    const { lut } = scale;
    for (let r = 0; r < m.rows; r += 1) {
      for (let c = 0; c < m.cols; c += 1) {
        const from = scale.lutIndex(m.get(r, c));
        const at = 4 * (r * m.cols + c);
        if (from < 0) image.data.set(MISSING_RGB, at);
        else {
          image.data[at] = lut[from];
          image.data[at + 1] = lut[from + 1];
          image.data[at + 2] = lut[from + 2];
        }
        image.data[at + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
    const ratio = window.devicePixelRatio || 1;
    canvas = el("canvas", { class: "lw-cells", tabindex: "0", role: "grid", "aria-label": `${options.title || "heatmap"}: ${m.rows} by ${m.cols} cells; arrow keys move, Enter selects` });
    canvas.width = Math.max(1, Math.round(layout.plotWidth * ratio));
    canvas.height = Math.max(1, Math.round(layout.plotHeight * ratio));
    canvas.style.width = `${layout.plotWidth}px`;
    canvas.style.height = `${layout.plotHeight}px`;
    canvas.style.left = `${layout.left}px`;
    canvas.style.top = `${layout.top}px`;
    const display = canvas.getContext("2d");
    display.imageSmoothingEnabled = false;
    display.drawImage(cells, 0, 0, canvas.width, canvas.height);
  }

  function drawFrame() {
    svg = svgEl("svg", { width: layout.width, height: layout.height, viewBox: `0 0 ${layout.width} ${layout.height}`, class: "lw-frame" });
    const { cell, left, top } = layout;
    const titles = options.labels !== false;
    if (titles) {
      labels.rows.forEach((label, r) => {
        if (r % layout.rowEvery) return;
        const t = svgEl("text", { x: left - 6, y: top + (r + 0.5) * cell, "text-anchor": "end", "dominant-baseline": "central", fill: MUTED, "font-size": 11, "font-family": FONT, "xml:space": "preserve" });
        t.textContent = label;
        svg.append(t);
      });
      labels.cols.forEach((label, c) => {
        if (c % layout.colEvery) return;
        const x = left + (c + 0.5) * cell;
        const y = top + layout.plotHeight + 4;
        const t = layout.rotate
          ? svgEl("text", { x, y, transform: `rotate(-90 ${x} ${y})`, "text-anchor": "end", "dominant-baseline": "central", fill: MUTED, "font-size": 11, "font-family": FONT, "xml:space": "preserve" })
          : svgEl("text", { x, y: y + 11, "text-anchor": "middle", fill: MUTED, "font-size": 11, "font-family": FONT, "xml:space": "preserve" });
        t.textContent = label;
        svg.append(t);
      });
    }
    if (titles && options.rowTitle) {
      const y = top + layout.plotHeight / 2;
      const t = svgEl("text", { x: 10, y, transform: `rotate(-90 10 ${y})`, "text-anchor": "middle", fill: INK, "font-size": 11.5, "font-family": FONT });
      t.textContent = options.rowTitle;
      svg.append(t);
    }
    if (titles && options.colTitle) {
      const t = svgEl("text", { x: left + layout.plotWidth / 2, y: layout.legendTop - 6, "text-anchor": "middle", fill: INK, "font-size": 11.5, "font-family": FONT });
      t.textContent = options.colTitle;
      svg.append(t);
    }
    svg.append(svgEl("rect", { x: left - 0.5, y: top - 0.5, width: layout.plotWidth + 1, height: layout.plotHeight + 1, fill: "none", stroke: "#c9d1da", "stroke-width": 1 }));
    if (options.legend !== false) drawLegend(svg, scale, { x: left, y: layout.legendTop, width: layout.legendWidth });
    hoverRect = svgEl("rect", { fill: "none", stroke: "#ffffff", "stroke-width": 1.5, visibility: "hidden", class: "lw-hover" });
    selectRect = svgEl("rect", { fill: "none", stroke: INK, "stroke-width": 2, visibility: "hidden", class: "lw-selection" });
    svg.append(hoverRect, selectRect);
    plot.replaceChildren(svg, canvas, tip.element);
    plot.style.width = `${layout.width}px`;
    plot.style.height = `${layout.height}px`;
    placeRect(selectRect, selected);
    canvas.addEventListener("mousemove", (event) => {
      const col = Math.floor(event.offsetX / layout.cell);
      const row = Math.floor(event.offsetY / layout.cell);
      if (row < 0 || col < 0 || row >= m.rows || col >= m.cols) return hover(null);
      hover({ row, col });
    });
    canvas.addEventListener("mouseleave", () => hover(null));
    canvas.addEventListener("click", (event) => {
      const col = Math.floor(event.offsetX / layout.cell);
      const row = Math.floor(event.offsetY / layout.cell);
      if (row >= 0 && col >= 0 && row < m.rows && col < m.cols) select(row, col);
    });
    canvas.addEventListener("keydown", onKey);
    canvas.addEventListener("blur", () => hover(null));
  }

  function onKey(event) {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      const at = cursor || selected || { row: 0, col: 0 };
      select(at.row, at.col);
      return;
    }
    if (!(event.key in moves)) return;
    event.preventDefault();
    const from = cursor || selected || { row: 0, col: 0 };
    const [dr, dc] = cursor || selected ? moves[event.key] : [0, 0];
    hover({ row: clamp(from.row + dr, m.rows), col: clamp(from.col + dc, m.cols) });
  }

  function placeRect(rect, at) {
    if (!at) {
      rect.setAttribute("visibility", "hidden");
      return;
    }
    rect.setAttribute("x", layout.left + at.col * layout.cell);
    rect.setAttribute("y", layout.top + at.row * layout.cell);
    rect.setAttribute("width", layout.cell);
    rect.setAttribute("height", layout.cell);
    rect.setAttribute("visibility", "visible");
  }

  function cellInfo(at) {
    return { row: at.row, col: at.col, value: m.get(at.row, at.col), rowLabel: labels.rows[at.row], colLabel: labels.cols[at.col] };
  }

  function describe(at) {
    const info = cellInfo(at);
    return [
      `${options.rowTitle || "row"} ${info.rowLabel}`,
      `${options.colTitle || "column"} ${info.colLabel}`,
      `${scale.label || "value"}: ${Number.isFinite(info.value) ? scale.format(info.value) : "—"}`,
    ];
  }

  function hover(at) {
    cursor = at;
    placeRect(hoverRect, at);
    if (at) {
      hoverRect.setAttribute("stroke", scale.ink(m.get(at.row, at.col)));
      tip.show(describe(at), layout.left + (at.col + 1) * layout.cell, layout.top + at.row * layout.cell);
    } else tip.hide();
    options.onHover?.(at ? cellInfo(at) : null);
  }

  function select(row, col, { notify = true } = {}) {
    if (row == null) selected = null;
    else {
      if (!(row >= 0 && row < m.rows && col >= 0 && col < m.cols)) throw new Error(`cell (${row}, ${col}) is outside the ${m.rows}x${m.cols} heatmap`);
      selected = { row, col };
    }
    placeRect(selectRect, selected);
    if (notify) options.onSelect?.(selected ? cellInfo(selected) : null);
  }

  /** The figure as a standalone <svg> element: labels and legend as vector, cells as rects or an image. */
  function figureSvg() {
    const copy = svg.cloneNode(true);
    copy.querySelector(".lw-hover")?.remove();
    if (!selected) copy.querySelector(".lw-selection")?.remove();
    const group = svgEl("g", { class: "lw-cells" });
    const { cell, left, top } = layout;
    if (m.rows * m.cols <= VECTOR_CELLS) {
      for (let r = 0; r < m.rows; r += 1) {
        for (let c = 0; c < m.cols; c += 1) {
          group.append(svgEl("rect", { x: left + c * cell, y: top + r * cell, width: cell, height: cell, fill: scale.color(m.get(r, c)) }));
        }
      }
    } else {
      group.append(svgEl("image", { x: left, y: top, width: layout.plotWidth, height: layout.plotHeight, preserveAspectRatio: "none", href: canvas.toDataURL("image/png"), "image-rendering": "pixelated", style: "image-rendering:pixelated" }));
    }
    copy.insertBefore(group, copy.firstChild);
    return copy;
  }

  function exportJson() {
    const values = Array.from({ length: m.rows }, (_, r) => Array.from({ length: m.cols }, (_, c) => nullable(m.get(r, c))));
    return { view: "heatmap", title: options.title || "", rowLabels: labels.rows, colLabels: labels.cols, values, scale: { kind: scale.kind, scheme: scale.scheme, domain: scale.domain, label: scale.label } };
  }

  /** Redraws for new data, dropping a selection that the new matrix no longer has. */
  function redraw() {
    render();
    if (selected && (selected.row >= m.rows || selected.col >= m.cols)) select(null, null, { notify: false });
  }

  render();
  const accept = (next) => (data = next);
  return viewHandle({ container, view, options, exports, accept, redraw }, {
    select,
    hover,
    get selected() {
      return selected ? cellInfo(selected) : null;
    },
    get scale() {
      return scale;
    },
    /** Where cell (row, col) is drawn, in CSS px relative to the canvas: {x, y, size}. */
    cellBox(row, col) {
      return { x: col * layout.cell, y: row * layout.cell, size: layout.cell };
    },
    get canvas() {
      return canvas;
    },
    figureSvg,
  });
}

function bareFrame(container) {
  container.replaceChildren();
  const body = el("div", { class: "lw-body" });
  container.append(body);
  return { root: body, body, ready: ensureStyles(container.ownerDocument), setNotice() {} };
}

function clamp(i, n) {
  return Math.max(0, Math.min(n - 1, i));
}

function nullable(v) {
  return Number.isFinite(v) ? v : null;
}
