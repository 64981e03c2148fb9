// How the Residual stream page prints the engine's numbers (the browser tests read them back at
// this precision): 4 significant digits, the full value in the element's data-value.

export const sig = (x) => (Number.isFinite(x) ? Number(x).toPrecision(4) : "—");

// A probability as a percentage to 3 significant digits; below 0.1% in scientific notation.
export function probability(p) {
  if (!Number.isFinite(p)) return "—";
  return p >= 0.001 ? `${(100 * p).toPrecision(3)}%` : p.toExponential(2);
}
