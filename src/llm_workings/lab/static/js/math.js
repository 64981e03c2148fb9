// KaTeX, vendored, and the one way the lab writes a number into math.
//
// Each number is wrapped as \htmlData{key=...,value=...}{\text{...}}: the key says which
// field of the trace it is, the value is the full-precision JSON number, and the text is
// what a person reads (four significant digits). Because the number is a single text run,
// a view can later change it in place without typesetting the formula again.

import "../vendor/katex/katex.min.js"; // a UMD bundle: as a module it sets globalThis.katex
import { fmt } from "./format.js";

const katex = globalThis.katex;

// KaTeX's CSS declares its fonts with font-display: block, and a browser fetches a font only
// when text first needs it: brackets and big parentheses would stay invisible for a moment
// whenever a formula scrolls into view. Ask for the faces the lab's formulas use up front.
for (const face of ["1em KaTeX_Main", "bold 1em KaTeX_Main", "italic 1em KaTeX_Math", "1em KaTeX_AMS", "1em KaTeX_Size1", "1em KaTeX_Size2", "1em KaTeX_Size3", "1em KaTeX_Size4"]) {
  document.fonts.load(face).catch(() => {});
}

const OPTIONS = {
  trust: (context) => context.command === "\\htmlData",
  strict: "ignore",
  output: "html",
  throwOnError: true,
};

export function typeset(element, source, display = true) {
  try {
    katex.render(source, element, { ...OPTIONS, displayMode: display });
  } catch (e) {
    console.error(`KaTeX could not typeset ${source.slice(0, 200)}: ${e.message}`);
    element.textContent = source;
  }
}

export function number(key, value) {
  return `\\htmlData{key=${key},value=${String(value)}}{\\text{${fmt(value)}}}`;
}

// Sets a typeset number to a new value, in place.
export function setNumber(element, value) {
  element.dataset.value = String(value);
  if (!element.__text) {
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    element.__text = walker.nextNode();
  }
  const text = fmt(value);
  if (element.__text && element.__text.data !== text) element.__text.data = text;
  else if (!element.__text) element.textContent = text;
}
