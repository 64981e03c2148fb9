"""For the job tests: the whole lab served by a real uvicorn (the TestClient buffers a whole response,
so it cannot show events arriving before the end), with the job limits a test asks for, and an SSE reader."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from llm_workings.lab.config import LabConfig
from llm_workings.lab.jobs import JobManager
from llm_workings.lab.server import serve_in_thread


@contextlib.contextmanager
def serve(
    runs_dir: Path, max_running: int = 1, max_queued: int = 8, keep_finished: int = 50
) -> Iterator[tuple[httpx.Client, FastAPI]]:
    """The lab on a free port, its job manager given these limits; on leaving, check that the server stops
    within 1.5 s even with a progress stream open (uvicorn's own backstop would take 2 s)."""
    lab = serve_in_thread(LabConfig(runs_dir=runs_dir, max_jobs=max_running))
    lab.app.state.jobs = JobManager(max_running, max_queued=max_queued, keep_finished=keep_finished)
    client = httpx.Client(base_url=lab.url, timeout=30)
    try:
        yield client, lab.app
    finally:  # the server first: a stream still open on the client must end because the server stops
        start = time.monotonic()
        lab.shutdown()
        took = time.monotonic() - start
        client.close()
        assert not lab.thread.is_alive() and took < 1.5, f"the lab took {took:.1f} s to shut down"


def events(response: httpx.Response) -> Iterator[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) for each Server-Sent Event, as it arrives."""
    name, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def wait_for(predicate, timeout: float = 30.0, every: float = 0.01) -> float:
    """Poll until `predicate()` is true; return the seconds it took."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout, "timed out waiting"
        time.sleep(every)
    return time.monotonic() - start


# -- targets for process.in_process (run in a child, so they live in an importable module) ----------
def failing_target(ctx: Any, message: str) -> None:
    ctx.progress(0.1, "about to fail")
    raise RuntimeError(message)


def deaf_target(ctx: Any) -> None:
    """Ignores cancel: the parent must kill it."""
    ctx.progress(0.1, "sleeping")
    time.sleep(60)


def counting_target(ctx: Any, n: int) -> dict[str, int]:
    for i in range(n):
        ctx.check_cancelled()
        ctx.progress((i + 1) / n, f"{i + 1} of {n}", i=i + 1)
        time.sleep(0.01)
    return {"counted": n}
