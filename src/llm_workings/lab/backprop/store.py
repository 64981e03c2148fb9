"""The runs in memory, by id: each tab trains its own, and the least recently used goes first."""

from __future__ import annotations

import threading
from collections import OrderedDict

from ..errors import ApiError
from .run import Run

MAX_RUNS = 32


class RunStore:
    """Runs by id, least recently used evicted first: each tab trains its own."""

    def __init__(self, capacity: int = MAX_RUNS):
        self.capacity = capacity
        self._runs: OrderedDict[str, Run] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, run: Run) -> None:
        with self._lock:
            self._runs[run.run_id] = run
            while len(self._runs) > self.capacity:
                self._runs.popitem(last=False)

    def get(self, run_id: str) -> Run:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise ApiError(
                    f"no run {run_id!r}: it may have expired; reload the page to start it again", status=404, field="run_id"
                )
            self._runs.move_to_end(run_id)
            return run

    def remove(self, run_id: str) -> None:
        with self._lock:
            self._runs.pop(run_id, None)
