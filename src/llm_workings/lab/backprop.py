"""The Backprop page's engine side: its settings table, training runs, and their JSON.

A run owns a network, its trainer and its history. Every number the page shows is
taken from here: the step trace, the losses, the heatmaps over the input plane.
"""

from __future__ import annotations

import base64
import math
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data import DATASETS, XOR_LABELS, XOR_POINTS, Dataset, make_dataset
from ..nn import HIDDEN_ACTIVATIONS, LOSSES, MLP, OUTPUT_ACTIVATIONS, REGULARIZATIONS, DivergenceError, Trainer
from ..nn.trainer import StepTrace, TrainerState
from .errors import ApiError
from .settings import Setting, SettingsTable

MAX_STEPS = 20_000  # per run; a replayed URL is bounded by this too
MAX_STEPS_PER_REQUEST = 1_000
MAX_RUNS = 32  # runs kept in memory; the least recently used goes first
CHECKPOINT_EVERY = 100  # stepping back replays from the nearest checkpoint
OUTPUT_RESOLUTION = 48
NEURON_RESOLUTION = 24
CURVE_POINTS = 400
PARAMETER_POINTS = 60

SETTINGS = SettingsTable(
    (
        Setting("dataset", "choice", "xor", "Dataset", "The points the network learns to separate.", DATASETS, group="data"),
        Setting(
            "noise",
            "float",
            0.0,
            "Label noise",
            "Probability that a training or test label is flipped.",
            min=0.0,
            max=0.5,
            group="data",
        ),
        Setting(
            "samples",
            "int",
            200,
            "Samples",
            "How many points to draw (the clean XOR set always has 4).",
            min=4,
            max=2000,
            group="data",
        ),
        Setting(
            "train_ratio",
            "float",
            0.5,
            "Train share",
            "Share of the points used for training; the rest are test points.",
            min=0.1,
            max=0.9,
            group="data",
        ),
        Setting(
            "hidden",
            "int_list",
            [4],
            "Hidden layers",
            "Neurons in each hidden layer.",
            min=1,
            max=16,
            max_length=6,
            group="network",
        ),
        Setting(
            "activation",
            "choice",
            "tanh",
            "Activation",
            "The nonlinearity of every hidden neuron.",
            tuple(HIDDEN_ACTIVATIONS),
            group="network",
        ),
        Setting(
            "output", "choice", "sigmoid", "Output", "The output layer's activation.", tuple(OUTPUT_ACTIVATIONS), group="network"
        ),
        Setting("loss", "choice", "bce", "Loss", "What training minimises.", tuple(LOSSES), group="network"),
        Setting(
            "learning_rate",
            "float",
            0.5,
            "Learning rate",
            "Step size of each update. Changes take effect on the next step.",
            min=1e-5,
            max=100.0,
            log_scale=True,
            live=True,
            group="training",
        ),
        Setting("batch_size", "int", 4, "Batch size", "Examples averaged in each step.", min=1, max=256, group="training"),
        Setting(
            "momentum",
            "float",
            0.0,
            "Momentum",
            "Share of the previous update carried into the next.",
            min=0.0,
            max=0.99,
            group="training",
        ),
        Setting(
            "regularization",
            "choice",
            "none",
            "Regularization",
            "Penalty on the weights' size.",
            REGULARIZATIONS,
            group="training",
        ),
        Setting(
            "reg_rate",
            "float",
            0.0,
            "Regularization rate",
            "Strength of the penalty. Changes take effect on the next step.",
            min=0.0,
            max=10.0,
            live=True,
            group="training",
        ),
        Setting(
            "seed",
            "int",
            1,
            "Seed",
            "Seeds the data, the initial weights and the batch order.",
            min=0,
            max=2**31 - 1,
            group="training",
        ),
    )
)
LIVE = tuple(s.name for s in SETTINGS.settings if s.live)


