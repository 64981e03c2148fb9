// How the page prints the engine's numbers. The browser tests read them back at this precision.

// A probability as a percentage with two decimals; below 0.1% in scientific notation, so a
// tiny probability never prints as 0.00%.
export function probability(p) {
  if (!Number.isFinite(p)) return "—";
  return p >= 0.001 ? `${(100 * p).toFixed(2)}%` : p.toExponential(2);
}

export const nats = (x) => `${x.toFixed(3)} nats`;
export const bits = (x) => `${x.toFixed(2)} bits`;
