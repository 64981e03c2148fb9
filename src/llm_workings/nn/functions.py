"""Activations and losses, each with the derivative backprop needs.

Every function works on a batch: rows are examples, columns are units.
Derivatives are written out by hand; the tests check them against finite
differences and torch autograd.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Activation:
    """An elementwise (or, for softmax, row-wise) nonlinearity a = f(z)."""

    name: str
    forward: Callable[[np.ndarray], np.ndarray]
    # backward(z, a, dL_da) -> dL_dz: the chain rule through f, given both its input and output.
    backward: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]
    formula: str  # LaTeX for the lab's computation view
    derivative: str


def _sigmoid(z: np.ndarray) -> np.ndarray:
    # The tanh identity is exact and never overflows, for any z.
    return 0.5 + 0.5 * np.tanh(0.5 * z)


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


SIGMOID = Activation(
    "sigmoid",
    _sigmoid,
    lambda z, a, da: da * a * (1.0 - a),
    r"\sigma(z) = \frac{1}{1 + e^{-z}}",
    r"\sigma'(z) = a(1 - a)",
)
TANH = Activation(
    "tanh",
    np.tanh,
    lambda z, a, da: da * (1.0 - a * a),
    r"\tanh(z)",
    r"\tanh'(z) = 1 - a^2",
)
RELU = Activation(
    "relu",
    lambda z: np.maximum(z, 0.0),
    lambda z, a, da: da * (z > 0),
    r"\mathrm{ReLU}(z) = \max(0, z)",
    r"\mathrm{ReLU}'(z) = [z > 0]",
)
LINEAR = Activation(
    "linear",
    lambda z: z.copy(),
    lambda z, a, da: da.copy(),
    r"\mathrm{id}(z) = z",
    r"\mathrm{id}'(z) = 1",
)
SOFTMAX = Activation(
    "softmax",
    _softmax,
    # Jacobian-vector product of softmax: a_i (g_i - sum_j a_j g_j).
    lambda z, a, da: a * (da - np.sum(da * a, axis=1, keepdims=True)),
    r"\mathrm{softmax}(z)_k = \frac{e^{z_k}}{\sum_j e^{z_j}}",
    r"\frac{\partial a_k}{\partial z_j} = a_k([k = j] - a_j)",
)

HIDDEN_ACTIVATIONS = {f.name: f for f in (SIGMOID, TANH, RELU, LINEAR)}
OUTPUT_ACTIVATIONS = {f.name: f for f in (SIGMOID, SOFTMAX, LINEAR)}


@dataclass(frozen=True)
class Loss:
    """A loss averaged over the batch: L = (1/B) sum_i l(a_i, y_i)."""

    name: str
    title: str
    value: Callable[[np.ndarray, np.ndarray, np.ndarray], float]  # (z, a, y) of the output layer
    grad_a: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (a, y) -> dL/da
    outputs: tuple[str, ...]  # output activations it may follow
    formula: str


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, where a saturated output (den == 0) gives +-inf without a warning."""
    if den.all():
        return num / den
    with np.errstate(divide="ignore", invalid="ignore"):
        return num / den


def _bce(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
    # Written in terms of the logit z: log(1 + e^z) - y z, stable for any z.
    per = np.maximum(z, 0.0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(per.sum() / z.shape[0])


def _cce(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
    # log-softmax from the logits rather than log(a), so a = 0 never gives -inf.
    shifted = z - z.max(axis=1, keepdims=True)
    log_a = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-(y * log_a).sum() / z.shape[0])


def _mse(z: np.ndarray, a: np.ndarray, y: np.ndarray) -> float:
    return float(0.5 * ((a - y) ** 2).sum() / z.shape[0])


BCE = Loss(
    "bce",
    "binary cross-entropy",
    _bce,
    lambda a, y: _safe_divide(a - y, a * (1.0 - a)) / a.shape[0],
    ("sigmoid",),
    r"L = -\frac{1}{B}\sum_i \big[y_i \log a_i + (1 - y_i)\log(1 - a_i)\big]",
)
CCE = Loss(
    "cce",
    "categorical cross-entropy",
    _cce,
    lambda a, y: -_safe_divide(y, a) / a.shape[0],
    ("softmax",),
    r"L = -\frac{1}{B}\sum_i \sum_k y_{ik} \log a_{ik}",
)
MSE = Loss(
    "mse",
    "mean squared error",
    _mse,
    lambda a, y: (a - y) / a.shape[0],
    ("sigmoid", "linear"),
    r"L = \frac{1}{B}\sum_i \tfrac12 \lVert a_i - y_i \rVert^2",
)

LOSSES = {f.name: f for f in (BCE, CCE, MSE)}

# Pairs whose chain rule collapses to dL/dz = (a - y) / B; computing it that way
# stays exact when the output saturates and dL/da alone would overflow.
FUSED_OUTPUT_GRADIENT = {("sigmoid", "bce"), ("softmax", "cce")}


def check_output_and_loss(output: str, loss: str) -> None:
    """Refuse pairs that make no sense, saying why and what would work."""
    if output not in OUTPUT_ACTIVATIONS:
        raise ValueError(f"unknown output activation {output!r}; expected one of {sorted(OUTPUT_ACTIVATIONS)}")
    if loss not in LOSSES:
        raise ValueError(f"unknown loss {loss!r}; expected one of {sorted(LOSSES)}")
    allowed = LOSSES[loss].outputs
    if output not in allowed:
        reasons = {
            "bce": "binary cross-entropy needs one probability in (0, 1), which a sigmoid output gives",
            "cce": "categorical cross-entropy needs a probability distribution over classes, which a softmax output gives",
            "mse": "mean squared error is paired with a sigmoid or linear output here",
        }
        suggest = [name for name, f in LOSSES.items() if output in f.outputs]
        raise ValueError(
            f"loss {loss!r} does not fit output {output!r}: {reasons[loss]}. "
            f"Use output {' or '.join(allowed)}, or with output {output!r} use loss {' or '.join(suggest)}."
        )
