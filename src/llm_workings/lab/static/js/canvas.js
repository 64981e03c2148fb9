// Canvas sizing for sharp drawing on any screen: the backing store follows the CSS size
// times devicePixelRatio, and drawing happens in CSS pixels.

export function prepare(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  const w = Math.round(width * ratio);
  const h = Math.round(height * ratio);
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
    canvas.style.width = `${width}px`;
    canvas.style.height = `${height}px`;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  return ctx;
}

// Tracks an element's content width without reading layout in the animation loop.
export function watchWidth(element, onChange) {
  const box = { width: element.clientWidth };
  new ResizeObserver((entries) => {
    const width = Math.floor(entries[0].contentRect.width);
    if (width !== box.width) {
      box.width = width;
      onChange?.(width);
    }
  }).observe(element);
  return box;
}
