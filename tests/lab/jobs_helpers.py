"""For the job tests: an app with only the job routes, served by a real uvicorn (the TestClient buffers
a whole response, so it cannot show events arriving before the end), and an SSE reader."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from llm_workings.lab.config import LabConfig
from llm_workings.lab.errors import ApiError, describe_validation_error
from llm_workings.lab.jobs import JobManager, router


def jobs_app(runs_dir: Path, max_running: int = 1, max_queued: int = 8, keep_finished: int = 50) -> FastAPI:
    """The state and routes `server.create_app` gives the jobs, with the lab's error bodies."""
    app = FastAPI()
    app.state.config = LabConfig(runs_dir=runs_dir)
    app.state.jobs = JobManager(max_running, max_queued=max_queued, keep_finished=keep_finished)
    app.include_router(router)

    @app.exception_handler(ApiError)
    async def refused(request: Request, e: ApiError) -> JSONResponse:
        return JSONResponse({"error": str(e), "field": e.field}, status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        message, field = describe_validation_error(e.errors())
        return JSONResponse({"error": message, "field": field}, status_code=422)

    return app


@contextlib.contextmanager
def serve(app: FastAPI) -> Iterator[httpx.Client]:
    """Serve `app` on a free port; on leaving, shut the jobs down and check uvicorn stops within 3 s."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        yield client
    finally:  # the server first: a stream still open on the client must end because the server stops
        app.state.jobs.shutdown()
        server.should_exit = True
        thread.join(3)
        client.close()
        assert not thread.is_alive(), "uvicorn did not shut down within 3 s"


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
