"""The replay pages (Induction heads form, Grokking) in headless chromium: the frame rate of scrubbing,
and the bytes each snapshot costs on the wire.

    python bench/bench_dynamics.py [--seconds 5]

For each page the lab is opened on the bundled model and left until every snapshot's view is
fetched ahead. Then a requestAnimationFrame loop moves the scrubber one snapshot each frame (back
to the start at the end) for `--seconds`, as a drag does, and the page draws that snapshot: the
charts' step markers, the numbers, and the step's own views (patterns, loss by position, spectrum,
circle). Frames per second are counted in one-second windows; medians and the slowest window are
printed, with the median and 95th percentile frame time. Side by side, the same scrub with the
snapshots *not* fetched ahead (the cache cleared before each step, so each frame waits for its
request): the ratio is what fetching ahead buys.

Bytes per snapshot: the JSON of one /snapshot answer (median over the run's snapshots), and the
series answer divided by the number of snapshots. Chromium runs with --disable-gpu, as in the tests.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
import urllib.request

from llm_workings.lab.server import serve_in_thread

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = [
    ("induction-heads", "induction-2l", "inductionPage", "induction", {"half": 24, "seed": 0}),
    ("grokking", "modadd-113", "grokkingPage", "grokking", {}),
]

SCRUB = """async ([seconds, ahead]) => {
  const page = window[NAME];
  const n = page.series.steps.length;
  const frames = [];
  let i = 0;
  const end = performance.now() + seconds * 1000;
  await new Promise((resolve) => {
    const frame = async (t) => {
      frames.push(t);
      if (t > end) return resolve();
      if (!ahead) page.snapshots.clear();
      i = (i + 1) % n;
      page.scrub.select(i);
      if (!ahead) while (page.pending) await new Promise((r) => setTimeout(r, 0));
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  });
  page.fetchAll();
  return frames;
}"""


def wait(page, expression: str, timeout: float = 600.0):
    end = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {expression}")
        time.sleep(0.1)


def frame_stats(frames: list[float]) -> dict:
    gaps = [b - a for a, b in zip(frames, frames[1:])]
    start = frames[0]
    windows = [
        sum(1 for t in frames if start + k * 1000 <= t < start + (k + 1) * 1000) for k in range(int((frames[-1] - start) // 1000))
    ]
    return {
        "fps": statistics.median(windows) if windows else float("nan"),
        "fps_min": min(windows) if windows else float("nan"),
        "frame_ms": statistics.median(gaps),
        "frame_p95_ms": sorted(gaps)[int(0.95 * (len(gaps) - 1))],
    }


def post(base: str, route: str, body: dict) -> bytes:
    request = urllib.request.Request(base + route, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return answer.read()


def wire_bytes(base: str, api: str, model: str, settings: dict) -> dict:
    series = post(base, f"/api/{api}/series", {"model": model, **settings})
    steps = json.loads(series)["steps"]
    sizes = [len(post(base, f"/api/{api}/snapshot", {"model": model, "step": s, **settings})) for s in steps]
    return {
        "snapshots": len(steps),
        "snapshot_bytes": statistics.median(sizes),
        "series_bytes_per_snapshot": len(series) / len(steps),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    from playwright.sync_api import sync_playwright

    server = serve_in_thread(port=0)
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for path, model, name, api, settings in PAGES:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(f"{server.url}/{path}?model={model}&step=0")
                wait(page, f"document.body.dataset.ready === 'true' && window.{name}.allFetched !== undefined")
                wait(page, f"window.{name}.pending === 0")
                scrub = SCRUB.replace("NAME", repr(name))
                ahead = frame_stats(page.evaluate(scrub, [args.seconds, True]))
                wait(page, f"window.{name}.pending === 0")
                on_demand = frame_stats(page.evaluate(scrub, [args.seconds, False]))
                page.close()
                rows.append((path, ahead, on_demand, wire_bytes(server.url, api, model, settings)))
            browser.close()
    finally:
        server.shutdown()
    print(
        f"{'page':16s} {'fetched ahead: fps (min)':>25s} {'frame ms (p95)':>15s} {'on demand: fps (min)':>21s} {'ratio':>6s} {'snapshots':>9s} {'bytes/snapshot':>14s} {'series bytes/snapshot':>22s}"
    )
    for path, ahead, on_demand, wire in rows:
        print(
            f"{path:16s} {ahead['fps']:17.0f} ({ahead['fps_min']:3.0f}) {ahead['frame_ms']:8.1f} ({ahead['frame_p95_ms']:4.1f}) "
            f"{on_demand['fps']:14.0f} ({on_demand['fps_min']:3.0f}) {ahead['fps'] / on_demand['fps']:6.1f} "
            f"{wire['snapshots']:9d} {wire['snapshot_bytes']:14,.0f} {wire['series_bytes_per_snapshot']:22,.0f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
