"""Run a job's work in a child process, so a Python-heavy loop cannot slow the server down.

A training loop on a worker thread holds the GIL between torch's kernels, and every request the
server answers meanwhile waits for it: on a busy two-core machine, a GET /api/jobs during an
induction-2l run took 26-30 ms (median; 120-260 ms at worst) with the loop on a thread, and 6-12 ms
with it in a child process, where it competes only for the CPU (test_jobs_training.py prints it).

    def run(ctx):                                   # the job, on the manager's worker thread
        return in_process(ctx, "llm_workings.lab.jobs.training:train_recipe", {"recipe": "induction-2l"})

The child is a fresh `python -m llm_workings.lab.jobs.child`, not a fork (a fork of a server with
torch's thread pools running can hang) nor multiprocessing's spawn (which re-runs the parent's main
script and unpickles what it is sent). It is told its target and JSON parameters on stdin, and a
`pause` or `cancel` line later; it answers with JSON lines on stdout (see child.py). A cancel the
child does not act on within `GRACE_SECONDS` kills it; a pause gets `PAUSE_GRACE_SECONDS`, time to
finish a step and write a checkpoint. Both are passed on as asked; the child decides (a training
run asked both, as the manager's shutdown asks, pauses: its checkpoint is kept).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from .manager import JobCancelled, JobContext, JobFailed

GRACE_SECONDS = 0.5  # a cancelled child's time to unwind (a step, a file closing) before it is killed
PAUSE_GRACE_SECONDS = 4.0  # within the manager's shutdown wait (5 s)
POLL_SECONDS = 0.05
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[3])  # the folder holding llm_workings/


def in_process(ctx: JobContext, target: str, params: dict[str, Any]) -> Any:
    """Run `target(child_ctx, **params)` ("package.module:function") in a child; return its result."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_PACKAGE_ROOT, os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen(
        [sys.executable, "-m", "llm_workings.lab.jobs.child"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
    threading.Thread(target=_read_lines, args=(child.stdout, messages), daemon=True).start()
    cancelled_at = paused_at = None
    try:
        _send(child, {"target": target, "params": params})
        while True:
            if ctx.pause_requested and paused_at is None:
                _send(child, {"pause": True})
                paused_at = time.monotonic()
            if ctx.cancelled and cancelled_at is None:
                _send(child, {"cancel": True})
                cancelled_at = time.monotonic()
            grace = GRACE_SECONDS if paused_at is None else PAUSE_GRACE_SECONDS
            if cancelled_at is not None and time.monotonic() - cancelled_at > grace:
                raise JobCancelled("cancelled; the job's process did not stop in time and was killed")
            if paused_at is not None and time.monotonic() - paused_at > PAUSE_GRACE_SECONDS:
                raise JobCancelled("asked to pause; the job's process did not stop in time and was killed")
            try:
                message = messages.get(timeout=POLL_SECONDS)
            except queue.Empty:
                continue
            if message is None:
                child.wait()
                raise JobFailed(f"the job's process ended (exit code {child.returncode}) before it finished")
            if "progress" in message:
                fraction, text, metrics = message["progress"]
                ctx.progress(fraction, text, **metrics)
            elif "done" in message:
                return message["done"]
            elif "cancelled" in message:
                raise JobCancelled("cancelled")
            else:
                raise JobFailed(message["failed"])
    finally:
        try:
            child.wait(timeout=1.0 if cancelled_at is None else 0.1)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        for pipe in (child.stdin, child.stdout):
            pipe.close()


def _send(child: subprocess.Popen[str], message: dict[str, Any]) -> None:
    try:
        child.stdin.write(json.dumps(message) + "\n")
        child.stdin.flush()
    except (BrokenPipeError, ValueError):  # it has already ended; its stdout says how
        pass


def _read_lines(stream: IO[str], messages: queue.Queue[dict[str, Any] | None]) -> None:
    try:
        for line in stream:
            messages.put(json.loads(line))
    except (ValueError, OSError):  # closed by the parent after the end, or a torn line as the child died
        pass
    messages.put(None)
