"""The child side of `process.in_process`: `python -m llm_workings.lab.jobs.child`.

stdin, from the parent: one line `{"target": "package.module:function", "params": {...}}`, then
perhaps `{"pause": true}` or `{"cancel": true}`. End-of-file (the parent died) counts as both, so no
orphan runs on, and a job that can keep its work (training: a checkpoint) keeps it.
stdout, to the parent, one JSON object a line: `{"progress": [fraction, message, metrics]}` any
number of times, then one of `{"done": result}`, `{"cancelled": true}`, `{"failed": "why"}`.
Anything else the work prints goes to stderr, so it cannot corrupt the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import threading
from typing import IO, Any

from .manager import JobCancelled


class ChildContext:
    """A JobContext's face in the child: the same `progress`, `cancelled`, `check_cancelled` and `pause_requested`."""

    def __init__(self, out: IO[str], cancel: threading.Event, pause: threading.Event) -> None:
        self._out, self._cancel, self._pause, self._lock = out, cancel, pause, threading.Lock()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    @property
    def pause_requested(self) -> bool:
        return self._pause.is_set()

    def check_cancelled(self) -> None:
        if self.cancelled:
            raise JobCancelled("cancelled")

    def progress(self, fraction: float, message: str = "", **metrics: Any) -> None:
        self.send({"progress": [fraction, message, metrics]})

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._out.write(json.dumps(message) + "\n")
            self._out.flush()


def _watch_stdin(cancel: threading.Event, pause: threading.Event) -> None:
    for line in sys.stdin:
        message = json.loads(line)
        if message.get("pause"):
            pause.set()
        if message.get("cancel"):
            cancel.set()
            return
    pause.set()  # the parent is gone: keep what can be kept, then stop
    cancel.set()


def main() -> None:
    protocol = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints, even from C, land on stderr
    spec = json.loads(sys.stdin.readline())
    cancel, pause = threading.Event(), threading.Event()
    threading.Thread(target=_watch_stdin, args=(cancel, pause), daemon=True).start()
    ctx = ChildContext(protocol, cancel, pause)
    try:
        module, _, name = spec["target"].partition(":")
        ctx.send({"done": getattr(importlib.import_module(module), name)(ctx, **spec["params"])})
    except JobCancelled:
        ctx.send({"cancelled": True})
    except BaseException as e:  # the parent reports it; here it only has to be named
        ctx.send({"failed": f"{type(e).__name__}: {e}" if str(e) else type(e).__name__})
        if not isinstance(e, ValueError):
            raise  # the traceback, on stderr, for whoever debugs it


if __name__ == "__main__":
    main()
