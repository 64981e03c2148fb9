"""Seeded two-dimensional classification datasets for the backprop lab.

Every dataset has two classes (labels 0 and 1) and a plotting domain. Noise is the
probability that a label is flipped; the unflipped labels are kept as `clean`, so a
learner can compare the loss on what the network saw with the loss on the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

XOR_POINTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_LABELS = np.array([0, 1, 1, 0])


@dataclass
class Dataset:
    name: str
    X_train: np.ndarray  # [N_train, 2]
    y_train: np.ndarray  # [N_train] labels after noise
    X_test: np.ndarray
    y_test: np.ndarray
    y_train_clean: np.ndarray  # labels before noise
    y_test_clean: np.ndarray
    domain: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max for plots

    @property
    def is_xor(self) -> bool:
        return self.name in ("xor", "noisy-xor")


def _xor_quadrants(n: int, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(0.0, 1.0, size=(n, 2))


def _xor_label(X: np.ndarray) -> np.ndarray:
    return ((X[:, 0] > 0.5) ^ (X[:, 1] > 0.5)).astype(int)


def _circle(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Class 1 inside radius 0.5, class 0 in a ring from 0.7 to 1.0.
    inner = n // 2
    r = np.concatenate([rng.uniform(0.0, 0.5, inner), rng.uniform(0.7, 1.0, n - inner)])
    theta = rng.uniform(0.0, 2 * np.pi, n)
    X = np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1)
    y = np.concatenate([np.ones(inner, int), np.zeros(n - inner, int)])
    return X, y


def _gaussians(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    X = np.concatenate([rng.normal([0.5, 0.5], 0.2, (half, 2)), rng.normal([-0.5, -0.5], 0.2, (n - half, 2))])
    y = np.concatenate([np.ones(half, int), np.zeros(n - half, int)])
    return X, y


def _spiral(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Two interleaved arms, each turning 1.75 times around the origin.
    half = n // 2
    parts = []
    for k, count in ((0, half), (1, n - half)):
        t = rng.uniform(0.0, 1.0, count)
        r = 0.05 + 0.95 * t
        angle = 1.75 * 2 * np.pi * t + k * np.pi
        parts.append(np.stack([r * np.sin(angle), r * np.cos(angle)], axis=1) + rng.normal(0.0, 0.02, (count, 2)))
    return np.concatenate(parts), np.concatenate([np.ones(half, int), np.zeros(n - half, int)])


def _moons(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    half = n // 2
    t_up = rng.uniform(0.0, np.pi, half)
    t_down = rng.uniform(0.0, np.pi, n - half)
    upper = np.stack([np.cos(t_up), np.sin(t_up)], axis=1)
    lower = np.stack([1.0 - np.cos(t_down), 0.5 - np.sin(t_down)], axis=1)
    X = np.concatenate([upper, lower]) - [0.5, 0.25]
    X = X / 1.5 + rng.normal(0.0, 0.03, (n, 2))
    return X, np.concatenate([np.ones(half, int), np.zeros(n - half, int)])


_GENERATORS: dict[str, Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]]] = {
    "circle": _circle,
    "gaussians": _gaussians,
    "spiral": _spiral,
    "moons": _moons,
}
XOR_DOMAIN = (-0.25, 1.25, -0.25, 1.25)
PLANE_DOMAIN = (-1.2, 1.2, -1.2, 1.2)
DATASETS = ("xor", "noisy-xor", *_GENERATORS)


def make_dataset(
    name: str = "xor",
    n_samples: int = 200,
    noise: float = 0.0,
    train_ratio: float = 0.5,
    seed: int = 0,
) -> Dataset:
    """Build a dataset. "xor" is the four clean corner points, used for both train and test."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {list(DATASETS)}")
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"noise is a label-flip probability and must be in [0, 0.5]; got {noise}")
    if not 0.0 < train_ratio < 1.0:
        raise ValueError(f"train_ratio must be strictly between 0 and 1; got {train_ratio}")
    if name == "xor":
        return Dataset(name, XOR_POINTS, XOR_LABELS, XOR_POINTS, XOR_LABELS, XOR_LABELS, XOR_LABELS, XOR_DOMAIN)
    if n_samples < 4:
        raise ValueError(f"n_samples must be at least 4; got {n_samples}")
    rng = np.random.default_rng(seed)
    if name == "noisy-xor":
        X = _xor_quadrants(n_samples, rng)
        clean = _xor_label(X)
        domain = XOR_DOMAIN
    else:
        X, clean = _GENERATORS[name](n_samples, rng)
        domain = PLANE_DOMAIN
    flip = rng.uniform(size=n_samples) < noise
    y = np.where(flip, 1 - clean, clean)
    order = rng.permutation(n_samples)
    n_train = min(max(int(round(train_ratio * n_samples)), 1), n_samples - 1)
    tr, te = order[:n_train], order[n_train:]
    return Dataset(name, X[tr], y[tr], X[te], y[te], clean[tr], clean[te], domain)
