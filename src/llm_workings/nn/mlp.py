"""A multilayer perceptron in NumPy, with backprop written out layer by layer.

Notation (used in the lab's computation view too): layer l maps the previous
activations a[l-1] to

    z[l] = a[l-1] @ W[l].T + b[l]        W[l]: [n_out, n_in], as in the textbook W a + b
    a[l] = f[l](z[l])

over a batch whose rows are examples. a[0] is the input X.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .functions import (
    FUSED_OUTPUT_GRADIENT,
    HIDDEN_ACTIVATIONS,
    LOSSES,
    OUTPUT_ACTIVATIONS,
    Activation,
    check_output_and_loss,
)

EXPORT_FORMAT = "llm-workings-mlp/1"


def classes_from_output(out: np.ndarray) -> np.ndarray:
    """Predicted class per row: argmax over several outputs, or a single output above 0.5."""
    if out.shape[1] > 1:
        return out.argmax(axis=1)
    return (out[:, 0] > 0.5).astype(int)


@dataclass
class ForwardPass:
    """Everything the forward pass computed: z[l] and a[l] for each layer (a[0] = X)."""

    zs: list[np.ndarray]  # one per layer with weights
    activations: list[np.ndarray]  # len(zs) + 1; activations[0] is the input

    @property
    def output(self) -> np.ndarray:
        return self.activations[-1]


@dataclass
class Gradients:
    """dL/da, dL/dz, dL/dW and dL/db for every layer, of the batch-mean data loss."""

    dL_da: list[np.ndarray]
    dL_dz: list[np.ndarray]
    dL_dW: list[np.ndarray]
    dL_db: list[np.ndarray]


@dataclass(repr=False)
class MLP:
    """A fully connected network: sizes [n_in, hidden..., n_out], one activation per layer."""

    sizes: list[int]
    activations: list[str]  # hidden activations then the output activation
    loss: str
    weights: list[np.ndarray] = field(default_factory=list)
    biases: list[np.ndarray] = field(default_factory=list)

    @classmethod
    def create(
        cls,
        sizes: Sequence[int],
        hidden: str | Sequence[str] = "tanh",
        output: str = "sigmoid",
        loss: str = "bce",
        seed: int = 0,
    ) -> MLP:
        """A seeded network. Glorot-normal weights (He-normal before ReLU), zero biases."""
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or any(s < 1 for s in sizes):
            raise ValueError(f"sizes must list at least an input and an output size, each >= 1; got {sizes}")
        n_hidden = len(sizes) - 2
        hidden_list = [hidden] * n_hidden if isinstance(hidden, str) else list(hidden)
        if len(hidden_list) != n_hidden:
            raise ValueError(f"{n_hidden} hidden layers need {n_hidden} hidden activations; got {len(hidden_list)}")
        for name in hidden_list:
            if name not in HIDDEN_ACTIVATIONS:
                raise ValueError(f"unknown hidden activation {name!r}; expected one of {sorted(HIDDEN_ACTIVATIONS)}")
        check_output_and_loss(output, loss)
        if output == "softmax" and sizes[-1] < 2:
            raise ValueError("a softmax output needs at least 2 units (one per class)")
        if loss == "bce" and sizes[-1] != 1:
            raise ValueError(f"binary cross-entropy needs exactly 1 output unit; got {sizes[-1]}")
        rng = np.random.default_rng(seed)
        acts = hidden_list + [output]
        weights, biases = [], []
        for n_in, n_out, act in zip(sizes[:-1], sizes[1:], acts):
            gain = 2.0 / n_in if act == "relu" else 2.0 / (n_in + n_out)
            weights.append(rng.normal(0.0, np.sqrt(gain), size=(n_out, n_in)))
            biases.append(np.zeros(n_out))
        return cls(sizes, acts, loss, weights, biases)

    def __post_init__(self) -> None:
        if self.weights:
            self._check_parameters()

    def __repr__(self) -> str:
        arch = "-".join(map(str, self.sizes))
        return (
            f"MLP({arch}, activations={self.activations}, loss={self.loss!r} ({LOSSES[self.loss].title}), "
            f"{self.n_parameters} parameters)"
        )

    def _check_parameters(self) -> None:
        n = len(self.sizes) - 1
        if len(self.weights) != n or len(self.biases) != n or len(self.activations) != n:
            raise ValueError(f"a network with sizes {self.sizes} needs {n} weight matrices, bias vectors and activations")
        for name in self.activations[:-1]:
            if name not in HIDDEN_ACTIVATIONS:
                raise ValueError(f"unknown hidden activation {name!r}; expected one of {sorted(HIDDEN_ACTIVATIONS)}")
        check_output_and_loss(self.activations[-1], self.loss)
        for l, (W, b) in enumerate(zip(self.weights, self.biases), start=1):
            expected = (self.sizes[l], self.sizes[l - 1])
            if W.shape != expected:
                raise ValueError(f"W[{l}] must have shape {expected} (n_out, n_in); got {W.shape}")
            if b.shape != (self.sizes[l],):
                raise ValueError(f"b[{l}] must have shape ({self.sizes[l]},); got {b.shape}")

    # -- the two passes ---------------------------------------------------

    def layer_functions(self) -> list[Activation]:
        return [HIDDEN_ACTIVATIONS[name] for name in self.activations[:-1]] + [OUTPUT_ACTIVATIONS[self.activations[-1]]]

    def forward(self, X: np.ndarray) -> ForwardPass:
        a = np.asarray(X, dtype=np.float64)
        if a.ndim != 2 or a.shape[1] != self.sizes[0]:
            raise ValueError(f"input must have shape [batch, {self.sizes[0]}]; got {list(a.shape)}")
        zs, acts = [], [a]
        for W, b, f in zip(self.weights, self.biases, self.layer_functions()):
            z = a @ W.T + b
            a = f.forward(z)
            zs.append(z)
            acts.append(a)
        return ForwardPass(zs, acts)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.forward(X).output

    def data_loss(self, fp: ForwardPass, Y: np.ndarray) -> float:
        return LOSSES[self.loss].value(fp.zs[-1], fp.output, Y)

    def backward(self, fp: ForwardPass, Y: np.ndarray) -> Gradients:
        """Backprop the batch-mean loss through every layer, output first."""
        fns = self.layer_functions()
        loss = LOSSES[self.loss]
        out = fp.output
        n = len(self.weights)
        dL_da: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        dL_dz: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        dL_dW: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        dL_db: list[np.ndarray] = [None] * n  # type: ignore[list-item]
        dL_da[-1] = loss.grad_a(out, Y)
        if (self.activations[-1], self.loss) in FUSED_OUTPUT_GRADIENT:
            dL_dz[-1] = (out - Y) / out.shape[0]
        else:
            dL_dz[-1] = fns[-1].backward(fp.zs[-1], out, dL_da[-1])
        for l in range(n - 1, -1, -1):
            if l < n - 1:
                dL_da[l] = dL_dz[l + 1] @ self.weights[l + 1]
                dL_dz[l] = fns[l].backward(fp.zs[l], fp.activations[l + 1], dL_da[l])
            dL_dW[l] = dL_dz[l].T @ fp.activations[l]
            dL_db[l] = dL_dz[l].sum(axis=0)
        return Gradients(dL_da, dL_dz, dL_dW, dL_db)

    # -- targets and metrics ------------------------------------------------

    def encode_targets(self, labels: np.ndarray) -> np.ndarray:
        """Class labels [N] -> the target matrix this output layer is trained against."""
        labels = np.asarray(labels)
        if self.activations[-1] == "softmax":
            return np.eye(self.sizes[-1])[labels.astype(int)]
        return labels.reshape(len(labels), -1).astype(np.float64)

    def classify(self, X: np.ndarray) -> np.ndarray:
        return classes_from_output(self.predict(X))

    # -- parameters -----------------------------------------------------------

    @property
    def n_parameters(self) -> int:
        return sum(W.size + b.size for W, b in zip(self.weights, self.biases))

    def copy(self) -> MLP:
        return MLP(
            list(self.sizes),
            list(self.activations),
            self.loss,
            [W.copy() for W in self.weights],
            [b.copy() for b in self.biases],
        )

    def to_dict(self) -> dict:
        return {
            "format": EXPORT_FORMAT,
            "sizes": self.sizes,
            "activations": self.activations,
            "loss": self.loss,
            "weights": [W.tolist() for W in self.weights],
            "biases": [b.tolist() for b in self.biases],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict) -> MLP:
        if not isinstance(d, dict) or d.get("format") != EXPORT_FORMAT:
            raise ValueError(f"not an exported network: expected a JSON object with format {EXPORT_FORMAT!r}")
        missing = [k for k in ("sizes", "activations", "loss", "weights", "biases") if k not in d]
        if missing:
            raise ValueError(f"exported network is missing {', '.join(missing)}")
        return cls(
            [int(s) for s in d["sizes"]],
            list(d["activations"]),
            d["loss"],
            [np.asarray(W, dtype=np.float64) for W in d["weights"]],
            [np.asarray(b, dtype=np.float64) for b in d["biases"]],
        )

    @classmethod
    def from_json(cls, text: str) -> MLP:
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"exported network is not valid JSON: {e}") from None
        return cls.from_dict(d)
