// Heatmaps from the server, drawn as small canvases the views scale up.
//
// The server sends each map as bytes: value = lo + (hi - lo) * byte / 255, rows from
// the top of the plane (largest y) down, columns from the smallest x. Colour follows
// the value's sign around the activation's natural centre: 0 for tanh, ReLU and linear,
// 0.5 for sigmoid and softmax outputs (a probability of one half is "undecided").

import { diverging } from "./format.js";

const CENTRES = { sigmoid: 0.5, softmax: 0.5 };

function bytes(base64) {
  const text = atob(base64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

// One RGBA colour per byte value, for this map's range, packed as 32-bit pixels.
const palettes = new Map();

function palette(lo, hi, centre, wash = 0) {
  const key = `${lo}/${hi}/${centre}/${wash}`;
  if (palettes.has(key)) return palettes.get(key);
  const bytes = new Uint8ClampedArray(256 * 4);
  for (let b = 0; b < 256; b++) {
    const v = lo + ((hi - lo) * b) / 255;
    let t = 0;
    if (v > centre && hi > centre) t = (v - centre) / (hi - centre);
    else if (v < centre && lo < centre) t = -(centre - v) / (centre - lo);
    const rgb = diverging(t).map((c) => Math.round(c + (255 - c) * wash));
    bytes.set([...rgb, 255], b * 4);
  }
  const table = new Uint32Array(bytes.buffer);
  if (palettes.size > 256) palettes.clear();
  palettes.set(key, table);
  return table;
}

function paint(pixels, offset, stride, map, resolution, activation, wash = 0) {
  const data = bytes(map.data);
  const colours = palette(map.lo, map.hi, CENTRES[activation] ?? 0, wash);
  for (let row = 0; row < resolution; row++) {
    for (let col = 0; col < resolution; col++) pixels[offset + row * stride + col] = colours[data[row * resolution + col]];
  }
}

function sized(canvas, width, height) {
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  return canvas.getContext("2d");
}

// An input feature over the plane: x1 grows left to right, x2 bottom to top.
export function inputCanvas(domain, axis, resolution = 24) {
  const [x0, x1, y0, y1] = domain;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = resolution;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(resolution, resolution);
  const bound = axis === 0 ? Math.max(Math.abs(x0), Math.abs(x1)) : Math.max(Math.abs(y0), Math.abs(y1));
  for (let row = 0; row < resolution; row++) {
    for (let col = 0; col < resolution; col++) {
      const v = axis === 0 ? x0 + ((x1 - x0) * col) / (resolution - 1) : y1 - ((y1 - y0) * row) / (resolution - 1);
      image.data.set([...diverging(v / bound), 255], (row * resolution + col) * 4);
    }
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

// The maps of the latest state, decoded into two reused canvases: the output map, and an
// atlas with one row of neuron maps per layer (a single image upload, however many neurons).
const output = document.createElement("canvas");
const atlas = document.createElement("canvas");
const inputs = new Map();
let decoded = null;

export function decodedMaps(state) {
  if (decoded?.state === state) return decoded.maps;
  const h = state.heatmaps;
  const acts = state.network.activations;
  const res = h.neuron_resolution;
  const outCtx = sized(output, h.output_resolution, h.output_resolution);
  const outImage = outCtx.createImageData(h.output_resolution, h.output_resolution);
  // The output map is a background for the data points: drawn a third of the way to white.
  paint(new Uint32Array(outImage.data.buffer), 0, h.output_resolution, h.output, h.output_resolution, acts[acts.length - 1], 0.35);
  outCtx.putImageData(outImage, 0, 0);
  const columns = Math.max(...h.neurons.map((layer) => layer.length));
  const atlasCtx = sized(atlas, columns * res, h.neurons.length * res);
  const image = atlasCtx.createImageData(columns * res, h.neurons.length * res);
  const pixels = new Uint32Array(image.data.buffer);
  h.neurons.forEach((layer, l) => layer.forEach((m, u) => paint(pixels, l * res * columns * res + u * res, columns * res, m, res, acts[l])));
  atlasCtx.putImageData(image, 0, 0);
  const key = `${h.domain}/${res}`;
  if (!inputs.has(key)) inputs.set(key, [0, 1].map((axis) => inputCanvas(h.domain, axis, res)));
  const maps = {
    output,
    inputs: inputs.get(key),
    atlas,
    cell: (layer, unit) => [unit * res, layer * res, res, res],
  };
  decoded = { state, maps };
  return maps;
}
