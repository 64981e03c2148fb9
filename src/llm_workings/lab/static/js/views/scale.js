// Colour scales and their legend, on d3-scale and d3-scale-chromatic's colour maps.

import { axisBottom } from "../../vendor/d3/d3-axis.js";
import { rgb } from "../../vendor/d3/d3-color.js";
import { format as d3format } from "../../vendor/d3/d3-format.js";
import { scaleDiverging, scaleLinear, scaleSequential } from "../../vendor/d3/d3-scale.js";
import * as chromatic from "../../vendor/d3/d3-scale-chromatic.js";
import { select } from "../../vendor/d3/d3-selection.js";
import { FONT, INK, MUTED, svgEl } from "./common.js";

export const MISSING = "#eef0f3"; // a NaN or absent value
export const MISSING_RGB = [238, 240, 243];
const LEVELS = 1024;

const DEFAULT_SCHEME = { sequential: "Viridis", diverging: "RdBu" };

function interpolator(name, kind, reverse) {
  const fn = chromatic[`interpolate${name}`];
  if (typeof fn !== "function") throw new Error(`unknown colour scheme ${JSON.stringify(name)}: expected a d3-scale-chromatic name such as "Viridis", "Blues" or "RdBu"`);
  // RdBu runs red -> blue; flipped by default so negative is blue and positive red.
  const flip = kind === "diverging" && name === "RdBu" ? !reverse : reverse;
  return flip ? (t) => fn(1 - t) : fn;
}

/** [min, max] of the finite values (one pass, no copies: heatmaps can hold a million). */
function finiteExtent(values) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (Number.isFinite(v)) {
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi] : null;
}

/**
 * A colour scale: `spec` is {kind: "sequential"|"diverging", scheme, domain, reverse, label, format};
 * a missing domain comes from the finite `values` ([min, max]; diverging: symmetric about 0).
 * An already-built scale passes through, so views can share one.
 */
export function colorScale(spec = {}, values = []) {
  if (spec && spec.isColorScale) return spec;
  const kind = spec.kind || "sequential";
  if (kind !== "sequential" && kind !== "diverging") throw new Error(`scale kind must be "sequential" or "diverging", got ${JSON.stringify(kind)}`);
  const scheme = spec.scheme || DEFAULT_SCHEME[kind];
  const interp = interpolator(scheme, kind, !!spec.reverse);
  let domain = spec.domain;
  if (!domain) {
    const seen = finiteExtent(values);
    if (kind === "diverging") {
      const m = seen ? Math.max(Math.abs(seen[0]), Math.abs(seen[1])) : 0;
      domain = [-(m || 1), 0, m || 1];
    } else {
      const [lo, hi] = seen || [0, 1];
      domain = lo === hi ? [lo, lo + 1] : [lo, hi];
    }
  }
  if (kind === "diverging" && domain.length === 2) domain = [domain[0], 0, domain[1]];
  // Where a value falls in [0, 1] along the map (piecewise about the middle when diverging),
  // and the map sampled at LEVELS points: a million heatmap cells cost one lookup each.
  const position = (kind === "diverging" ? scaleDiverging(domain, (t) => t) : scaleSequential(domain, (t) => t)).clamp(true);
  const lut = new Uint8ClampedArray(LEVELS * 3);
  for (let i = 0; i < LEVELS; i += 1) {
    const col = rgb(interp(i / (LEVELS - 1)));
    lut.set([Math.round(col.r), Math.round(col.g), Math.round(col.b)], 3 * i);
  }
  /** Index of v's colour in `lut` (times 3), or -1 for NaN/missing. */
  const lutIndex = (v) => (Number.isFinite(v) ? 3 * Math.round(position(v) * (LEVELS - 1)) : -1);
  const rgba = (v) => {
    const at = lutIndex(v);
    return at < 0 ? [...MISSING_RGB] : [lut[at], lut[at + 1], lut[at + 2]];
  };
  return {
    isColorScale: true,
    kind,
    scheme,
    domain: [...domain],
    label: spec.label || "",
    format: d3format(spec.format || ".3~g"),
    formatSpec: spec.format || ".3~g",
    rgba,
    color: (v) => {
      const [r, g, b] = rgba(v);
      return `rgb(${r}, ${g}, ${b})`;
    },
    /** Black or white, whichever reads better on colour(v). */
    ink: (v) => {
      const [r, g, b] = rgba(v);
      return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? INK : "#ffffff";
    },
    interpolate: interp,
    lut,
    lutIndex,
  };
}

let gradientId = 0;

/** Draws the scale's legend (a colour bar, ticks and label) into an <svg> at (x, y); returns its height. */
export function drawLegend(svg, scale, { x = 0, y = 0, width = 200 } = {}) {
  const g = svgEl("g", { class: "lw-legend", transform: `translate(${x},${y})` });
  svg.append(g);
  const id = `lw-gradient-${++gradientId}`;
  const defs = svgEl("defs");
  const gradient = svgEl("linearGradient", { id, x1: "0", x2: "1", y1: "0", y2: "0" });
  const lo = scale.domain[0];
  const hi = scale.domain[scale.domain.length - 1];
  const position = scaleLinear([lo, hi], [0, width]);
  for (let i = 0; i <= 16; i += 1) {
    const v = lo + ((hi - lo) * i) / 16;
    gradient.append(svgEl("stop", { offset: `${(i / 16) * 100}%`, "stop-color": scale.color(v) }));
  }
  defs.append(gradient);
  g.append(defs);
  let top = 0;
  if (scale.label) {
    const label = svgEl("text", { x: 0, y: 10, fill: MUTED, "font-size": 11, "font-family": FONT });
    label.textContent = scale.label;
    g.append(label);
    top = 16;
  }
  g.append(svgEl("rect", { x: 0, y: top, width, height: 10, fill: `url(#${id})`, stroke: "#c9d1da", "stroke-width": 0.5 }));
  const axis = svgEl("g", { transform: `translate(0,${top + 10})` });
  g.append(axis);
  const ticks = position.ticks(Math.max(2, Math.floor(width / 50)));
  select(axis)
    .call(axisBottom(position).tickValues(ticks).tickSize(4).tickFormat(d3format("~g")))
    .call((a) => a.select(".domain").remove());
  styleAxis(axis);
  return top + 10 + 18;
}

/** Gives a d3 axis's text and lines explicit attributes, so an exported SVG looks the same. */
export function styleAxis(axisGroup) {
  for (const t of axisGroup.querySelectorAll("text")) {
    t.setAttribute("fill", MUTED);
    t.setAttribute("font-size", "10.5");
    t.setAttribute("font-family", FONT);
  }
  for (const line of axisGroup.querySelectorAll("line, path")) line.setAttribute("stroke", "#9aa5b1");
  axisGroup.removeAttribute("font-family");
  axisGroup.removeAttribute("font-size");
}
