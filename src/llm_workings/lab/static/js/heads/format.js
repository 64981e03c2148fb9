// How the page prints the engine's numbers. The browser tests read them back at this precision.

// A head score (attention, 0 to 1) or an entropy (nats) with three decimals; "—" where the prompt
// cannot show the kind (NaN: no query has a target).
export function score(x) {
  return Number.isFinite(x) ? x.toFixed(3) : "—";
}

export const headName = (layer, head) => `L${layer}H${head}`;
