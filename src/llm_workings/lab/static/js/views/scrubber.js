// Scrubber: a slider over a list of steps (a run's snapshots), with step back, play and step forward.
// A control, not a figure: it draws no header and exports nothing. See README.md.

import { el, ensureStyles } from "./common.js";

/** scrubber(element, {steps}, options) -> handle. See README.md. */
export function scrubber(container, data, options = {}) {
  ensureStyles(container.ownerDocument);
  let steps = checkSteps(data);
  let index = clamp(options.index ?? 0);
  let timer = null;

  const range = el("input", { type: "range", class: "lw-scrub-range", min: 0, step: 1, "aria-label": `${options.label || "step"} (snapshot)` });
  const back = el("button", { type: "button", "data-scrub": "back", title: "Previous snapshot" }, "◀");
  const play = el("button", { type: "button", "data-scrub": "play", title: "Play through the snapshots" }, "▶ Play");
  const forward = el("button", { type: "button", "data-scrub": "forward", title: "Next snapshot" }, "▶");
  const readout = el("span", { class: "lw-scrub-readout num", "aria-live": "polite" });
  const track = el("div", { class: "lw-scrub-track" });
  const bands = el("div", { class: "lw-scrub-bands", "aria-hidden": "true" });
  track.append(bands, range);
  const root = el("div", { class: "lw-view lw-scrubber" }, el("div", { class: "lw-scrub-buttons" }, back, play, forward), track, readout);
  container.replaceChildren(root);

  range.addEventListener("input", () => select(Number(range.value)));
  back.addEventListener("click", () => select(index - 1));
  forward.addEventListener("click", () => select(index + 1));
  play.addEventListener("click", () => (timer ? pause() : start()));

  function clamp(i) {
    return Math.max(0, Math.min(steps.length - 1, Math.round(Number(i) || 0)));
  }

  function draw() {
    range.max = String(Math.max(0, steps.length - 1));
    range.value = String(index);
    const step = steps[index];
    readout.dataset.step = String(step);
    readout.textContent = `${options.label || "step"} ${step} · ${index + 1} of ${steps.length}`;
    back.disabled = index === 0;
    forward.disabled = index === steps.length - 1;
    play.textContent = timer ? "❚❚ Pause" : "▶ Play";
  }

  function drawBands() {
    const last = Math.max(1, steps.length - 1);
    const at = (step) => {
      // the band's ends as positions on the slider, which moves over indices, not steps
      const i = steps.findIndex((s) => s >= step);
      return (i < 0 ? last : i) / last;
    };
    bands.replaceChildren(
      ...(options.bands || []).map((band) =>
        el("span", {
          class: "lw-scrub-band",
          title: band.label || "",
          "data-from": band.from,
          "data-to": band.to,
          style: `left:${(at(band.from) * 100).toFixed(2)}%;width:${(Math.max(0.01, at(band.to) - at(band.from)) * 100).toFixed(2)}%`,
        }),
      ),
    );
  }

  function select(i, { notify = true } = {}) {
    const next = clamp(i);
    const changed = next !== index;
    index = next;
    draw();
    if (notify && changed) options.onChange?.(index, steps[index]);
    return index;
  }

  function start() {
    if (index === steps.length - 1) select(0);
    timer = setInterval(() => {
      if (index >= steps.length - 1) return pause();
      select(index + 1);
    }, options.frameMs ?? 150);
    draw();
  }

  function pause() {
    clearInterval(timer);
    timer = null;
    draw();
  }

  drawBands();
  draw();
  return {
    get selected() {
      return index;
    },
    get playing() {
      return timer !== null;
    },
    select,
    play: start,
    pause,
    update(next, nextOptions = {}) {
      steps = checkSteps(next);
      Object.assign(options, nextOptions);
      index = clamp(nextOptions.index ?? index);
      drawBands();
      draw();
    },
    destroy() {
      pause();
      container.replaceChildren();
    },
  };
}

function checkSteps(data) {
  if (!data || !Array.isArray(data.steps) || !data.steps.length) throw new Error("scrubber needs data.steps: a non-empty array of steps");
  return data.steps.map(Number);
}
