// Line chart: one or more series over a shared x axis, with hover values.

import { bisector, extent } from "../../vendor/d3/d3-array.js";
import { axisBottom, axisLeft } from "../../vendor/d3/d3-axis.js";
import { format as d3format } from "../../vendor/d3/d3-format.js";
import { scaleLinear, scaleLog } from "../../vendor/d3/d3-scale.js";
import { schemeTableau10 } from "../../vendor/d3/d3-scale-chromatic.js";
import { select as d3select } from "../../vendor/d3/d3-selection.js";
import { figureExports, FONT, frame, INK, MUTED, svgEl, tooltip, viewHandle } from "./common.js";
import { styleAxis } from "./scale.js";

/** lineChart(element, {series: [{name, x?, y}]}, options) -> handle. See README.md. */
export function lineChart(container, data, options = {}) {
  const exports = figureExports(figureSvg, exportJson);
  const view = frame(container, options, { className: "lw-chart lw-line-chart", exportName: "line-chart", exports });
  const tip = tooltip(view.body);
  let series;
  let svg;
  let x;
  let y;
  let margin;
  let rule;
  let marker;
  let dots = [];
  let fmt;
  let xfmt;

  function render() {
    series = normalize(data);
    fmt = d3format(options.format || ".4~g");
    xfmt = d3format(options.xFormat || ".4~g");
    const width = Math.max(240, options.width ?? (container.clientWidth || 520));
    const height = options.height ?? 220;
    const legendHeight = series.length > 1 ? 18 : 0;
    margin = { left: 54, right: 22, top: 8 + legendHeight, bottom: options.xLabel ? 40 : 26 };
    const plotWidth = width - margin.left - margin.right;
    const plotHeight = height - margin.top - margin.bottom;
    const usable = (axisType) => (v) => Number.isFinite(v) && (axisType !== "log" || v > 0);
    const xs = series.flatMap((s) => s.x.filter(usable(options.xType)));
    const ys = series.flatMap((s) => s.y.filter(usable(options.yType)));
    const [x0, x1] = xs.length ? extent(xs) : [0, 1];
    const [y0, y1] = ys.length ? extent(ys) : [0, 1];
    const make = (type) => (type === "log" ? scaleLog() : scaleLinear());
    x = make(options.xType).domain(x0 === x1 ? [x0, x0 + 1] : [x0, x1]).range([0, plotWidth]);
    y = make(options.yType).domain(options.yDomain ?? (y0 === y1 ? [y0 - 1, y1 + 1] : [y0, y1])).range([plotHeight, 0]);
    if (options.yType !== "log" && !options.yDomain) y.nice();
    svg = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}` });
    const plot = svgEl("g", { transform: `translate(${margin.left},${margin.top})` });
    svg.append(plot);
    const gx = svgEl("g", { transform: `translate(0,${plotHeight})` });
    const gy = svgEl("g");
    plot.append(gx, gy);
    d3select(gx).call(axisBottom(x).ticks(Math.max(2, Math.floor(plotWidth / 80)), "~s"));
    d3select(gy).call(axisLeft(y).ticks(Math.max(2, Math.floor(plotHeight / 40)), "~g").tickSize(-plotWidth));
    styleAxis(gx);
    styleAxis(gy);
    for (const line of gy.querySelectorAll(".tick line")) line.setAttribute("stroke", "#e9edf1");
    gy.querySelector(".domain")?.remove();
    for (const band of options.bands || []) {
      const left = x(Math.max(band.from, x.domain()[0]));
      const right = x(Math.min(band.to, x.domain()[1]));
      const shade = svgEl("rect", { class: "lw-band", x: left, y: 0, width: Math.max(1, right - left), height: plotHeight, fill: band.color || "#fde8cf", "data-from": band.from, "data-to": band.to });
      plot.append(shade);
      if (band.label) {
        const t = svgEl("text", { x: (left + right) / 2, y: 11, "text-anchor": "middle", fill: MUTED, "font-size": 10.5, "font-family": FONT, class: "lw-band-label" });
        t.textContent = band.label;
        plot.append(t);
      }
    }
    series.forEach((s, i) => {
      const color = s.color || schemeTableau10[i % 10];
      let d = "";
      let pen = false;
      s.x.forEach((xv, j) => {
        const yv = s.y[j];
        if (!usable(options.xType)(xv) || !usable(options.yType)(yv)) {
          pen = false;
          return;
        }
        d += `${pen ? "L" : "M"}${x(xv).toFixed(2)},${y(yv).toFixed(2)}`;
        pen = true;
      });
      plot.append(svgEl("path", { d, fill: "none", stroke: color, "stroke-width": 1.8, "stroke-linejoin": "round", class: "lw-series", "data-series": i }));
      if (series.length > 1) {
        const key = svgEl("g", { transform: `translate(${margin.left + i * 130},4)` });
        key.append(svgEl("rect", { x: 0, y: 3, width: 12, height: 3, fill: color }));
        const t = svgEl("text", { x: 16, y: 9, fill: MUTED, "font-size": 11, "font-family": FONT });
        t.textContent = s.name;
        key.append(t);
        svg.append(key);
      }
    });
    if (options.xLabel) {
      const t = svgEl("text", { x: plotWidth / 2, y: plotHeight + 34, "text-anchor": "middle", fill: INK, "font-size": 11.5, "font-family": FONT });
      t.textContent = options.xLabel;
      plot.append(t);
    }
    if (options.yLabel) {
      const t = svgEl("text", { x: -plotHeight / 2, y: -42, transform: "rotate(-90)", "text-anchor": "middle", fill: INK, "font-size": 11.5, "font-family": FONT });
      t.textContent = options.yLabel;
      plot.append(t);
    }
    rule = svgEl("line", { y1: 0, y2: plotHeight, stroke: "#9aa5b1", "stroke-dasharray": "3 3", visibility: "hidden", class: "lw-rule" });
    marker = svgEl("line", { y1: 0, y2: plotHeight, stroke: INK, "stroke-width": 1.5, visibility: "hidden", class: "lw-marker" });
    plot.append(rule, marker);
    mark(options.marker ?? null);
    dots = series.map((s, i) => {
      const dot = svgEl("circle", { r: 3.5, fill: s.color || schemeTableau10[i % 10], stroke: "#fff", "stroke-width": 1, visibility: "hidden", class: "lw-dot" });
      plot.append(dot);
      return dot;
    });
    const hit = svgEl("rect", { class: "lw-hit", x: 0, y: 0, width: plotWidth, height: plotHeight, fill: "transparent" });
    hit.addEventListener("mousemove", (event) => {
      const box = hit.getBoundingClientRect();
      hoverAt(x.invert(event.clientX - box.left));
    });
    hit.addEventListener("mouseleave", () => hover(null));
    plot.append(hit);
    view.body.replaceChildren(svg, tip.element);
  }

  /** Hovers the nearest x to `xValue` in the first series that has points. */
  function hoverAt(xValue) {
    const s = series.find((t) => t.x.length) || null;
    if (!s) return hover(null);
    const order = s.x.map((_, j) => j).sort((a, b) => s.x[a] - s.x[b]);
    const k = bisector((j) => s.x[j]).center(order, xValue);
    return hover(order[k]);
  }

  function hover(index) {
    if (index == null) {
      rule.setAttribute("visibility", "hidden");
      dots.forEach((d) => d.setAttribute("visibility", "hidden"));
      tip.hide();
      options.onHover?.(null);
      return;
    }
    const xv = series[0].x[index];
    const px = x(xv);
    rule.setAttribute("x1", px);
    rule.setAttribute("x2", px);
    rule.setAttribute("visibility", "visible");
    const lines = [`${options.xLabel || "x"} ${xfmt(xv)}`];
    series.forEach((s, i) => {
      const j = s.x.indexOf(xv);
      const yv = j >= 0 ? s.y[j] : NaN;
      if (Number.isFinite(yv)) {
        dots[i].setAttribute("cx", px);
        dots[i].setAttribute("cy", y(yv));
        dots[i].setAttribute("visibility", "visible");
      } else dots[i].setAttribute("visibility", "hidden");
      lines.push(`${s.name || options.yLabel || "y"}: ${Number.isFinite(yv) ? fmt(yv) : "—"}`);
    });
    tip.show(lines, margin.left + px, margin.top);
    options.onHover?.({ series: 0, index, x: xv, y: series[0].y[index] });
  }

  /** Moves the marker (a solid vertical line, e.g. the current step) to x = `xValue`, or hides it
   * (null), without redrawing the chart: cheap enough to call on every frame of a scrub. */
  function mark(xValue) {
    options.marker = xValue;
    const shown = xValue != null && Number.isFinite(xValue);
    marker.setAttribute("visibility", shown ? "visible" : "hidden");
    if (!shown) return;
    const px = x(xValue).toFixed(2);
    marker.setAttribute("x1", px);
    marker.setAttribute("x2", px);
    marker.dataset.x = String(xValue);
  }

  /** The chart without its hover rule, dots and hit area. */
  function figureSvg() {
    const copy = svg.cloneNode(true);
    for (const node of copy.querySelectorAll(".lw-rule, .lw-dot, .lw-hit")) node.remove();
    return copy;
  }

  function exportJson() {
    return { view: "line-chart", title: options.title || "", xLabel: options.xLabel || "", yLabel: options.yLabel || "", series: series.map((s) => ({ name: s.name, x: s.x, y: s.y.map((v) => (Number.isFinite(v) ? v : null)) })) };
  }

  render();
  const accept = (next) => (data = next);
  return viewHandle({ container, view, options, exports, accept, redraw: render }, { hover, hoverAt, mark });
}

function normalize(data) {
  if (!data || !Array.isArray(data.series)) throw new Error("lineChart needs data.series: an array of {name, x?, y}");
  return data.series.map((s, i) => {
    if (!s.y || typeof s.y.length !== "number") throw new Error(`series ${i} needs y values`);
    const y = Array.from(s.y, (v) => (v == null ? NaN : Number(v)));
    const x = s.x ? Array.from(s.x, Number) : y.map((_, j) => j);
    if (x.length !== y.length) throw new Error(`series ${i} (${s.name}) has ${x.length} x values for ${y.length} y values`);
    return { name: s.name ?? `series ${i}`, color: s.color, x, y };
  });
}
