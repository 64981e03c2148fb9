// Decodes the compact tensors lab/wire.py sends: float16, bytes quantised over [min, max],
// exact float32, or whole numbers (int32, uint16) such as token ids.

const DTYPES = { float16: 2, uint8: 1, float32: 4, int32: 4, uint16: 2 };

/**
 * {dtype, shape, data: base64 little-endian, min?, max?} -> {shape, data}: data is a
 * Float32Array, except for int32 and uint16 (Int32Array, Uint16Array).
 */
export function decodeTensor(obj) {
  if (!obj || typeof obj !== "object") throw new Error("decodeTensor needs an encoded tensor object {dtype, shape, data}");
  const { dtype, shape } = obj;
  if (!(dtype in DTYPES)) throw new Error(`unknown tensor dtype ${JSON.stringify(dtype)}: expected one of ${Object.keys(DTYPES).join(", ")}`);
  if (!Array.isArray(shape) || !shape.every((n) => Number.isInteger(n) && n >= 0)) throw new Error("tensor shape must be a list of non-negative integers");
  const count = shape.reduce((a, b) => a * b, 1);
  const bytes = base64Bytes(obj.data);
  if (bytes.length !== count * DTYPES[dtype]) {
    throw new Error(`tensor data has ${bytes.length} bytes; shape [${shape}] of ${dtype} needs ${count * DTYPES[dtype]}`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "int32" || dtype === "uint16") {
    const ints = dtype === "int32" ? new Int32Array(count) : new Uint16Array(count);
    for (let i = 0; i < count; i += 1) ints[i] = dtype === "int32" ? view.getInt32(4 * i, true) : view.getUint16(2 * i, true);
    return { shape: [...shape], data: ints };
  }
  const data = new Float32Array(count);
  if (dtype === "float16") {
    for (let i = 0; i < count; i += 1) data[i] = halfToFloat(view.getUint16(2 * i, true));
  } else if (dtype === "float32") {
    for (let i = 0; i < count; i += 1) data[i] = view.getFloat32(4 * i, true);
  } else {
    const { min, max } = obj;
    if (!Number.isFinite(min) || !Number.isFinite(max)) throw new Error("a uint8 tensor needs finite min and max");
    const step = (max - min) / 255;
    for (let i = 0; i < count; i += 1) data[i] = min + bytes[i] * step;
  }
  return { shape: [...shape], data };
}

/** IEEE 754 binary16 bits -> the number (exact: every half is a float32). */
export function halfToFloat(bits) {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24; // zero and subnormals
  if (exponent === 0x1f) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

function base64Bytes(text) {
  if (typeof text !== "string") throw new Error("tensor data must be a base64 string");
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
