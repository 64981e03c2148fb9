"""Mini-batch gradient descent with momentum and L1/L2 regularization.

The batch for step t is a pure function of (seed, t): epoch e = (t - 1) // steps_per_epoch
uses row e % 64 of the 64 permutations drawn from default_rng([seed, e // 64]); a full
batch is simply every example in order. So a trainer's whole state
is the network, the momentum buffers and the step counter, and going back to any
earlier step is a matter of restoring those three.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import DivergenceError
from .mlp import MLP, classes_from_output

REGULARIZATIONS = ("none", "l1", "l2")
EPOCHS_PER_DRAW = 64
EXPLODING_WEIGHT = 1e6  # |w| above this means the run has left any useful regime


@dataclass
class LayerTrace:
    """One layer's part of a step. Rows of z, a, dL_da, dL_dz are batch examples."""

    W_before: np.ndarray
    b_before: np.ndarray
    z: np.ndarray
    a: np.ndarray
    dL_da: np.ndarray
    dL_dz: np.ndarray
    dL_dW: np.ndarray  # of the data loss
    dR_dW: np.ndarray  # of the regularization term
    dL_db: np.ndarray
    W_after: np.ndarray
    b_after: np.ndarray


@dataclass
class StepTrace:
    """Every number of one training step: the single source of the lab's backprop view."""

    step: int  # the step this trace produced: weights go from step-1 to step
    batch_indices: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    layers: list[LayerTrace]
    data_loss: float
    reg_loss: float
    learning_rate: float
    momentum: float
    regularization: str
    reg_rate: float

    @property
    def loss(self) -> float:
        return self.data_loss + self.reg_loss


@dataclass
class TrainerState:
    """What `MLPTrainer.restore` needs to put a run back exactly where it was."""

    step: int
    weights: list[np.ndarray]
    biases: list[np.ndarray]
    velocity_W: list[np.ndarray]
    velocity_b: list[np.ndarray]
    learning_rate: float
    reg_rate: float


