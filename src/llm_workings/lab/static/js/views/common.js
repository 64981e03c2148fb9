// What every view shares: its stylesheet, visible whitespace, the tooltip, and figure export.
// Nothing here knows about a page; a view passes in the element it draws into.

const STYLESHEET = new URL("../../css/views.css", import.meta.url).href;
export const SVG_NS = "http://www.w3.org/2000/svg";
export const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif';
export const MONO = 'ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono", monospace';
export const INK = "#1f2933";
export const MUTED = "#5f6b7a";

const styles = new WeakMap(); // document -> {link, loaded}: its views.css and the promise it has loaded

/**
 * Links views.css once, so a view works on any page (or notebook) that did not link it. Returns a
 * promise that resolves when the sheet has loaded (at once if it already has), and also if it fails
 * to load, so a view without its styles still exports. Sizes measured before it resolves are not
 * the ones the user sees.
 */
export function ensureStyles(doc = document) {
  const known = styles.get(doc);
  if (known?.link.isConnected) return known.loaded;
  let link = [...doc.querySelectorAll('link[rel="stylesheet"]')].find((l) => l.href === STYLESHEET);
  let loaded = Promise.resolve();
  if (!link?.sheet) {
    link ??= Object.assign(doc.createElement("link"), { rel: "stylesheet", href: STYLESHEET });
    loaded = new Promise((resolve) => {
      link.addEventListener("load", () => resolve(), { once: true });
      link.addEventListener("error", () => resolve(), { once: true });
    });
    if (!link.isConnected) doc.head.append(link);
  }
  styles.set(doc, { link, loaded });
  return loaded;
}

const NAMED = new Map([
  [" ", "·"],
  ["\n", "↵"],
  ["\t", "⇥"],
]);
// Control characters, and characters that draw nothing (format, separators, no-break and
// zero-width spaces): shown by their code point, so two different tokens never look the same.
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]/u;

/** The text with whitespace made visible: `·` space, `↵` newline, `⇥` tab, `⟨U+XXXX⟩` the rest. */
export function visibleText(text) {
  if (text === "") return "∅";
  let out = "";
  for (const ch of text) {
    if (NAMED.has(ch)) out += NAMED.get(ch);
    else if (INVISIBLE.test(ch)) out += `⟨U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, "0")}⟩`;
    else out += ch;
  }
  return out;
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  node.append(...children);
  return node;
}

export function svgEl(tag, attrs = {}) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  return node;
}

/**
 * The frame every view draws in: a header (title, notice, export buttons) and a body.
 * `options` are the view's (title, notice, exportName); `className`, `exportName` and `title` are
 * the view's own class and defaults. The buttons download what `exports` (see `figureExports`) make.
 */
export function frame(container, options, { className, exportName, title: defaultTitle = "", exports }) {
  const title = options.title ?? defaultTitle;
  const name = options.exportName || exportName;
  const notice = options.notice;
  const ready = ensureStyles(container.ownerDocument);
  container.replaceChildren();
  const root = el("figure", { class: `lw-view ${className}` });
  const head = el("figcaption", { class: "lw-head" });
  const titleEl = el("span", { class: "lw-title", text: title || "" });
  const noticeEl = el("span", { class: "lw-notice", role: "status", text: notice || "" });
  noticeEl.hidden = !notice;
  const actions = el("span", { class: "lw-actions" });
  const exporters = { svg: () => exports.exportSvg(), png: () => exports.exportPng(), json: () => jsonBlob(exports.exportJson()) };
  for (const [kind, make] of Object.entries(exporters)) {
    const button = el("button", {
      type: "button",
      class: "lw-export",
      "data-export": kind,
      "aria-label": `Export ${title || name} as ${kind.toUpperCase()}`,
      text: kind.toUpperCase(),
    });
    // a click waits for views.css, so even an early one exports the figure at the sizes the user sees
    button.addEventListener("click", async () => {
      await ready;
      download(await make(), `${name}.${kind}`);
    });
    actions.append(button);
  }
  head.append(titleEl, noticeEl, actions);
  const body = el("div", { class: "lw-body" });
  root.append(head, body);
  container.append(root);
  return {
    root,
    body,
    ready,
    setNotice(text) {
      noticeEl.textContent = text || "";
      noticeEl.hidden = !text;
    },
    setTitle(text) {
      titleEl.textContent = text || "";
    },
  };
}

/**
 * A view's three exports: `exportSvg` serializes the <svg> element that `figureSvg()` builds,
 * `exportPng(pixelRatio = 2)` rasterizes that, and `exportJson` is the view's own.
 */
export function figureExports(figureSvg, exportJson) {
  const exportSvg = () => serializeSvg(figureSvg());
  return { exportSvg, exportPng: (pixelRatio = 2) => svgToPng(exportSvg(), pixelRatio), exportJson };
}

