"""What a training run does, as one dataclass, and the learning-rate and snapshot schedules it implies.

cfg = TrainConfig(steps=2000, batch_size=12, lr=1e-3, warmup_steps=100)
[lr_at(cfg, s) for s in (0, 100, 1999)]     # warmup, peak, near min_lr
snapshot_steps("log:12", 2000)                 # [0, 1, 2, 4, 8, ..., 2000]
snapshot_steps("every:100+every:25:300-800", 1500)   # dense through a transition, sparse elsewhere
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..transformer.config import from_known_fields


class TrainConfigError(ValueError):
    """A training setting has a value training cannot run with."""


@dataclass
class TrainConfig:
    steps: int = 1000  # optimizer updates
    batch_size: int = 32  # sequences per micro-batch (ignored by full-batch tasks)
    grad_accum: int = 1  # micro-batches summed into one update
    lr: float = 1e-3
    min_lr: float | None = None  # the cosine schedule's floor; default lr / 10, as nanoGPT's recipes use
    warmup_steps: int = 0
    schedule: str = "cosine"  # "cosine" (after warmup) or "constant"
    weight_decay: float = 0.1  # on matrices only: embeddings, unembedding and projections; never norms or biases
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float | None = 1.0  # max global gradient norm; None turns clipping off
    eval_every: int = 100
    checkpoint_every: int = 500
    snapshots: str = "none"  # "none", "log:N", "every:K", "0,10,100", or a union: "every:100+every:25:300-800"
    snapshot_dtype: str = "float32"  # snapshots in float16 take half the space
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "grad_accum", "eval_every", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise TrainConfigError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise TrainConfigError(f"lr must be positive, got {self.lr}")
        if self.min_lr is not None and not 0 <= self.min_lr <= self.lr:
            raise TrainConfigError(f"min_lr must be in [0, lr={self.lr}], got {self.min_lr}")
        if not 0 <= self.warmup_steps <= self.steps:
            raise TrainConfigError(f"warmup_steps must be in [0, steps={self.steps}], got {self.warmup_steps}")
        if self.schedule not in ("cosine", "constant"):
            raise TrainConfigError(f"schedule must be 'cosine' or 'constant', got {self.schedule!r}")
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise TrainConfigError(f"grad_clip must be positive or None, got {self.grad_clip}")
        if self.snapshot_dtype not in ("float32", "float16", "bfloat16"):
            raise TrainConfigError(f"snapshot_dtype must be float32, float16 or bfloat16, got {self.snapshot_dtype!r}")
        snapshot_steps(self.snapshots, self.steps)  # fails early on a malformed spec

    @property
    def floor_lr(self) -> float:
        return self.lr / 10 if self.min_lr is None else self.min_lr

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return from_known_fields(cls, data, TrainConfigError, "training setting")


def lr_at(cfg: TrainConfig, step: int) -> float:
    """Linear warmup from lr/warmup to lr, then a half cosine from lr down to the floor at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    span = max(1, cfg.steps - 1 - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.floor_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.floor_lr)


def snapshot_steps(spec: str, steps: int) -> list[int]:
    """The optimizer-step counts at which to keep a copy of the weights (0 is the initialisation).

    A spec is one schedule or several joined by "+" (their union), so snapshots can be dense where
    training changes fast and sparse elsewhere: "every:100+every:25:300-800" takes every 100th step, and
    every 25th from 300 to 800. A schedule is "none", "log:N" (N steps evenly spaced in log(1 + step)),
    "every:K", or a comma-separated list of steps; "log" and "every" take an optional ":A-B", the steps
    they cover (both ends included; by default 0 to `steps`). Steps past `steps` are dropped, so a
    recipe's schedule still applies to a shortened run."""
    spec = spec.strip()
    if spec == "none":
        return []
    chosen: set[int] = set()
    for part in spec.split("+"):
        chosen.update(_schedule_steps(part.strip(), spec, steps))
    return sorted(chosen)


def _schedule_steps(part: str, spec: str, steps: int) -> list[int]:
    schedule, _, args = part.partition(":")
    try:
        if schedule in ("log", "every"):
            arg, _, span = args.partition(":")
            first, last = (int(end) for end in span.split("-")) if span else (0, steps)
            if not 0 <= first < last:
                raise TrainConfigError(f"snapshots={spec!r}: the span {span!r} must have 0 <= first < last")
            last = min(last, steps)  # a recipe's schedule on a shorter run keeps the part the run reaches
            if first > last:
                return []
            if schedule == "log":
                n = int(arg)
                if n < 2:
                    raise ValueError
                low, high = math.log1p(first), math.log1p(last)  # even in log(1 + step): the first steps and the last
                return [round(math.expm1(low + i / (n - 1) * (high - low))) for i in range(n)]
            k = int(arg)
            if k < 1:
                raise ValueError
            return list(range(first, last + 1, k)) + [last]
        chosen = sorted({int(s) for s in part.split(",")})
    except ValueError as error:
        if isinstance(error, TrainConfigError):
            raise
        raise TrainConfigError(
            f"snapshots={spec!r}: expected 'none', or schedules joined by '+': 'log:N' (N >= 2), 'every:K' (K >= 1), "
            "either with an optional ':A-B' span, or a comma-separated list of steps"
        ) from None
    if chosen[0] < 0:
        raise TrainConfigError(f"snapshot steps must not be negative, got {chosen}")
    return [s for s in chosen if s <= steps]  # as for spans: a shorter run keeps the steps it reaches
