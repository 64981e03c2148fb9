// Horizontal bar chart, e.g. the top-k next tokens and their probabilities.

import { max, min } from "../../vendor/d3/d3-array.js";
import { axisBottom } from "../../vendor/d3/d3-axis.js";
import { format as d3format } from "../../vendor/d3/d3-format.js";
import { scaleLinear } from "../../vendor/d3/d3-scale.js";
import { select as d3select } from "../../vendor/d3/d3-selection.js";
import { figureExports, FONT, frame, INK, MONO, MUTED, svgEl, textWidth, tooltip, truncate, viewHandle, visibleText } from "./common.js";
import { styleAxis } from "./scale.js";

const BAR = "#0877bd";
const HIGHLIGHT = "#f59322";

/** barChart(element, {bars: [{label, value, highlight?}]}, options) -> handle. See README.md. */
export function barChart(container, data, options = {}) {
  const exports = figureExports(() => svg, exportJson);
  const view = frame(container, options, { className: "lw-chart lw-bar-chart", exportName: "bar-chart", exports });
  const tip = tooltip(view.body);
  let bars;
  let svg;
  let groups = [];
  let selected = options.selected ?? null;
  let fmt;
  let marginLeft = 0;

  function labelOf(bar) {
    return truncate(options.tokenLabels ? visibleText(String(bar.label)) : String(bar.label), 24);
  }

  function render() {
    bars = normalize(data);
    fmt = d3format(options.format || ".3~g");
    const barHeight = options.barHeight ?? 20;
    const labelFont = `12px ${options.tokenLabels ? MONO : FONT}`;
    const labelWidth = Math.ceil(Math.max(0, ...bars.map((b) => textWidth(labelOf(b), labelFont)))) + 10;
    const valueWidth = Math.ceil(Math.max(0, ...bars.map((b) => textWidth(fmt(b.value), `11px ${FONT}`)))) + 8;
    const width = Math.max(220, options.width ?? (container.clientWidth || 420));
    const margin = { left: labelWidth, right: valueWidth + 4, top: 2, bottom: options.xLabel ? 36 : 22 };
    const plotWidth = Math.max(60, width - margin.left - margin.right);
    marginLeft = margin.left;
    const values = bars.map((b) => b.value);
    const domain = options.domain ?? [Math.min(0, min(values) ?? 0), Math.max(max(values) ?? 1, 1e-12)];
    const x = scaleLinear(domain, [0, plotWidth]).clamp(true);
    const height = margin.top + bars.length * barHeight + margin.bottom;
    svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "list", "aria-label": options.title || "bar chart" });
    const plot = svgEl("g", { transform: `translate(${margin.left},${margin.top})` });
    svg.append(plot);
    groups = bars.map((bar, i) => {
      const y = i * barHeight;
      const g = svgEl("g", { class: "lw-bar", "data-index": i, tabindex: 0, role: "listitem", "aria-label": `${labelOf(bar)}: ${fmt(bar.value)}` });
      const x0 = x(Math.max(domain[0], 0));
      const x1 = x(bar.value);
      g.append(svgEl("rect", { x: -margin.left, y, width: width, height: barHeight, fill: "transparent" }));
      g.append(svgEl("rect", { class: "lw-bar-rect", x: Math.min(x0, x1), y: y + 3, width: Math.max(1, Math.abs(x1 - x0)), height: barHeight - 6, rx: 2, fill: bar.highlight ? HIGHLIGHT : BAR }));
      const label = svgEl("text", { x: -8, y: y + barHeight / 2, "text-anchor": "end", "dominant-baseline": "central", fill: INK, "font-size": 12, "font-family": options.tokenLabels ? MONO : FONT, "font-weight": bar.highlight ? 700 : 400, "xml:space": "preserve" });
      label.textContent = labelOf(bar);
      const value = svgEl("text", { x: Math.max(x0, x1) + 4, y: y + barHeight / 2, "dominant-baseline": "central", fill: MUTED, "font-size": 11, "font-family": FONT });
      value.textContent = fmt(bar.value);
      g.append(label, value);
      g.addEventListener("mouseenter", () => hover(i));
      g.addEventListener("mouseleave", () => hover(null));
      g.addEventListener("focus", () => hover(i));
      g.addEventListener("blur", () => hover(null));
      g.addEventListener("click", () => select(i));
      g.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          select(i);
        }
      });
      plot.append(g);
      return g;
    });
    const axis = svgEl("g", { transform: `translate(0,${bars.length * barHeight})` });
    plot.append(axis);
    d3select(axis).call(axisBottom(x).ticks(Math.max(2, Math.floor(plotWidth / 70)), options.format || undefined).tickSizeOuter(0));
    styleAxis(axis);
    if (options.xLabel) {
      const t = svgEl("text", { x: plotWidth / 2, y: bars.length * barHeight + 32, "text-anchor": "middle", fill: INK, "font-size": 11.5, "font-family": FONT });
      t.textContent = options.xLabel;
      plot.append(t);
    }
    view.body.replaceChildren(svg, tip.element);
    markSelected();
  }

  function markSelected() {
    groups.forEach((g, i) => {
      const rect = g.querySelector(".lw-bar-rect");
      g.setAttribute("aria-current", i === selected ? "true" : "false");
      if (i === selected) {
        rect.setAttribute("stroke", INK);
        rect.setAttribute("stroke-width", 2);
      } else {
        rect.removeAttribute("stroke");
        rect.removeAttribute("stroke-width");
      }
    });
  }

  function hover(i) {
    if (i == null) tip.hide();
    else {
      const rect = groups[i].querySelector(".lw-bar-rect").getBBox();
      tip.show([labelOf(bars[i]), `${options.xLabel || "value"}: ${fmt(bars[i].value)}`], marginLeft + rect.x + rect.width, rect.y + rect.height);
    }
    options.onHover?.(i, i == null ? null : bars[i]);
  }

  function select(i, { notify = true } = {}) {
    if (i != null && (i < 0 || i >= bars.length)) throw new Error(`bar ${i} is out of range: the chart has ${bars.length} bars`);
    selected = i;
    markSelected();
    if (notify) options.onSelect?.(i, i == null ? null : bars[i]);
  }

  function exportJson() {
    return { view: "bar-chart", title: options.title || "", xLabel: options.xLabel || "", bars: bars.map((b) => ({ label: String(b.label), value: b.value, highlight: !!b.highlight })) };
  }

  render();
  const accept = (next) => (data = next);
  return viewHandle({ container, view, options, exports, accept, redraw: render }, {
    select,
    get selected() {
      return selected;
    },
  });
}

function normalize(data) {
  if (!data || !Array.isArray(data.bars)) throw new Error("barChart needs data.bars: an array of {label, value}");
  return data.bars.map((b, i) => {
    if (!Number.isFinite(Number(b.value))) throw new Error(`bar ${i} (${JSON.stringify(b.label)}) needs a finite value`);
    return { ...b, value: Number(b.value) };
  });
}