/**
 * The handle every view returns (README.md): `element`, `ready`, `update`, `setNotice`, the exports
 * and `destroy`, with the view's own `members` (`select`, getters, ...) added as they are defined.
 * `exportPng` waits for `ready`; `exportSvg` is synchronous and measures the view as it is now.
 * `update(next, nextOptions)` merges the options, hands `next` to `accept` (which takes the new
 * data), shows the notice and the title if `nextOptions` has them, then calls `redraw`.
 */
export function viewHandle({ container, view, options, exports, accept, redraw }, members = {}) {
  const handle = {
    element: view.root,
    update(next, nextOptions = {}) {
      Object.assign(options, nextOptions);
      accept(next);
      if ("notice" in nextOptions) view.setNotice(nextOptions.notice);
      if ("title" in nextOptions) view.setTitle(nextOptions.title);
      redraw();
    },
    ready: view.ready,
    setNotice: view.setNotice,
    ...exports,
    async exportPng(pixelRatio = 2) {
      await view.ready; // drawn at the sizes the user sees, not those before views.css applied
      return exports.exportPng(pixelRatio);
    },
    destroy() {
      container.replaceChildren();
    },
  };
  return Object.defineProperties(handle, Object.getOwnPropertyDescriptors(members));
}

/** A tooltip inside `host` (position: relative), placed near a point in host coordinates. */
export function tooltip(host) {
  const tip = el("div", { class: "lw-tooltip", role: "tooltip" });
  tip.hidden = true;
  host.append(tip);
  return {
    element: tip,
    show(lines, x, y) {
      tip.replaceChildren(...lines.map((line) => el("div", { text: line })));
      tip.hidden = false;
      const hostWidth = host.clientWidth;
      const left = Math.min(Math.max(0, x + 12), Math.max(0, hostWidth - tip.offsetWidth));
      tip.style.left = `${left}px`;
      tip.style.top = `${y + 14}px`;
    },
    hide() {
      tip.hidden = true;
    },
  };
}

function download(content, filename) {
  const blob = content instanceof Blob ? content : new Blob([content], { type: typeFor(filename) });
  const url = URL.createObjectURL(blob);
  const a = el("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function typeFor(filename) {
  if (filename.endsWith(".svg")) return "image/svg+xml";
  if (filename.endsWith(".json")) return "application/json";
  return "application/octet-stream";
}

/** A standalone SVG document's text for an <svg> element (attributes carry all styling). */
export function serializeSvg(svg) {
  const copy = svg.cloneNode(true);
  copy.setAttribute("xmlns", SVG_NS);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${new XMLSerializer().serializeToString(copy)}`;
}

/** Rasterizes SVG text to a PNG blob at `scale` times its size, on a white background. */
export async function svgToPng(svgText, scale = 2) {
  const url = URL.createObjectURL(new Blob([svgText], { type: "image/svg+xml" }));
  try {
    const image = new Image();
    image.src = url;
    await image.decode();
    const canvas = document.createElement("canvas");
    canvas.width = Math.ceil(image.naturalWidth * scale);
    canvas.height = Math.ceil(image.naturalHeight * scale);
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(image, 0, 0, canvas.width, canvas.height);
    return await new Promise((resolve, reject) =>
      canvas.toBlob((b) => (b ? resolve(b) : reject(new Error("PNG encoding failed"))), "image/png"),
    );
  } finally {
    URL.revokeObjectURL(url);
  }
}

export function jsonBlob(value) {
  return new Blob([JSON.stringify(value, null, 1)], { type: "application/json" });
}

/** Width of `text` in px in a CSS font (for laying out exported SVG text). */
const measureCanvas = typeof document !== "undefined" ? document.createElement("canvas") : null;
export function textWidth(text, font) {
  const ctx = measureCanvas.getContext("2d");
  ctx.font = font;
  return ctx.measureText(text).width;
}

export function truncate(text, max) {
  const chars = [...text];
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : text;
}

/** Plain numbers from a nested array, a typed array, or a decoded tensor ({shape, data}). */
export function asMatrix(values) {
  if (values && values.shape && values.data) {
    if (values.shape.length !== 2) throw new Error(`a matrix needs a 2-d tensor, got shape [${values.shape}]`);
    const [rows, cols] = values.shape;
    return { rows, cols, get: (r, c) => values.data[r * cols + c], flat: values.data };
  }
  if (!Array.isArray(values) || !values.every(Array.isArray)) {
    throw new Error("values must be an array of rows (arrays of numbers) or a decoded tensor {shape, data}");
  }
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  if (values.some((row) => row.length !== cols)) throw new Error("every row of values must have the same length");
  const flat = new Float64Array(rows * cols);
  values.forEach((row, r) => row.forEach((v, c) => (flat[r * cols + c] = v == null ? NaN : v)));
  return { rows, cols, get: (r, c) => flat[r * cols + c], flat };
}
