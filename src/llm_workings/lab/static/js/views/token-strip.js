// The token strip: one chip per token with its visible string, position and id; optional colour and label.

import { el, figureExports, frame, MONO, FONT, INK, MUTED, svgEl, textWidth, tooltip, viewHandle, visibleText } from "./common.js";
import { colorScale, drawLegend } from "./scale.js";

/**
 * tokenStrip(element, {tokens: [{text, id}], values?, labels?}, options) -> handle.
 * See README.md in this folder for every option and the handle's methods.
 */
export function tokenStrip(container, data, options = {}) {
  let current = normalize(data);
  let scale = null;
  let selected = options.selected ?? null;
  let chips = [];
  let focusIndex = 0;

  const exports = figureExports(figureSvg, exportJson);
  const view = frame(container, options, { className: "lw-token-strip", exportName: "tokens", title: "Tokens", exports });
  const strip = el("div", { class: "lw-chips", role: "listbox", "aria-label": options.title ?? "Tokens", "aria-orientation": "horizontal" });
  const legendHost = el("div", { class: "lw-legend-host" });
  view.body.append(strip, legendHost);
  const tip = tooltip(view.body);

  function describe(i) {
    const t = current.tokens[i];
    const lines = [`${visibleText(t.text)}`, `position ${position(i)} · id ${t.id}`];
    if (current.labels && current.labels[i] != null && current.labels[i] !== "") lines.push(String(current.labels[i]));
    if (current.values) {
      const v = current.values[i];
      lines.push(`${scale.label || "value"}: ${Number.isFinite(v) ? scale.format(v) : "—"}`);
    }
    return lines;
  }

  function position(i) {
    return (options.startPosition ?? 0) + i;
  }

  function render() {
    scale = current.values ? colorScale(options.scale || {}, current.values) : null;
    chips = current.tokens.map((t, i) => {
      const chip = el("div", {
        class: "lw-chip",
        role: "option",
        tabindex: "-1",
        "data-index": String(i),
        "data-id": String(t.id),
        "aria-selected": "false",
      });
      const text = el("span", { class: "lw-chip-text", text: visibleText(t.text) });
      const meta = el("span", { class: "lw-chip-meta" }, el("span", { class: "lw-pos", text: String(position(i)) }), el("span", { class: "lw-id", text: String(t.id) }));
      chip.append(text, meta);
      if (current.labels && current.labels[i] != null && current.labels[i] !== "") {
        chip.append(el("span", { class: "lw-chip-label", text: String(current.labels[i]) }));
      }
      if (scale) {
        const v = current.values[i];
        chip.dataset.value = String(v);
        if (Number.isFinite(v)) {
          chip.style.background = scale.color(v);
          chip.style.color = scale.ink(v);
          chip.classList.add("lw-coloured");
        }
      }
      chip.setAttribute("aria-label", describe(i).join(", "));
      chip.addEventListener("mouseenter", () => hover(i));
      chip.addEventListener("mouseleave", () => hover(null));
      chip.addEventListener("focus", () => {
        focusIndex = i;
        hover(i);
      });
      chip.addEventListener("blur", () => hover(null));
      chip.addEventListener("click", () => select(i));
      return chip;
    });
    const children = [];
    chips.forEach((chip, i) => {
      children.push(chip);
      if (options.breakAtNewlines !== false && current.tokens[i].text.endsWith("\n")) children.push(el("span", { class: "lw-break", "aria-hidden": "true" }));
    });
    strip.replaceChildren(...children);
    legendHost.replaceChildren();
    if (scale && options.legend !== false) {
      const svg = svgEl("svg", { width: 240, height: 46 });
      legendHost.append(svg);
      drawLegend(svg, scale, { x: 4, y: 2, width: 220 });
    }
    focusIndex = selected != null && selected < chips.length ? selected : 0;
    markSelected();
  }

  function markSelected() {
    chips.forEach((chip, i) => {
      const on = i === selected;
      chip.setAttribute("aria-selected", on ? "true" : "false");
      chip.classList.toggle("lw-selected", on);
      chip.tabIndex = i === focusIndex ? 0 : -1;
    });
  }

  function hover(i) {
    if (i == null) tip.hide();
    else {
      const chip = chips[i];
      tip.show(describe(i), chip.offsetLeft, chip.offsetTop + chip.offsetHeight - 10);
    }
    options.onHover?.(i, i == null ? null : current.tokens[i]);
  }

  function select(i, { notify = true } = {}) {
    if (i != null && (i < 0 || i >= chips.length)) throw new Error(`token index ${i} is out of range: the strip has ${chips.length} tokens`);
    selected = i;
    if (i != null) focusIndex = i;
    markSelected();
    if (notify) options.onSelect?.(i, i == null ? null : current.tokens[i]);
  }

  strip.addEventListener("keydown", (event) => {
    const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
    let next = null;
    if (event.key in moves) next = focusIndex + moves[event.key];
    else if (event.key === "Home") next = 0;
    else if (event.key === "End") next = chips.length - 1;
    else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      select(focusIndex);
      return;
    } else return;
    event.preventDefault();
    next = Math.max(0, Math.min(chips.length - 1, next));
    focusIndex = next;
    markSelected();
    chips[next]?.focus();
  });

  function exportJson() {
    return {
      view: "token-strip",
      tokens: current.tokens.map((t, i) => ({ position: position(i), id: t.id, text: t.text, ...(current.values ? { value: current.values[i] } : {}), ...(current.labels ? { label: current.labels[i] } : {}) })),
      ...(scale ? { scale: { kind: scale.kind, scheme: scale.scheme, domain: scale.domain, label: scale.label } } : {}),
    };
  }

  function figureSvg() {
    const width = Math.max(320, strip.clientWidth || 800);
    const font = `13px ${MONO}`;
    const svg = svgEl("svg", { width, height: 10 });
    let x = 0;
    let y = 0;
    const rowHeight = current.labels ? 56 : 44;
    current.tokens.forEach((t, i) => {
      const text = visibleText(t.text);
      const meta = `${position(i)}  ${t.id}`;
      const w = Math.ceil(Math.max(textWidth(text, font), textWidth(meta, `10px ${FONT}`), current.labels ? textWidth(String(current.labels[i] ?? ""), `10px ${FONT}`) : 0)) + 14;
      if (x > 0 && x + w > width) {
        x = 0;
        y += rowHeight;
      }
      const v = current.values ? current.values[i] : NaN;
      const fill = scale && Number.isFinite(v) ? scale.color(v) : "#ffffff";
      const ink = scale && Number.isFinite(v) ? scale.ink(v) : INK;
      svg.append(svgEl("rect", { x: x + 0.5, y: y + 0.5, width: w - 4, height: rowHeight - 6, rx: 5, fill, stroke: i === selected ? INK : "#c9d1da", "stroke-width": i === selected ? 2 : 1 }));
      const label = svgEl("text", { x: x + 6, y: y + 18, fill: ink, "font-size": 13, "font-family": MONO, "xml:space": "preserve" });
      label.textContent = text;
      const small = svgEl("text", { x: x + 6, y: y + 33, fill: ink === INK ? MUTED : ink, "font-size": 10, "font-family": FONT, "xml:space": "preserve" });
      small.textContent = meta;
      svg.append(label, small);
      if (current.labels && current.labels[i] != null) {
        const extra = svgEl("text", { x: x + 6, y: y + 46, fill: ink, "font-size": 10, "font-family": FONT });
        extra.textContent = String(current.labels[i]);
        svg.append(extra);
      }
      x += w;
      if (options.breakAtNewlines !== false && t.text.endsWith("\n")) {
        x = 0;
        y += rowHeight;
      }
    });
    let height = y + rowHeight + 4;
    if (scale) height += 4 + drawLegend(svg, scale, { x: 6, y: height, width: 220 });
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    return svg;
  }

  function accept(next) {
    current = normalize(next);
    if (selected != null && selected >= current.tokens.length) selected = null;
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
  });
}

function normalize(data) {
  if (!data || !Array.isArray(data.tokens)) throw new Error("tokenStrip needs data.tokens: an array of {text, id}");
  data.tokens.forEach((t, i) => {
    if (typeof t.text !== "string") throw new Error(`token ${i} has no text string`);
  });
  for (const key of ["values", "labels"]) {
    if (data[key] != null && data[key].length !== data.tokens.length) {
      throw new Error(`data.${key} has ${data[key].length} entries for ${data.tokens.length} tokens`);
    }
  }
  return {
    tokens: data.tokens,
    values: data.values ? Array.from(data.values, (v) => (v == null ? NaN : Number(v))) : null,
    labels: data.labels || null,
  };
}