class MLPTrainer:
    def __init__(
        self,
        net: MLP,
        X: np.ndarray,
        labels: np.ndarray,
        *,
        learning_rate: float = 0.03,
        batch_size: int = 10,
        momentum: float = 0.0,
        regularization: str = "none",
        reg_rate: float = 0.0,
        seed: int = 0,
    ):
        if regularization not in REGULARIZATIONS:
            raise ValueError(f"unknown regularization {regularization!r}; expected one of {list(REGULARIZATIONS)}")
        if not 1 <= batch_size <= len(X):
            raise ValueError(f"batch_size must be between 1 and the number of training examples ({len(X)}); got {batch_size}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1); got {momentum}")
        self.net = net
        self.X = np.asarray(X, dtype=np.float64)
        self.Y = net.encode_targets(labels)
        self.batch_size = int(batch_size)
        self.momentum = float(momentum)
        self.regularization = regularization
        self.seed = int(seed)
        self.learning_rate = learning_rate
        self.reg_rate = reg_rate
        self.step_count = 0
        self.velocity_W = [np.zeros_like(W) for W in net.weights]
        self.velocity_b = [np.zeros_like(b) for b in net.biases]
        self._permutations: tuple[int, np.ndarray] | None = None
        self._all = np.arange(len(self.X))

    # Both rates may change mid-run: the next step uses the new value.
    @property
    def learning_rate(self) -> float:
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"learning_rate must be a positive finite number; got {value}")
        self._learning_rate = float(value)

    @property
    def reg_rate(self) -> float:
        return self._reg_rate

    @reg_rate.setter
    def reg_rate(self, value: float) -> None:
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"reg_rate must be a non-negative finite number; got {value}")
        self._reg_rate = float(value)

    # -- batches ----------------------------------------------------------------

    @property
    def steps_per_epoch(self) -> int:
        return -(-len(self.X) // self.batch_size)

    def batch_indices(self, step: int) -> np.ndarray:
        """Indices of the examples used by step `step` (1-based)."""
        if self.batch_size == len(self.X):
            return self._all  # full-batch: every step is an epoch, and order cannot matter
        epoch, k = divmod(step - 1, self.steps_per_epoch)
        block, row = divmod(epoch, EPOCHS_PER_DRAW)
        if self._permutations is None or self._permutations[0] != block:
            # Drawing many epochs' orders at once keeps full-batch training (one epoch a step) cheap.
            orders = np.tile(np.arange(len(self.X)), (EPOCHS_PER_DRAW, 1))
            self._permutations = (block, np.random.default_rng([self.seed, block]).permuted(orders, axis=1))
        return self._permutations[1][row, k * self.batch_size : (k + 1) * self.batch_size]

    # -- regularization ------------------------------------------------------------

    def reg_loss(self) -> float:
        if self.regularization == "none" or self.reg_rate == 0.0:
            return 0.0
        if self.regularization == "l1":
            return self.reg_rate * sum(float(np.abs(W).sum()) for W in self.net.weights)
        return 0.5 * self.reg_rate * sum(float((W * W).sum()) for W in self.net.weights)

    def reg_grad(self, W: np.ndarray) -> np.ndarray | float:
        if self.regularization == "none" or self.reg_rate == 0.0:
            return 0.0
        if self.regularization == "l1":
            return self.reg_rate * np.sign(W)
        return self.reg_rate * W

    # -- one step ----------------------------------------------------------------------

    def step(self, trace: bool = False) -> StepTrace | float:
        """Take one step. Returns the batch loss, or the full StepTrace when trace=True.

        If the step would produce a non-finite loss or exploding weights the network is
        left as it was and DivergenceError says what most likely went wrong.
        """
        net = self.net
        t = self.step_count + 1
        idx = self.batch_indices(t)
        X, Y = (self.X, self.Y) if idx is self._all else (self.X[idx], self.Y[idx])
        fp = net.forward(X)
        data_loss = net.data_loss(fp, Y)
        reg_loss = self.reg_loss()
        if not math.isfinite(data_loss + reg_loss):
            raise self._divergence(t, "loss is " + ("NaN" if math.isnan(data_loss + reg_loss) else "infinite"))
        grads = net.backward(fp, Y)
        new_W, new_b, new_vW, new_vb, dR = [], [], [], [], []
        lr, mu = self.learning_rate, self.momentum
        for W, b, vW, vb, gW, gb in zip(net.weights, net.biases, self.velocity_W, self.velocity_b, grads.dL_dW, grads.dL_db):
            rW = self.reg_grad(W)
            # v <- mu v - lr (dL/dW + dR/dW);  W <- W + v
            vW_next = -lr * (gW + rW)
            vb_next = -lr * gb
            if mu:
                vW_next += mu * vW
                vb_next += mu * vb
            new_vW.append(vW_next)
            new_vb.append(vb_next)
            new_W.append(W + vW_next)
            new_b.append(b + vb_next)
            dR.append(rW)
        # A sum of squares is NaN or inf whenever any entry is, so one dot per array checks both.
        squares = sum(float(p.ravel() @ p.ravel()) for p in new_W + new_b)
        if not squares < EXPLODING_WEIGHT**2:
            biggest = max(float(np.abs(p).max()) for p in new_W + new_b)
            raise self._divergence(t, f"a parameter reached {biggest:.3g}")
        result: StepTrace | float = data_loss + reg_loss
        if trace:
            layers = [
                LayerTrace(
                    W_before=net.weights[l],
                    b_before=net.biases[l],
                    z=fp.zs[l],
                    a=fp.activations[l + 1],
                    dL_da=grads.dL_da[l],
                    dL_dz=grads.dL_dz[l],
                    dL_dW=grads.dL_dW[l],
                    dR_dW=dR[l] + np.zeros_like(new_W[l]),
                    dL_db=grads.dL_db[l],
                    W_after=new_W[l],
                    b_after=new_b[l],
                )
                for l in range(len(new_W))
            ]
            result = StepTrace(
                step=t,
                batch_indices=idx.copy(),
                X=X,
                Y=Y,
                layers=layers,
                data_loss=data_loss,
                reg_loss=reg_loss,
                learning_rate=lr,
                momentum=mu,
                regularization=self.regularization,
                reg_rate=self.reg_rate,
            )
        # Commit only now: a diverging step leaves the network untouched.
        net.weights, net.biases = new_W, new_b
        self.velocity_W, self.velocity_b = new_vW, new_vb
        self.step_count = t
        return result

    def _divergence(self, step: int, what: str) -> DivergenceError:
        # Gradient descent on the L2 term alone multiplies each weight by (1 - lr * reg_rate)
        # per step: past lr * reg_rate = 2 that factor is below -1, so the weights flip sign
        # and grow whatever the data says. An L1 step moves a weight by lr * reg_rate at most,
        # which can jitter but not explode, so L1 is never the cause.
        decay = self.learning_rate * self.reg_rate
        if self.regularization == "l2" and decay > 2.0:
            cause = "regularization rate"
            advice = (
                f"The regularization rate ({self.reg_rate:g}) times the learning rate ({self.learning_rate:g}) is "
                f"{decay:.3g}, so the weight decay multiplies every weight by {1 - decay:.3g} each step: the weights "
                f"flip sign and grow. Lower the regularization rate below {2.0 / self.learning_rate:.3g}."
            )
        else:
            cause = "learning rate"
            advice = (
                f"The learning rate ({self.learning_rate:g}) is most likely too high: each update overshoots the "
                f"minimum, so the loss grows instead of falling. Try {self.learning_rate / 10:g} or lower."
                if self.momentum == 0
                else f"The learning rate ({self.learning_rate:g}) with momentum {self.momentum:g} is most likely too high: "
                f"updates overshoot and build on each other. Try a learning rate of {self.learning_rate / 10:g} or a lower momentum."
            )
        return DivergenceError(f"Training diverged at step {step}: {what}. {advice}", step, cause)

    # -- evaluation ------------------------------------------------------------------

    def evaluate(self, X: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """(data loss, accuracy) on a labelled set."""
        Y = self.net.encode_targets(labels)
        fp = self.net.forward(X)
        loss = self.net.data_loss(fp, Y)
        return loss, float((classes_from_output(fp.output) == np.asarray(labels)).mean())

    # -- going back --------------------------------------------------------------------

    def state(self, copy: bool = True) -> TrainerState:
        """The trainer's state. copy=False shares the arrays, which is safe to keep because
        `step` replaces parameter and velocity arrays rather than writing into them."""
        c = (lambda arrays: [a.copy() for a in arrays]) if copy else list
        return TrainerState(
            self.step_count,
            c(self.net.weights),
            c(self.net.biases),
            c(self.velocity_W),
            c(self.velocity_b),
            self.learning_rate,
            self.reg_rate,
        )

    def restore(self, s: TrainerState) -> None:
        self.step_count = s.step
        self.net.weights = [W.copy() for W in s.weights]
        self.net.biases = [b.copy() for b in s.biases]
        self.velocity_W = [v.copy() for v in s.velocity_W]
        self.velocity_b = [v.copy() for v in s.velocity_b]
        self.learning_rate = s.learning_rate
        self.reg_rate = s.reg_rate
