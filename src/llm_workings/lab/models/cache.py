"""Loaded models, kept within a memory budget; the least recently used goes first.

    cache = ModelCache(config)                     # app.state.models
    cache.catalog()                                # every model the picker offers, loaded or not
    with cache.hold("shakespeare-char") as held:   # loads on first use
        logits = held.model(held.model.to_tokens("To be"))
        held.tokenizer.token_text(held.tokenizer.encode("To be"))

Safe under FastAPI's thread pool:
- Evicting only drops the cache's reference. A request that holds a model keeps it alive until
  it is done, so eviction never breaks a request in flight (memory can then run over the budget
  until the holder finishes).
- One lock per model id: a second request for a model being loaded waits for that load instead of
  loading it again. Loads of different models run side by side.
- A model that is bigger than the whole budget is refused with a 409 that says so and names the
  flag (`--model-memory-mb`), rather than evicting everything else and running over anyway.
- Nothing per request is kept here. A page that attaches hooks to a model shared with other tabs
  does it under `held.lock`, so two tabs on one model do not see each other's hooks; tabs on
  different models share nothing.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..config import LabConfig
from ..errors import ApiError
from .catalog import CatalogEntry, cli_entries, find_run, run_entries, zoo_entries
from .loader import load_entry, model_bytes
from .tokenizer import TextTokenizer, text_tokenizer

MB = 2**20
TOO_BIG = STILL_TRAINING = 409
FLOAT32_BYTES = 4  # the loaders build float32 models, whatever the files hold


@dataclass(eq=False)
class LoadedModel:
    entry: CatalogEntry
    model: Any  # a Transformer in eval mode
    tokenizer: TextTokenizer | None
    bytes: int
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)


class ModelCache:
    def __init__(self, config: LabConfig) -> None:
        self.config = config
        self.budget_bytes = int(config.model_memory_mb * MB)
        self.zoo = {e.id: e for e in zoo_entries()}
        self.loads: Counter[str] = Counter()  # loads per id, so tests can see a load happened once
        self._loaded: OrderedDict[str, LoadedModel] = OrderedDict()  # least recently used first
        self._holders: Counter[str] = Counter()
        self._load_locks: dict[str, threading.Lock] = {}
        self._failures: dict[str, tuple[int, str]] = {}  # id -> (files' stamp, load error), shown in the catalog
        self._lock = threading.Lock()  # guards the dicts above; never held while loading

    # -- what there is --------------------------------------------------------------------------
    def catalog(self) -> list[CatalogEntry]:
        """Zoo, then --model arguments, then runs. All but the zoo are read again each time (small files
        only): a finished job's run appears, and a checkpoint fixed on disk is offered again."""
        entries = [*self.zoo.values(), *cli_entries(self.config.models), *run_entries(self.config.runs_dir)]
        return [self._with_failure(e) for e in entries]

    def entry(self, model_id: str) -> CatalogEntry:
        if model_id in self.zoo:
            found = self.zoo[model_id]
        elif model_id.startswith("run."):
            found = find_run(self.config.runs_dir, model_id)
        else:
            found = next((e for e in cli_entries(self.config.models) if e.id == model_id), None)
        if found is None:
            valid = ", ".join(e.id for e in self.catalog()) or "none"
            shown = model_id if len(model_id) <= 80 else model_id[:80] + "..."
            raise ApiError(f"no model {shown!r}; the lab has: {valid}", status=404, field="model")
        return self._with_failure(found)

    def _with_failure(self, entry: CatalogEntry) -> CatalogEntry:
        with self._lock:
            stamp, failure = self._failures.get(entry.id, (None, None))
        if failure is None or stamp != entry.stamp:
            return entry
        return entry.model_copy(update={"available": False, "reason": failure})

    def usage(self) -> dict[str, Any]:
        with self._lock:
            return {
                "budget_bytes": self.budget_bytes,
                "used_bytes": sum(m.bytes for m in self._loaded.values()),
                "loaded": {id: m.bytes for id, m in self._loaded.items()},
                "held": {id: n for id, n in self._holders.items() if n},
            }

    # -- holding a model ------------------------------------------------------------------------
    @contextmanager
    def hold(self, model_id: str) -> Iterator[LoadedModel]:
        """The model, loaded if it is not already; it stays usable until the block ends, evicted or not."""
        loaded = self.get(model_id)
        with self._lock:
            self._holders[model_id] += 1
        try:
            yield loaded
        finally:
            with self._lock:
                self._holders[model_id] -= 1

    def get(self, model_id: str) -> LoadedModel:
        entry = self.entry(model_id)
        if entry.in_training:
            raise ApiError(entry.reason or f"{model_id} is still training", status=STILL_TRAINING, field="model")
        with self._lock:
            load_lock = self._load_locks.setdefault(model_id, threading.Lock())
        with load_lock:
            with self._lock:
                cached = self._loaded.get(model_id)
                if cached is not None and cached.entry.stamp == entry.stamp:
                    self._loaded.move_to_end(model_id)
                    return cached
            loaded = self._load(entry)
            with self._lock:
                self._loaded[model_id] = loaded
                self._loaded.move_to_end(model_id)
                self._evict_over_budget()
            return loaded

    def _load(self, entry: CatalogEntry) -> LoadedModel:
        if entry.parameters is not None:
            self._check_fits(entry, entry.parameters * FLOAT32_BYTES, "needs about")
        try:
            model = load_entry(entry)
        except ApiError as e:
            with self._lock:
                self._failures[entry.id] = (entry.stamp, str(e))
            raise
        size = model_bytes(model)
        self._check_fits(entry, size, "takes")
        with self._lock:
            self._failures.pop(entry.id, None)
            self.loads[entry.id] += 1
        return LoadedModel(
            entry.model_copy(update={"available": True, "reason": None}),
            model,
            text_tokenizer(model.tokenizer, model.cfg.d_vocab),
            size,
        )

    def _check_fits(self, entry: CatalogEntry, size: int, verb: str) -> None:
        if size > self.budget_bytes:
            raise ApiError(
                f"model {entry.id!r} {verb} {size / MB:.0f} MB, more than the lab's whole model memory budget of "
                f"{self.budget_bytes / MB:.0f} MB; restart the lab with a larger --model-memory-mb",
                status=TOO_BIG,
                field="model",
            )

    def _evict_over_budget(self) -> None:
        """Drop least recently used models (never the newest) until the rest fit. Called under _lock."""
        used = sum(m.bytes for m in self._loaded.values())
        while used > self.budget_bytes and len(self._loaded) > 1:
            _, evicted = self._loaded.popitem(last=False)
            used -= evicted.bytes
