"""A small, thread-safe least-recently-used cache that pages keep what is costly to build in: a
probe's direction, an SAE's activations over a corpus, the logits the sampling panel reshapes.

    VECTORS = Lru(16)
    vector = VECTORS.get(key, lambda: build_it())   # built once per key, the oldest dropped past 16

Two requests that miss the same key at once may both build it; the last one kept wins. That costs
time, never a wrong answer, and keeps the lock out of the (long) build.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = build()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value
