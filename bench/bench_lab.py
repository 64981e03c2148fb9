"""The lab over HTTP: time to first answer after `llmw lab` starts, and step latency.

    python bench/bench_lab.py [--starts 5] [--requests 300]

Startup runs the real command in a subprocess and polls until the home page answers.
Step latency posts one training step per request on one keep-alive connection, the
way the page does in play mode, for the default XOR run and a 2-16-16-1 spiral run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import time

from llm_workings.lab.server import serve_in_thread

SPIRAL = {"dataset": "spiral", "samples": 400, "hidden": [16, 16], "batch_size": 32, "learning_rate": 0.1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def time_to_first_answer() -> float:
    port = free_port()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llm_workings", "lab", "--no-browser", "--port", str(port)], stdout=subprocess.DEVNULL
    )
    try:
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/")
                status = conn.getresponse().status
                if status != 200:
                    raise RuntimeError(f"the home page answered {status}")
                return time.perf_counter() - start
            except OSError:
                time.sleep(0.01)
            finally:
                conn.close()
            if time.perf_counter() - start > 30:
                raise RuntimeError("the lab did not answer within 30 s")
    finally:
        proc.terminate()
        proc.wait()


def post(conn: http.client.HTTPConnection, path: str, body: dict) -> dict:
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    payload = resp.read()
    if resp.status >= 300:
        raise RuntimeError(payload.decode())
    return json.loads(payload)


def step_latencies(port: int, settings: dict, requests: int, steps: int, history: bool) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port)
    run = post(conn, "/api/backprop/runs", {"settings": settings})
    path = f"/api/backprop/runs/{run['run_id']}/step"
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        post(conn, path, {"steps": steps, "history": history})
        times.append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--starts", type=int, default=5)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()

    starts = [time_to_first_answer() for _ in range(args.starts)]
    print(f"llmw lab: first answer after {statistics.median(starts):.2f} s (median of {args.starts}; target < 2 s)")

    server = serve_in_thread()
    port = server.port
    print(f"{'run':24s} {'request':28s} {'median ms':>10s} {'p90 ms':>8s} {'ms/step':>8s}")
    for name, settings in (("XOR 2-4-1", {}), ("spiral 2-16-16-1", SPIRAL)):
        for steps, history in ((1, False), (10, False), (1, True)):
            t = sorted(step_latencies(port, settings, args.requests, steps, history))
            label = f"{steps} step{'s' if steps > 1 else ''}, {'with' if history else 'no'} history"
            med = statistics.median(t)
            print(f"{name:24s} {label:28s} {med:10.2f} {t[int(0.9 * len(t))]:8.2f} {med / steps:8.2f}")
    server.shutdown()


if __name__ == "__main__":
    main()
