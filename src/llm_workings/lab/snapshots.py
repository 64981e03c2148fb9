"""A model's training snapshots, for the pages that replay training (induction heads, grokking).

    run = snapshot_run(request.app.state.models, "induction-2l", task="induction")
    run.steps                                  # [0, 100, ..., 1500], re-read from snapshots/index.json
    view = VIEWS.get(run, run.entries[-1], ("induction", seed, half), compute)   # compute(model) once

Any catalog model with snapshots works: a bundled one, a finished run (`run.<slug>`), or a run
still training, whose snapshots appear here as the trainer writes them. The index is read again on
every request; what a page computes from one snapshot is cached under the snapshot file's path and
its change time, so scrubbing asks for nothing twice and a rewritten snapshot is computed afresh.

A run still training has no config.json yet: its model config comes from the `lab-run.json` the lab
writes when a training job starts (`{"recipe", "overrides", "model_config"}`).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from .errors import ApiError
from .settings import invalid
from .wire import encode_tensor

SNAPSHOTS, INDEX, CARD, LAB_RUN = "snapshots", "index.json", "card.json", "lab-run.json"
NOT_THIS_TASK = 422
MODEL_ID_CHARS = 200
MAX_STEP = 10**9


def _model_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MODEL_ID_CHARS:
        raise invalid(
            f"must be a model id from GET /api/models (a string of 1 to {MODEL_ID_CHARS} characters); got {value!r:.80}"
        )
    return value


def _step(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STEP:
        raise invalid(f"must be a snapshot's step, an integer from 0 to {MAX_STEP}; got {value!r:.80}")
    return value


ModelId = Annotated[str, BeforeValidator(_model_id)]  # a request's model id, checked for shape (the catalog says if it exists)
Step = Annotated[int, BeforeValidator(_step)]  # a request's snapshot step


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class SnapshotRun:
    model_id: str
    directory: Path
    entries: list[dict[str, Any]]  # the index: {"step", "file", metrics measured when it was taken}, oldest first
    card: dict[str, Any] | None  # None for a run still training
    lab_run: dict[str, Any] | None  # what a lab training job recorded when it started

    @property
    def steps(self) -> list[int]:
        return [e["step"] for e in self.entries]

    def entry(self, step: int) -> dict[str, Any]:
        found = next((e for e in self.entries if e["step"] == step), None)
        if found is None:
            shown = self.steps if len(self.steps) <= 40 else [*self.steps[:20], "...", *self.steps[-20:]]
            raise ApiError(f"{self.model_id} has no snapshot at step {step}; it has {shown}", status=404, field="step")
        return found

    def recipe(self) -> Any:
        """The recipe the run was trained with, its overrides applied (None when it names none we know)."""
        from ..zoo import RECIPES

        source = self.card or self.lab_run or {}
        name = source.get("name") or source.get("recipe")
        if name not in RECIPES:
            return None
        return RECIPES[name].with_overrides({k: str(v) for k, v in (source.get("overrides") or {}).items()})

    def data(self) -> dict[str, Any]:
        """The task's data settings (for modular addition: p, train_fraction, split_seed)."""
        if self.card is not None and isinstance(self.card.get("data"), dict):
            return self.card["data"]
        recipe = self.recipe()
        return dict(recipe.data) if recipe is not None else {}

    def transition(self) -> dict[str, Any] | None:
        """Where the card says the run's transition is; for a run still training, the recipe's rule
        applied to the snapshots' metrics so far (None until the run gets past it)."""
        if self.card is not None:
            return self.card.get("transition")
        from ..zoo.runner import locate_transition

        recipe = self.recipe()
        return locate_transition(self.entries, recipe.transition) if recipe is not None else None

    def model_config(self) -> Any:
        """The TransformerConfig of the run's snapshots."""
        from ..transformer import LoadError, TransformerConfig
        from ..transformer.saving import read_model_config

        try:
            if (self.directory / "config.json").is_file():
                return read_model_config(self.directory)
            return TransformerConfig.from_dict((self.lab_run or {})["model_config"])
        except (LoadError, KeyError, TypeError, ValueError) as e:
            raise ApiError(f"{self.model_id}: its model config cannot be read: {e}", status=409) from None

    def load(self, entry: dict[str, Any]) -> Any:
        """The Transformer at this snapshot, in eval mode."""
        from ..transformer import LoadError, Transformer
        from ..transformer.saving import load_weights_into

        try:
            return load_weights_into(Transformer(self.model_config()), self.directory / SNAPSHOTS / entry["file"]).eval()
        except LoadError as e:
            raise ApiError(f"{self.model_id}: the snapshot at step {entry['step']} cannot be loaded: {e}", status=409) from None


def snapshot_run(cache: Any, model_id: str, task: str, page: str) -> SnapshotRun:
    """The model's snapshots, refused (with what to pick instead) when it trained on another task or has
    none. `page` names the page in the messages."""
    entry = cache.entry(model_id)  # 404 for an unknown id, naming the ones there are
    directory = Path(entry.location)
    card, lab_run = _read_json(directory / CARD), _read_json(directory / LAB_RUN)
    trained_on = (card or {}).get("task") or _recipe_task(lab_run) or entry.task
    if trained_on != task:
        raise ApiError(
            f"{page} replays {task} runs; {model_id!r} was trained on {trained_on!r}. Pick one trained on {task} "
            "(a bundled model, or a run of its recipe)",
            status=NOT_THIS_TASK,
            field="model",
        )
    entries = _read_json(directory / SNAPSHOTS / INDEX)
    if not isinstance(entries, list) or not entries:
        raise ApiError(
            f"{model_id!r} kept no snapshots during training; train it with a snapshot schedule "
            "(e.g. --snapshots=every:100+every:25:300-800)",
            status=NOT_THIS_TASK,
            field="model",
        )
    return SnapshotRun(model_id, directory, sorted(entries, key=lambda e: e["step"]), card, lab_run)


def _recipe_task(lab_run: dict[str, Any] | None) -> str | None:
    from ..zoo import RECIPES

    name = (lab_run or {}).get("recipe")
    return RECIPES[name].task if name in RECIPES else None


class Tensor(BaseModel):
    """A tensor on the wire (lab/wire.py's encode_tensor; static/js/views/tensor.js decodes it)."""

    dtype: str
    shape: list[int]
    data: str = Field(description="base64 of the little-endian values")
    min: float | None = None
    max: float | None = None


def tensor(values: Any, dtype: str = "float32") -> Tensor:
    return Tensor(**encode_tensor(values, dtype))


class ViewCache:
    """What a page computed from each snapshot, least recently used dropped first. One lock per key, so
    two requests for the same snapshot compute it once."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self.computed = 0  # how many views were computed (tests check the cache is used)
        self._views: OrderedDict[Hashable, Any] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, run: SnapshotRun, entry: dict[str, Any], settings: Hashable, compute: Callable[[Any], Any]) -> Any:
        path = run.directory / SNAPSHOTS / entry["file"]
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            raise ApiError(f"{run.model_id}: the snapshot file for step {entry['step']} is missing", status=409) from None
        key = (str(path), stamp, settings)
        with self._lock:
            if key in self._views:
                self._views.move_to_end(key)
                return self._views[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._views:
                    return self._views[key]
            view = compute(run.load(entry))
            with self._lock:
                self.computed += 1
                self._views[key] = view
                self._locks.pop(key, None)
                while len(self._views) > self.size:
                    self._views.popitem(last=False)
        return view
