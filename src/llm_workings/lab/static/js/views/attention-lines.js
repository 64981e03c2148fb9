// Attention lines: one head's pattern as lines from each query token (the strip above) to the keys it
// attends to (the strip below), the line's weight its attention; hover a query to see where it looks.

import { el, figureExports, FONT, frame, INK, MONO, MUTED, svgEl, truncate, viewHandle, visibleText } from "./common.js";
import { colorScale, drawLegend } from "./scale.js";

const LINES_HEIGHT = 110; // px between the two strips
const MIN_SLOT = 18; // px a token gets at least; past that the view scrolls sideways
const MAX_SLOT = 64;
const FAINTEST = 0.004; // attention below this draws no line

/**
 * attentionLines(element, {tokens: [{text, id}], pattern}, options) -> handle. `pattern` is
 * [query, key] (rows of numbers, or a decoded tensor {shape, data}); see README.md.
 */
export function attentionLines(container, data, options = {}) {
  const exports = figureExports(figureSvg, exportJson);
  const view = frame(container, options, { className: "lw-attention-lines", exportName: "attention-lines", exports });
  const scroller = el("div", { class: "lw-lines-scroll" });
  const readout = el("p", { class: "lw-lines-readout", "aria-live": "polite" });
  const legendHost = el("div", { class: "lw-legend-host" });
  view.body.append(scroller, readout, legendHost);
  let tokens;
  let matrix;
  let n;
  let slot;
  let scale;
  let queryChips = [];
  let keyChips = [];
  let canvas;
  let ctx;
  let selected = options.query ?? null;
  let hovered = null;
  let shown = null; // the query whose lines are drawn
  let lineCount = 0;

  function render() {
    tokens = data.tokens;
    n = tokens.length;
    matrix = toMatrix(data.pattern, n);
    scale = colorScale(options.scale || { scheme: "Blues", domain: [0, 1], label: "attention" }, [0, 1]);
    const available = Math.max(200, (options.width ?? (container.clientWidth || 800)) - 8);
    slot = Math.max(MIN_SLOT, Math.min(MAX_SLOT, Math.floor(available / Math.max(1, n))));
    const width = slot * n;
    const strip = (role) => {
      const row = el("div", { class: `lw-lines-strip lw-lines-${role}`, role: "listbox", "aria-label": role === "query" ? "Query tokens" : "Key tokens" });
      row.style.width = `${width}px`;
      const chips = tokens.map((t, i) => {
        const chip = el("div", { class: "lw-lines-chip", role: "option", "data-index": String(i), "data-id": String(t.id), title: `${visibleText(t.text)} · position ${i} · id ${t.id}` }, el("span", { text: visibleText(t.text) }));
        chip.style.width = `${slot - 2}px`;
        row.append(chip);
        return chip;
      });
      return { row, chips };
    };
    const queries = strip("query");
    const keys = strip("key");
    queryChips = queries.chips;
    keyChips = keys.chips;
    queryChips.forEach((chip, i) => {
      chip.tabIndex = i === (selected ?? n - 1) ? 0 : -1;
      chip.addEventListener("mouseenter", () => hoverQuery(i));
      chip.addEventListener("focus", () => hoverQuery(i));
      chip.addEventListener("click", () => select(i));
      chip.addEventListener("keydown", (e) => onKey(e, i));
    });
    queries.row.addEventListener("mouseleave", () => hoverQuery(null));
    const ratio = window.devicePixelRatio || 1;
    canvas = el("canvas", { class: "lw-lines-canvas", "aria-hidden": "true" });
    canvas.width = Math.max(1, Math.round(width * ratio));
    canvas.height = Math.round(LINES_HEIGHT * ratio);
    canvas.style.width = `${width}px`;
    canvas.style.height = `${LINES_HEIGHT}px`;
    ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    scroller.replaceChildren(el("div", { class: "lw-lines-label", text: options.queryTitle ?? "queries (attending)" }), queries.row, canvas, keys.row, el("div", { class: "lw-lines-label", text: options.keyTitle ?? "keys (attended to)" }));
    legendHost.replaceChildren();
    if (options.legend !== false) {
      const svg = svgEl("svg", { width: 260, height: 46 });
      legendHost.append(svg);
      drawLegend(svg, scale, { x: 4, y: 2, width: 240 });
    }
    if (selected !== null && selected >= n) selected = null;
    show(hovered ?? selected ?? n - 1);
  }

  function toMatrix(pattern, size) {
    const flat = pattern.data ?? Float64Array.from(pattern.flat());
    const cols = pattern.shape ? pattern.shape[1] : size;
    if (flat.length !== size * cols || cols !== size) throw new Error(`attentionLines needs a [${size}, ${size}] pattern for ${size} tokens`);
    return { get: (q, k) => flat[q * cols + k], row: (q) => flat.subarray ? flat.subarray(q * cols, (q + 1) * cols) : flat.slice(q * cols, (q + 1) * cols) };
  }

  // Draw query q's lines and colour the keys by its attention.
  function show(q) {
    if (q === shown) return;
    if (shown !== null && queryChips[shown]) queryChips[shown].classList.remove("lw-active");
    shown = q;
    ctx.clearRect(0, 0, slot * n, LINES_HEIGHT);
    lineCount = 0;
    if (q === null) return;
    queryChips[q].classList.add("lw-active");
    const row = matrix.row(q);
    const x0 = (q + 0.5) * slot;
    for (let k = 0; k < n; k += 1) {
      const a = k <= q ? row[k] : 0;
      const chip = keyChips[k];
      chip.style.background = a > 0 ? scale.color(a) : "";
      chip.style.color = a > 0 ? scale.ink(a) : "";
      chip.dataset.value = String(a);
      if (!(a >= FAINTEST)) continue;
      ctx.strokeStyle = `rgba(8, 119, 189, ${Math.min(1, 0.15 + 0.85 * a)})`;
      ctx.lineWidth = 0.5 + 3.5 * a;
      ctx.beginPath();
      ctx.moveTo(x0, 0);
      ctx.lineTo((k + 0.5) * slot, LINES_HEIGHT);
      ctx.stroke();
      lineCount += 1;
    }
    let best = 0;
    for (let k = 1; k <= q; k += 1) if (row[k] > row[best]) best = k;
    readout.textContent = `Query ${q} ${quote(tokens[q].text)} attends most to key ${best} ${quote(tokens[best].text)}: ${scale.format(row[best])}${q === selected ? " (pinned: click another query to move it)" : ""}`;
  }

  function hoverQuery(q) {
    hovered = q;
    show(q ?? selected ?? n - 1);
    options.onHover?.(q);
  }

  function select(q, { notify = true } = {}) {
    if (q !== null && !(q >= 0 && q < n)) throw new Error(`query ${q} is outside the ${n} tokens`);
    selected = q;
    queryChips.forEach((chip, i) => {
      chip.classList.toggle("lw-selected", i === q);
      chip.setAttribute("aria-selected", String(i === q));
    });
    shown = null; // redraw, so the readout says it is pinned
    show(hovered ?? q ?? n - 1);
    if (notify) options.onSelect?.(q);
  }

  function onKey(event, i) {
    const to = { ArrowLeft: i - 1, ArrowRight: i + 1, Home: 0, End: n - 1 }[event.key];
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      select(i);
    } else if (to !== undefined && to >= 0 && to < n) {
      event.preventDefault();
      queryChips[i].tabIndex = -1;
      queryChips[to].tabIndex = 0;
      queryChips[to].focus();
    }
  }

  function quote(text) {
    return `“${truncate(visibleText(text), 20)}”`;
  }

  /** The figure as SVG: both strips as text, and the lines of the query shown now. */
  function figureSvg() {
    const width = slot * n + 8;
    const top = 20;
    const bottom = top + 22 + LINES_HEIGHT;
    const height = bottom + 40;
    const svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}` });
    const label = (text, x, y, fill, font = MONO) => {
      const t = svgEl("text", { x, y, "text-anchor": "middle", "font-size": 10.5, "font-family": font, fill, "xml:space": "preserve" });
      t.textContent = text;
      svg.append(t);
    };
    const q = shown;
    for (let i = 0; i < n; i += 1) {
      const x = 4 + (i + 0.5) * slot;
      const short = truncate(visibleText(tokens[i].text), Math.max(1, Math.floor(slot / 7)));
      label(short, x, top + 12, i === q ? INK : MUTED);
      const a = q !== null && i <= q ? matrix.get(q, i) : 0;
      if (a > 0) svg.append(svgEl("rect", { x: x - slot / 2 + 1, y: bottom - 2, width: slot - 2, height: 18, fill: scale.color(a) }));
      label(short, x, bottom + 11, a > 0 ? scale.ink(a) : MUTED);
      if (q !== null && a >= FAINTEST) {
        svg.append(svgEl("line", { x1: 4 + (q + 0.5) * slot, y1: top + 20, x2: x, y2: bottom - 2, stroke: "#0877bd", "stroke-opacity": Math.min(1, 0.15 + 0.85 * a), "stroke-width": 0.5 + 3.5 * a }));
      }
    }
    const caption = svgEl("text", { x: 4, y: 12, "font-size": 11, "font-family": FONT, fill: INK });
    caption.textContent = readout.textContent;
    svg.append(caption);
    return svg;
  }

  function exportJson() {
    const rows = Array.from({ length: n }, (_, q) => Array.from({ length: n }, (_, k) => matrix.get(q, k)));
    return { view: "attention-lines", title: options.title || "", tokens: tokens.map((t) => ({ text: t.text, id: t.id })), pattern: rows, query: shown };
  }

  render();
  const accept = (next) => {
    data = next;
    shown = null;
  };
  return viewHandle({ container, view, options, exports, accept, redraw: render }, {
    hoverQuery,
    select,
    get selected() {
      return selected;
    },
    get shown() {
      return shown;
    },
    get queryCount() {
      return n;
    },
    get lineCount() {
      return lineCount;
    },
  });
}
