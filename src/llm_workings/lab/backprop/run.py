"""The Backprop page's engine side: one learner's training run, its history, and stepping back exactly.

A run owns a network, its trainer and its history. Every number the page shows is
taken from here (see `wire.py` for how it becomes JSON).
"""

from __future__ import annotations

import math
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...data import XOR_LABELS, XOR_POINTS, Dataset, make_dataset
from ...nn import MLP, DivergenceError, MLPTrainer
from ...nn.trainer import StepTrace, TrainerState
from ..errors import ApiError

MAX_STEPS = 20_000  # per run; a replayed URL is bounded by this too
CHECKPOINT_EVERY = 100  # stepping back replays from the nearest checkpoint
PARAMETER_POINTS = 60  # the parameters' history keeps between this and twice this many points


def _loss_value(x: float) -> float | None:
    return x if math.isfinite(x) else None


def dataset_for(s: dict[str, Any]) -> Dataset:
    """The dataset that validated page settings describe."""
    return make_dataset(s["dataset"], s["samples"], s["noise"], s["train_ratio"], s["seed"])


def trainer_for(s: dict[str, Any], data: Dataset) -> MLPTrainer:
    """A fresh network and its trainer, as validated page settings describe them."""
    n_out = 2 if s["output"] == "softmax" else 1
    try:
        net = MLP.create([2, *s["hidden"], n_out], s["activation"], s["output"], s["loss"], seed=s["seed"])
    except ValueError as e:
        raise ApiError(str(e), field="loss") from None
    return MLPTrainer(
        net,
        data.X_train,
        data.y_train,
        learning_rate=s["learning_rate"],
        batch_size=s["batch_size"],
        momentum=s["momentum"],
        regularization=s["regularization"],
        reg_rate=s["reg_rate"],
        seed=s["seed"],
    )