def schema() -> dict:
    return {
        "settings": SETTINGS.to_json(),
        "live": list(LIVE),
        "losses_for_output": {out: [n for n, f in LOSSES.items() if out in f.outputs] for out in OUTPUT_ACTIVATIONS},
        "limits": {"max_steps": MAX_STEPS, "max_steps_per_request": MAX_STEPS_PER_REQUEST},
        "formulas": {
            "activations": {
                n: {"f": f.formula, "df": f.derivative} for n, f in {**HIDDEN_ACTIVATIONS, **OUTPUT_ACTIVATIONS}.items()
            },
            "losses": {n: {"title": f.title, "f": f.formula} for n, f in LOSSES.items()},
        },
    }


def _encode_map(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> dict:
    """A heatmap as bytes: value ~= lo + (hi - lo) * byte / 255. Rows run top (y max) to bottom."""
    lo = float(values.min()) if lo is None else lo
    hi = float(values.max()) if hi is None else hi
    scale = (hi - lo) or 1.0
    q = np.clip(np.rint((values - lo) / scale * 255.0), 0, 255).astype(np.uint8)
    return {"lo": lo, "hi": hi, "data": base64.b64encode(q.tobytes()).decode("ascii")}


def _grid(domain: tuple[float, float, float, float], n: int) -> np.ndarray:
    x0, x1, y0, y1 = domain
    xs = np.linspace(x0, x1, n)
    ys = np.linspace(y1, y0, n)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


# Natural colour ranges per activation, so a neuron's map keeps its meaning across steps.
_RANGES = {"tanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0), "softmax": (0.0, 1.0)}


def _loss_value(x: float) -> float | None:
    return x if math.isfinite(x) else None


def dataset_for(s: dict[str, Any]) -> Dataset:
    """The dataset that validated page settings describe."""
    return make_dataset(s["dataset"], s["samples"], s["noise"], s["train_ratio"], s["seed"])


def trainer_for(s: dict[str, Any], data: Dataset) -> Trainer:
    """A fresh network and its trainer, as validated page settings describe them."""
    n_out = 2 if s["output"] == "softmax" else 1
    try:
        net = MLP.create([2, *s["hidden"], n_out], s["activation"], s["output"], s["loss"], seed=s["seed"])
    except ValueError as e:
        raise ApiError(str(e), field="loss") from None
    return Trainer(
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

    def heatmaps(self) -> dict:
        domain = self.data.domain
        fine = self.net.forward(_grid(domain, OUTPUT_RESOLUTION)).output
        coarse = self.net.forward(_grid(domain, NEURON_RESOLUTION))
        out_act = self.net.activations[-1]
        prob = fine[:, 1] if out_act == "softmax" else fine[:, 0]
        lo_hi = _RANGES.get(out_act, (None, None))
        neurons = []
        for act_name, a in zip(self.net.activations, coarse.activations[1:]):
            lo, hi = _RANGES.get(act_name, (None, None))
            if act_name in ("relu", "linear"):
                bound = float(np.abs(a).max()) or 1.0
                lo, hi = (0.0, bound) if act_name == "relu" else (-bound, bound)
            neurons.append([_encode_map(a[:, j], lo, hi) for j in range(a.shape[1])])
        return {
            "domain": list(domain),
            "output_resolution": OUTPUT_RESOLUTION,
            "neuron_resolution": NEURON_RESOLUTION,
            "output": _encode_map(prob, *lo_hi),
            "neurons": neurons,
        }

    def state(self, example: int = 0, history: bool = True) -> dict:
        tr = self.trainer
        trace = self.trace()
        stride = max(1, math.ceil(len(self.curves["train"]) / CURVE_POINTS))
        live = {name: getattr(tr, name) for name in LIVE}
        state = {
            "run_id": self.run_id,
            "step": self.step,
            "settings": {**self.settings, **live},
            "changes": self.changes,
            "can_step_back": self.step > 0,
            "network": self.net.to_dict(),
            "trace": _trace_json(trace, example) if trace else None,
            "metrics": {**self.metrics, "reg_loss": tr.reg_loss()},
            "curves": {"steps": list(range(0, self.step + 1, stride)), **{k: v[::stride] for k, v in self.curves.items()}},
            "heatmaps": self.heatmaps(),
            "xor": self._xor() if self.data.is_xor else None,
            "error": self.error,
            "notices": self.notices,
        }
        if history:
            state["parameters"] = self._parameter_history()
        return state

    def _xor(self) -> dict:
        out = self.net.predict(XOR_POINTS)
        prob = out[:, 1] if out.shape[1] > 1 else out[:, 0]
        pred = self.net.classify(XOR_POINTS)
        return {
            "points": XOR_POINTS.tolist(),
            "labels": XOR_LABELS.tolist(),
            "outputs": prob.tolist(),
            "predictions": pred.tolist(),
            "accuracy": float((pred == XOR_LABELS).mean()),
        }

    def _parameter_history(self) -> dict:
        names = []
        for l, (W, b) in enumerate(zip(self.net.weights, self.net.biases), start=1):
            names += [f"W{l}[{i},{j}]" for i in range(W.shape[0]) for j in range(W.shape[1])]
            names += [f"b{l}[{i}]" for i in range(b.shape[0])]
        # Up to 2 x PARAMETER_POINTS are kept; half of them are plenty to draw.
        stride = max(1, math.ceil(len(self.param_steps) / PARAMETER_POINTS))
        values = np.array(self.param_values[::stride])
        return {"steps": self.param_steps[::stride], "names": names, "values": values.T.tolist()}

    def data_json(self) -> dict:
        d = self.data
        return {
            "domain": list(d.domain),
            "train": {"X": d.X_train.tolist(), "y": d.y_train.tolist(), "clean": d.y_train_clean.tolist()},
            "test": {"X": d.X_test.tolist(), "y": d.y_test.tolist(), "clean": d.y_test_clean.tolist()},
        }

    def export(self) -> dict:
        return {
            "network": self.net.to_dict(),
            "python": (
                "import json\n"
                "from llm_workings.nn import MLP\n\n"
                'with open("network.json") as f:\n'
                "    net = MLP.from_dict(json.load(f))\n"
                "print(net.predict([[0.0, 1.0]]))\n"
            ),
        }


def _finite_or_none(values: np.ndarray) -> list:
    """A saturated sigmoid/softmax output makes dL/da infinite (the fused dL/dz stays exact); JSON has no inf, so send null."""
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


def _trace_json(t: StepTrace, example: int) -> dict:
    """A step's trace for one example of its batch, plus the batch-level gradients and updates."""
    row = min(max(example, 0), len(t.batch_indices) - 1)
    return {
        "step": t.step,
        "batch_size": len(t.batch_indices),
        "batch_indices": t.batch_indices.tolist(),
        "batch_X": t.X.tolist(),
        "batch_Y": t.Y.tolist(),
        "example": row,
        "x": t.X[row].tolist(),
        "y": t.Y[row].tolist(),
        "data_loss": t.data_loss,
        "reg_loss": t.reg_loss,
        "loss": t.loss,
        "learning_rate": t.learning_rate,
        "momentum": t.momentum,
        "regularization": t.regularization,
        "reg_rate": t.reg_rate,
        "layers": [
            {
                "W_before": L.W_before.tolist(),
                "b_before": L.b_before.tolist(),
                "z": L.z[row].tolist(),
                "a": L.a[row].tolist(),
                "dL_da": _finite_or_none(L.dL_da[row]),
                "dL_dz": L.dL_dz[row].tolist(),
                "dL_dW": L.dL_dW.tolist(),
                "dR_dW": L.dR_dW.tolist(),
                "dL_db": L.dL_db.tolist(),
                "W_after": L.W_after.tolist(),
                "b_after": L.b_after.tolist(),
            }
            for L in t.layers
        ],
    }


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
