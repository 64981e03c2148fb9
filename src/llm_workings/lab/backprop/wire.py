"""The Backprop page's wire format: a run's state as the page draws it, as typed response models.

Numbers go out as the engine computed them (floats survive JSON exactly); heatmaps over
the input plane go as bytes with their range; a value JSON cannot hold (an infinite
dL/da at a saturated output) goes as null.
"""

from __future__ import annotations

import base64
import math

import numpy as np
from pydantic import BaseModel

from ...data import XOR_LABELS, XOR_POINTS
from ...nn.trainer import StepTrace
from .run import PARAMETER_POINTS, Run
from .settings import LIVE, Settings

OUTPUT_RESOLUTION = 48
NEURON_RESOLUTION = 24
CURVE_POINTS = 400

Matrix = list[list[float]]


class Network(BaseModel):
    """The network as `MLP.to_dict` writes it, which `MLP.from_dict` reads back."""

    format: str
    sizes: list[int]
    activations: list[str]
    loss: str
    weights: list[Matrix]
    biases: list[list[float]]


class LayerTrace(BaseModel):
    W_before: Matrix
    b_before: list[float]
    z: list[float]  # this layer's pre-activations for the traced example
    a: list[float]
    dL_da: list[float | None]
    dL_dz: list[float]
    dL_dW: Matrix  # batch-level, like everything below
    dR_dW: Matrix
    dL_db: list[float]
    W_after: Matrix
    b_after: list[float]


class Trace(BaseModel):
    """One step, followed for one example of its batch, plus the batch-level gradients and updates."""

    step: int
    batch_size: int
    batch_indices: list[int]
    batch_X: Matrix
    batch_Y: Matrix
    example: int
    x: list[float]
    y: list[float]
    data_loss: float
    reg_loss: float
    loss: float
    learning_rate: float
    momentum: float
    regularization: str
    reg_rate: float
    layers: list[LayerTrace]


class Heatmap(BaseModel):
    """A map as bytes: value ~= lo + (hi - lo) * byte / 255, rows from the top (y max) down."""

    lo: float
    hi: float
    data: str  # base64 of the uint8 grid


class Heatmaps(BaseModel):
    domain: list[float]
    output_resolution: int
    neuron_resolution: int
    output: Heatmap
    neurons: list[list[Heatmap]]  # [layer][neuron]


class Metrics(BaseModel):
    train_loss: float | None
    train_accuracy: float
    test_loss: float | None
    test_accuracy: float
    clean_loss: float | None
    clean_accuracy: float
    reg_loss: float


class Curves(BaseModel):
    steps: list[int]
    train: list[float | None]
    test: list[float | None]
    clean: list[float | None]


class XorPanel(BaseModel):
    points: Matrix
    labels: list[int]
    outputs: list[float]
    predictions: list[int]
    accuracy: float


class RunError(BaseModel):
    message: str
    cause: str
    step: int


class Parameters(BaseModel):
    steps: list[int]
    names: list[str]
    values: Matrix  # [parameter][point]


class RunState(BaseModel):
    run_id: str
    step: int
    settings: Settings
    changes: list[tuple[int, str, float]]  # [step, live setting, value]
    can_step_back: bool
    network: Network
    trace: Trace | None
    metrics: Metrics
    curves: Curves
    heatmaps: Heatmaps
    xor: XorPanel | None
    error: RunError | None
    notices: list[str]
    parameters: Parameters | None = None  # only when the request asked for history


class Points(BaseModel):
    X: Matrix
    y: list[int]  # the labels trained on (noise included)
    clean: list[int]  # the labels before noise


class Data(BaseModel):
    domain: list[float]
    train: Points
    test: Points


class CreatedRun(RunState):
    data: Data
    run_settings: Settings  # what the run really uses (the batch size may have been capped)


class Export(BaseModel):
    network: Network
    python: str


class Deleted(BaseModel):
    deleted: str


def state(run: Run, example: int = 0, history: bool = True) -> dict:
    tr = run.trainer
    trace = run.trace()
    stride = max(1, math.ceil(len(run.curves["train"]) / CURVE_POINTS))
    live = {name: getattr(tr, name) for name in LIVE}
    return {
        "run_id": run.run_id,
        "step": run.step,
        "settings": {**run.settings, **live},
        "changes": run.changes,
        "can_step_back": run.step > 0,
        "network": run.net.to_dict(),
        "trace": _trace(trace, example) if trace else None,
        "metrics": {**run.metrics, "reg_loss": tr.reg_loss()},
        "curves": {"steps": list(range(0, run.step + 1, stride)), **{k: v[::stride] for k, v in run.curves.items()}},
        "heatmaps": heatmaps(run),
        "xor": _xor(run) if run.data.is_xor else None,
        "error": run.error,
        "notices": run.notices,
        "parameters": _parameter_history(run) if history else None,
    }


def _encode_map(values: np.ndarray, lo: float | None = None, hi: float | None = None) -> dict:
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


def heatmaps(run: Run) -> dict:
    net = run.net
    domain = run.data.domain
    fine = net.forward(_grid(domain, OUTPUT_RESOLUTION)).output
    coarse = net.forward(_grid(domain, NEURON_RESOLUTION))
    out_act = net.activations[-1]
    prob = fine[:, 1] if out_act == "softmax" else fine[:, 0]
    lo_hi = _RANGES.get(out_act, (None, None))
    neurons = []
    for act_name, a in zip(net.activations, coarse.activations[1:]):
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


def _xor(run: Run) -> dict:
    out = run.net.predict(XOR_POINTS)
    prob = out[:, 1] if out.shape[1] > 1 else out[:, 0]
    pred = run.net.classify(XOR_POINTS)
    return {
        "points": XOR_POINTS.tolist(),
        "labels": XOR_LABELS.tolist(),
        "outputs": prob.tolist(),
        "predictions": pred.tolist(),
        "accuracy": float((pred == XOR_LABELS).mean()),
    }


def _parameter_history(run: Run) -> dict:
    names = []
    for l, (W, b) in enumerate(zip(run.net.weights, run.net.biases), start=1):
        names += [f"W{l}[{i},{j}]" for i in range(W.shape[0]) for j in range(W.shape[1])]
        names += [f"b{l}[{i}]" for i in range(b.shape[0])]
    # Up to 2 x PARAMETER_POINTS are kept; half of them are plenty to draw.
    stride = max(1, math.ceil(len(run.param_steps) / PARAMETER_POINTS))
    values = np.array(run.param_values[::stride])
    return {"steps": run.param_steps[::stride], "names": names, "values": values.T.tolist()}


def data(run: Run) -> dict:
    d = run.data
    return {
        "domain": list(d.domain),
        "train": {"X": d.X_train.tolist(), "y": d.y_train.tolist(), "clean": d.y_train_clean.tolist()},
        "test": {"X": d.X_test.tolist(), "y": d.y_test.tolist(), "clean": d.y_test_clean.tolist()},
    }


def export(run: Run) -> dict:
    return {
        "network": run.net.to_dict(),
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


def _trace(t: StepTrace, example: int) -> dict:
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
