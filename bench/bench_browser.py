"""The Backprop page in play mode, in headless chromium: frame rate and step latency as the page sees them.

    python bench/bench_browser.py [--seconds 5] [--speed 1]

For each scenario the page is opened on a fresh lab server, play is pressed, and for
`--seconds` the page's own counters are sampled: frames per second of its
requestAnimationFrame loop (window.__lab.fps(), over the last second, sampled twice a
second) and the latency of each step request (window.__lab.latencies). Medians are printed.
The first second of play is a warm-up and is left out.

Chromium runs with --disable-gpu, as in the tests, so canvases and compositing are done in
software: a machine with a GPU has more headroom than these figures show.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time

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
SCENARIOS = [
    ("xor 2-4-1 (default)", "", False),
    ("spiral 2-16-16-1", "?dataset=spiral&samples=400&hidden=16,16&batch_size=32&learning_rate=0.1", False),
    ("xor 2-4-1, math in view", "", True),
]


def wait(page, expression: str, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while not page.evaluate(expression):
        if time.monotonic() > end:
            raise RuntimeError(f"timed out waiting for {expression}")
        time.sleep(0.05)


def measure(browser, base: str, query: str, math_in_view: bool, seconds: float, speed: int) -> dict:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    try:
        page.goto(f"{base}/backprop{query}")
        wait(page, "!!(window.__lab && window.__lab.ready) && !window.__lab.busy")
        page.select_option("#speed", str(speed))
        if math_in_view:
            page.click("#forward")  # typeset the step once, then keep its numbers on screen
            wait(page, "!window.__lab.busy")
            page.evaluate("document.querySelector('.calc-backward').scrollIntoView()")
        page.click("#play")
        time.sleep(1.0)
        requests_before = len(page.evaluate("window.__lab.latencies"))
        step_before = page.evaluate("window.__lab.state.step")
        frames_before = page.evaluate("window.__lab.frames")
        start = time.monotonic()
        fps = []
        while time.monotonic() - start < seconds:
            time.sleep(0.5)
            fps.append(page.evaluate("window.__lab.fps()"))
        elapsed = time.monotonic() - start
        frames = page.evaluate("window.__lab.frames") - frames_before
        steps = page.evaluate("window.__lab.state.step") - step_before
        latencies = page.evaluate("window.__lab.latencies")[requests_before:]
        page.click("#play")
        return {
            "fps": statistics.median(fps),
            "fps_min": min(fps),
            "frames_per_s": frames / elapsed,
            "latency_ms": statistics.median(latencies) if latencies else float("nan"),
            "requests_per_s": len(latencies) / elapsed,
            "steps_per_s": steps / elapsed,
        }
    finally:
        page.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="play time measured per scenario (default 5)")
    parser.add_argument("--speed", type=int, default=1, choices=[1, 2, 5, 10, 25, 100], help="steps per frame (default 1)")
    args = parser.parse_args()

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("bench_browser: needs the playwright package (pip install -e '.[test]')", file=sys.stderr)
        return 1
    server = serve_in_thread(port=0)
    print(
        f"Backprop page, play mode, {args.seconds:g} s per scenario, {args.speed} step(s) per request, headless chromium --disable-gpu"
    )
    print(
        f"{'scenario':28s} {'median fps':>10s} {'min fps':>8s} {'frames/s':>9s} {'median step latency':>20s} {'requests/s':>11s} {'steps/s':>8s}"
    )
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for name, query, math_in_view in SCENARIOS:
                r = measure(browser, server.url, query, math_in_view, args.seconds, args.speed)
                print(
                    f"{name:28s} {r['fps']:10.1f} {r['fps_min']:8.1f} {r['frames_per_s']:9.1f} {r['latency_ms']:17.1f} ms "
                    f"{r['requests_per_s']:11.1f} {r['steps_per_s']:8.1f}",
                    flush=True,
                )
            browser.close()
    finally:
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
