// Numbers and colours shared by every view.
//
// Every number the lab prints goes through `fmt`: four significant digits, a true minus
// sign, and powers of ten written out (1.234×10⁻⁷) rather than as "e-7".

const SUPERSCRIPT = { "0": "⁰", "1": "¹", "2": "²", "3": "³", "4": "⁴", "5": "⁵", "6": "⁶", "7": "⁷", "8": "⁸", "9": "⁹", "-": "⁻" };

export function fmt(value) {
  if (value === null || value === undefined) return "±∞"; // the server sends a non-finite number as null
  if (!Number.isFinite(value)) return value > 0 ? "∞" : value < 0 ? "−∞" : "NaN";
  if (Number.isInteger(value) && Math.abs(value) < 1e4) return String(value).replace("-", "−");
  const [mantissa, exponent] = value.toPrecision(4).split("e");
  let text = mantissa.replace("-", "−");
  if (exponent !== undefined) {
    text += "×10" + [...String(Number(exponent))].map((c) => SUPERSCRIPT[c]).join("");
  }
  return text;
}

// Accuracies, as whole percentages.
export function percent(value) {
  return value === null || value === undefined ? "—" : `${(100 * value).toFixed(0)}%`;
}

// Playground's palette: orange for negative values and class 0, blue for positive and class 1.
export const NEGATIVE = [245, 147, 34];
export const POSITIVE = [8, 119, 189];
export const NEUTRAL = [246, 247, 248];

export function rgb([r, g, b], alpha = 1) {
  return alpha === 1 ? `rgb(${r},${g},${b})` : `rgba(${r},${g},${b},${alpha})`;
}

// t in [-1, 1]: -1 full orange, 0 near white, 1 full blue.
export function diverging(t) {
  const s = Math.max(-1, Math.min(1, t));
  const end = s < 0 ? NEGATIVE : POSITIVE;
  const k = Math.abs(s);
  return [0, 1, 2].map((i) => Math.round(NEUTRAL[i] + (end[i] - NEUTRAL[i]) * k));
}

export const CLASS_COLOURS = [rgb(NEGATIVE), rgb(POSITIVE)];
