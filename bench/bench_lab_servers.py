"""Two lab servers side by side: the Backprop page's step latency and play-mode frame rate on each.

    python bench/bench_lab_servers.py --before OLD_CHECKOUT/src [--rounds 3] [--requests 200] [--seconds 4]

Starts `llmw lab` from the source tree given by --before and from this one, in alternation
(A, B, A, B, ...), so that the machine's load drifts over both alike, and measures each
start: the time to its first answer (the home page), the step latency over one keep-alive
connection (bench_lab.py's client) and the page's play mode in headless chromium
(bench_browser.py's measure). Prints each figure's median over the rounds for both servers,
and the ratio after/before (for latency, above 1 is slower; for fps, below 1).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_browser import CHROMIUM_ARGS, SCENARIOS, measure
from bench_lab import SPIRAL, free_port, step_latencies

HERE_SRC = Path(__file__).resolve().parent.parent / "src"
LATENCY_CASES = [
    ("XOR 2-4-1, 1 step", {}, 1, False),
    ("XOR 2-4-1, 1 step, history", {}, 1, True),
    ("spiral 2-16-16-1, 1 step", SPIRAL, 1, False),
]


def start_lab(src: Path) -> tuple[subprocess.Popen, int, float]:
    """`llmw lab` from `src`, once it answers; and the seconds it took to answer."""
    port = free_port()
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_workings", "lab", "--no-browser", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/")
            conn.getresponse().read()
            return proc, port, time.perf_counter() - start
        except OSError:
            if time.monotonic() > deadline:
                proc.terminate()
                raise RuntimeError(f"the lab from {src} did not answer within 30 s") from None
            time.sleep(0.05)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the src/ folder of the checkout to compare against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200, help="step requests per latency case and round")
    parser.add_argument("--seconds", type=float, default=4.0, help="play time per browser scenario and round")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    sources = {"before": args.before, "after": HERE_SRC}
    results: dict[tuple[str, str], list[float]] = {}
    with sync_playwright() as p:
        chromium = shutil.which("chromium") or "/usr/bin/chromium"
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        for _ in range(args.rounds):
            for which, src in sources.items():
                proc, port, started = start_lab(src)
                results.setdefault(("first answer s: llmw lab start to home page", which), []).append(started)
                try:
                    for name, settings, steps, history in LATENCY_CASES:
                        t = step_latencies(port, settings, args.requests, steps, history)
                        results.setdefault((f"step latency ms: {name}", which), []).append(statistics.median(t))
                    for name, query, math_in_view in SCENARIOS:
                        r = measure(browser, f"http://127.0.0.1:{port}", query, math_in_view, args.seconds, 1)
                        results.setdefault((f"page fps: {name}", which), []).append(r["fps"])
                        results.setdefault((f"page step latency ms: {name}", which), []).append(r["latency_ms"])
                finally:
                    proc.terminate()
                    proc.wait()
        browser.close()
    print(f"medians of {args.rounds} rounds; before = {args.before}, after = this tree")
    print(f"{'figure':58s} {'before':>8s} {'after':>8s} {'after/before':>13s}")
    for figure in dict.fromkeys(name for name, _ in results):
        before = statistics.median(results[(figure, "before")])
        after = statistics.median(results[(figure, "after")])
        print(f"{figure:58s} {before:8.2f} {after:8.2f} {after / before:13.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