@dataclass
class Run:
    """One learner's training run: settings, network, trainer, history."""

    settings: dict[str, Any]
    run_id: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        s = self.settings
        self.data = dataset_for(s)
        n_train = len(self.data.X_train)
        self.notices: list[str] = []
        if s["batch_size"] > n_train:
            # Switching to a smaller dataset should not be refused; say what changed instead.
            self.notices.append(
                f"Batch size {s['batch_size']} is more than the {n_train} training points, so each step uses all {n_train}."
            )
            self.settings = {**s, "batch_size": n_train}
        self.trainer = trainer_for(self.settings, self.data)
        self.net = self.trainer.net
        self.changes: list[list] = []  # [step, name, value]: live changes, replayable from a URL
        self.checkpoints: dict[int, TrainerState] = {0: self.trainer.state()}
        self.curves: dict[str, list] = {"train": [], "test": [], "clean": []}
        self.param_steps: list[int] = []
        self.param_values: list[np.ndarray] = []
        self.param_stride = 1
        self.error: dict | None = None
        self.before_last: TrainerState | None = None  # the state one step back, for the trace
        self._record()

    # -- history -------------------------------------------------------------------

    @property
    def step(self) -> int:
        return self.trainer.step_count

    def _clean_set(self) -> tuple[np.ndarray, np.ndarray]:
        if self.data.is_xor:
            return XOR_POINTS, XOR_LABELS
        return self.data.X_test, self.data.y_test_clean

    def _evaluate(self) -> dict[str, float | None]:
        """Loss and accuracy on the training, test and clean sets, at the current weights."""
        metrics: dict[str, float | None] = {}
        for name, (X, y) in (
            ("train", (self.data.X_train, self.data.y_train)),
            ("test", (self.data.X_test, self.data.y_test)),
            ("clean", self._clean_set()),
        ):
            loss, accuracy = self.trainer.evaluate(X, y)
            metrics[f"{name}_loss"] = _loss_value(loss)
            metrics[f"{name}_accuracy"] = accuracy
        return metrics

    def _record(self) -> None:
        """Append this step's losses, and its parameters on the thinned schedule."""
        self.metrics = self._evaluate()
        for name, curve in self.curves.items():
            curve.append(self.metrics[f"{name}_loss"])
        if self.step % self.param_stride == 0:
            self.param_steps.append(self.step)
            self.param_values.append(
                np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(self.net.weights, self.net.biases)])
            )
            if len(self.param_steps) > 2 * PARAMETER_POINTS:
                # Keep every other point and halve the rate: bounded memory, whole history.
                self.param_stride *= 2
                keep = [i for i, st in enumerate(self.param_steps) if st % self.param_stride == 0]
                self.param_steps = [self.param_steps[i] for i in keep]
                self.param_values = [self.param_values[i] for i in keep]
        if self.step % CHECKPOINT_EVERY == 0:
            self.checkpoints[self.step] = self.trainer.state()

    def _apply_changes_at(self, step: int) -> None:
        for at, name, value in self.changes:
            if at == step:
                setattr(self.trainer, name, value)

    def advance(self, n: int) -> None:
        """Take up to n steps; stops early, with `error` set, if training diverges or hits the step limit."""
        self.error = None
        for _ in range(n):
            if self.step >= MAX_STEPS:
                self.error = {
                    "message": f"This run reached the lab's limit of {MAX_STEPS} steps. Reset to start again.",
                    "cause": "step limit",
                    "step": self.step,
                }
                return
            self._apply_changes_at(self.step)
            before = self.trainer.state(copy=False)
            try:
                self.trainer.step()
            except DivergenceError as e:
                self.error = {"message": str(e), "cause": e.cause, "step": e.step}
                return
            self.before_last = before
            self._record()

    def _state_at(self, step: int) -> TrainerState:
        """The trainer's exact state at an earlier step, replayed from the nearest checkpoint."""
        now = self.trainer.state(copy=False)
        base = max(s for s in self.checkpoints if s <= step)
        self.trainer.restore(self.checkpoints[base])
        for s in range(base, step):
            self._apply_changes_at(s)
            self.trainer.step()
        self._apply_changes_at(step)
        at = self.trainer.state()
        self.trainer.restore(now)
        return at

    def back(self, n: int) -> None:
        """Return exactly to step (current - n); the recorded history up to there stays valid."""
        target = max(self.step - n, 0)
        if target > 0:
            # One replay serves both: the state before the last step (for its trace), then that step.
            self.before_last = self._state_at(target - 1)
            self.trainer.restore(self.before_last)
            self.trainer.step()
            self._apply_changes_at(target)
        else:
            self.trainer.restore(self._state_at(0))
        self.checkpoints = {s: c for s, c in self.checkpoints.items() if s <= target}
        self.changes = [c for c in self.changes if c[0] <= target]
        for curve in self.curves.values():
            del curve[target + 1 :]
        keep = [i for i, st in enumerate(self.param_steps) if st <= target]
        self.param_steps = [self.param_steps[i] for i in keep]
        self.param_values = [self.param_values[i] for i in keep]
        self.metrics = self._evaluate()
        self.error = None

    def set_live(self, values: dict[str, Any]) -> None:
        """Change learning rate or regularization rate from the next step on, recording it for replay."""
        for name, value in values.items():
            self.changes = [c for c in self.changes if not (c[0] == self.step and c[1] == name)]
            self.changes.append([self.step, name, value])
            setattr(self.trainer, name, value)

    def replay(self, steps: int, changes: list[list]) -> None:
        """Rebuild a shared run: take `steps` steps, applying each recorded change at its step."""
        self.changes = sorted(changes, key=lambda c: c[0])
        self.advance(steps)
        self._apply_changes_at(self.step)

    # -- what the page draws ---------------------------------------------------------------

    def trace(self) -> StepTrace | None:
        """The trace of the step that produced the current weights, recomputed from the step before."""
        if self.step == 0:
            return None
        now = self.trainer.state(copy=False)
        self.trainer.restore(self.before_last)
        trace = self.trainer.step(trace=True)
        self.trainer.restore(now)
        return trace
