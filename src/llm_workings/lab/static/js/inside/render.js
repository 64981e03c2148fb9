// Draws one stage of the walk from the server's items (lab/inside/wire.py): colour strips, rows of
// printed numbers, heatmaps, rotating pairs and tables. Nothing here knows a model family: which
// items a stage has is the server's reading of the model's config.
//
// Every printed number is a `.num` element with its full value in data-value, and either the hook
// it was read from (data-hook, data-index: its index in that hook's cache tensor) or how it was
// derived (data-derived), so the browser tests can look each one up in the engine's cache.

import { fmt } from "../format.js";
import { el } from "../views/common.js";
import { heatmap } from "../views/heatmap.js";
import { rotationPairs } from "../views/rotation-pairs.js";
import { decodeTensor } from "../views/tensor.js";
import { vectorStrip } from "../views/vector-strip.js";

export function num(value, source, index) {
  const span = el("span", { class: "num", "data-value": String(value), text: fmt(value) });
  if (source.hook) span.dataset.hook = source.hook;
  else span.dataset.derived = source.derived;
  span.dataset.index = index.join(",");
  return span;
}

function hookLink(hook, stageId) {
  return el("a", { class: "hook", href: `#snippet-${stageId}`, "data-hook-name": hook, title: `cache["${hook}"]: see the snippet below`, text: hook });
}

function vector(item, host) {
  const values = decodeTensor(item.values).data;
  const box = el("div", { class: "item item-vector", "data-hook": item.hook, "data-prefix": item.index.join(",") });
  const shape = `[${item.axis}=${item.of}]`;
  const figure = el("div");
  box.append(figure);
  host.append(box);
  const notice = item.kept ? `${item.kept.length} of ${item.of} entries, thinned to fit` : "";
  vectorStrip(figure, { values, indices: item.kept ?? undefined }, { title: `${item.label} ${shape}`, axis: item.axis, label: item.var, formatValue: fmt, notice, exportName: item.var });
}

function numbers(item, host) {
  const values = decodeTensor(item.values).data;
  const box = el("div", { class: "item item-numbers" }, el("div", { class: "item-label", text: item.label }));
  const row = el("div", { class: "num-row" });
  item.labels.forEach((label, i) => {
    row.append(el("span", { class: "num-cell" }, el("span", { class: "num-label", text: label }), num(values[i], item, item.indices[i])));
  });
  box.append(row);
  host.append(box);
}

function matrix(item, host, records) {
  const m = decodeTensor(item.values);
  const box = el("div", { class: "item item-matrix", "data-hook": item.hook, "data-prefix": item.index.join(",") });
  const figure = el("div");
  box.append(figure);
  host.append(box);
  const notice = item.kept ? `${item.kept.length} of ${item.col_labels.length} columns, thinned to fit` : "";
  const cols = item.kept ?? item.col_labels.map((_, c) => c);
  heatmap(figure, { values: m, rowLabels: item.row_labels, colLabels: item.col_labels }, { title: item.label, rowTitle: item.row_title, colTitle: item.col_title, scale: { kind: item.hook.endsWith("hook_pattern") ? "sequential" : "diverging", label: item.var }, notice, exportName: item.var, labels: m.shape[1] <= 64 });
  // what the heatmap shows, cell by cell, for the tests (a canvas has no elements to read)
  item.rows.forEach((r, i) => cols.forEach((c, j) => records.push({ hook: item.hook, index: [...item.index, r, c], value: m.data[i * m.shape[1] + j] })));
}

function pairs(item, host) {
  const before = decodeTensor(item.before).data;
  const after = decodeTensor(item.after).data;
  const angles = decodeTensor(item.angles.values).data;
  const box = el("div", { class: "item item-pairs" });
  const figure = el("div");
  box.append(figure);
  // where the same unrotated pair would point at every position of the prompt (drawn, not printed)
  const trail = ([a, b], frequency) =>
    Array.from({ length: item.positions }, (_, k) => [a * Math.cos(k * frequency) - b * Math.sin(k * frequency), b * Math.cos(k * frequency) + a * Math.sin(k * frequency)]);
  const list = item.dims.map((dims, i) => {
    const start = [before[2 * i], before[2 * i + 1]];
    return { label: `dims ${dims[0]}, ${dims[1]}`, before: start, after: [after[2 * i], after[2 * i + 1]], angle: angles[i], trail: trail(start, item.frequencies[i]) };
  });
  rotationPairs(figure, { pairs: list }, { title: item.label, formatValue: fmt, exportName: "rotation" });
  const table = el("table", { class: "num-table" });
  table.append(el("tr", {}, ...["pair", "before", "", "after", "", "angle (rad)"].map((t) => el("th", { text: t }))));
  const [beforeHook, afterHook] = item.hooks;
  item.dims.forEach((dims, i) => {
    const at = (d) => [...item.index, d];
    table.append(
      el(
        "tr",
        {},
        el("td", { text: `${dims[0]}, ${dims[1]}` }),
        el("td", {}, num(before[2 * i], { hook: beforeHook }, at(dims[0]))),
        el("td", {}, num(before[2 * i + 1], { hook: beforeHook }, at(dims[1]))),
        el("td", {}, num(after[2 * i], { hook: afterHook }, at(dims[0]))),
        el("td", {}, num(after[2 * i + 1], { hook: afterHook }, at(dims[1]))),
        el("td", {}, num(angles[i], item.angles, item.angles.indices[i])),
      ),
    );
  });
  box.append(table);
  host.append(box);
}

function table(item, host) {
  const columns = item.columns.map((c) => ({ ...c, data: decodeTensor(c.values).data }));
  const t = el("table", { class: "num-table" });
  t.append(el("tr", {}, el("th", { text: item.row_title }), ...columns.map((c) => el("th", { text: c.label }))));
  item.row_labels.forEach((label, r) => {
    t.append(el("tr", {}, el("td", { class: "token", text: label.replace(/ /g, "·").replace(/\n/g, "↵") }), ...columns.map((c) => el("td", {}, num(c.data[r], c, c.indices[r])))));
  });
  host.append(el("div", { class: "item item-table" }, el("div", { class: "item-label", text: item.label }), t));
}

const DRAW = { vector, numbers, matrix, pairs, table };

// One stage as a panel: title, hook links, notes, its items and its snippet.
export function drawStage(stage, preambleNote, records) {
  const section = el("section", { class: "panel stage", id: `stage-${stage.id}`, "aria-labelledby": `title-${stage.id}` });
  section.append(el("h2", { id: `title-${stage.id}`, text: stage.title }));
  section.append(el("p", { class: "hooks small" }, "Hooks: ", ...stage.hooks.flatMap((h, i) => (i ? [", ", hookLink(h, stage.id)] : [hookLink(h, stage.id)]))));
  for (const note of stage.notes) section.append(el("p", { class: "note", text: note }));
  const items = el("div", { class: "items" });
  for (const item of stage.items) DRAW[item.kind](item, items, records);
  section.append(items);
  const details = el("details", { class: "snippet", id: `snippet-${stage.id}` });
  details.append(el("summary", { text: `Python that reproduces these numbers (${preambleNote})` }), el("pre", {}, el("code", { text: stage.snippet })));
  section.append(details);
  return section;
}
