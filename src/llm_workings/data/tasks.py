"""Seeded synthetic sequence tasks for small transformers.

Each generator returns numpy arrays of int64 token ids and is deterministic given the
random generator (or seed) it is handed, so a run can be repeated exactly. Shapes are
written as ``[batch, positions]``.

- `repeated_tokens`: random tokens shown twice; the second copy can only be predicted by
  an induction head. `induction_targets` gives the positions such a head attends.
- `modular_addition`: every ``a + b mod p`` fact, split into train and test (grokking).
- `sorting`: a list of values, a separator, then the list sorted.
- `batches_from_text`: random training windows cut from a long array of token ids.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ModularAddition",
    "batches_from_text",
    "induction_targets",
    "modular_addition",
    "repeated_tokens",
    "sorting",
]


def _int_at_least(name: str, value: object, minimum: int) -> int:
    """`value` as a Python int, or a ValueError saying what was wrong with it."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}")
    return number


def repeated_tokens(rng: np.random.Generator, batch: int, half: int, d_vocab: int, bos: int | None = 0) -> np.ndarray:
    """Random token sequences repeated once: the classic induction-head probe.

    Returns an int64 array of shape ``[batch, (1 if bos is not None else 0) + 2 * half]``.
    Each row is: the BOS id (only when `bos` is not None), then `half` tokens drawn
    uniformly and independently (repeats allowed) from the ids in ``range(d_vocab)`` other
    than `bos`, then the same `half` tokens again. The first copy is unpredictable noise;
    the second copy is predictable only by a model that looks back to the earlier
    occurrence of the current token and copies what followed it (an induction head).

    With ``bos=None`` there is no BOS position and the body is drawn from all of
    ``range(d_vocab)``.
    """
    batch = _int_at_least("batch", batch, 1)
    half = _int_at_least("half", half, 1)
    if bos is None:
        d_vocab = _int_at_least("d_vocab", d_vocab, 1)
        body = rng.integers(0, d_vocab, size=(batch, half), dtype=np.int64)
    else:
        d_vocab = _int_at_least("d_vocab (with a BOS id)", d_vocab, 2)
        bos = _int_at_least("bos", bos, 0)
        if bos >= d_vocab:
            raise ValueError(f"bos must be an id in range(d_vocab={d_vocab}), got {bos}")
        # Draw from d_vocab - 1 ids and step over the BOS id: uniform on the other ids.
        body = rng.integers(0, d_vocab - 1, size=(batch, half), dtype=np.int64)
        body[body >= bos] += 1
    parts = [body, body]
    if bos is not None:
        parts.insert(0, np.full((batch, 1), bos, dtype=np.int64))
    return np.concatenate(parts, axis=1)


def induction_targets(half: int, bos: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Where an ideal induction head attends on a `repeated_tokens` sequence.

    Returns ``(queries, keys)``, two int64 arrays of shape ``[half]``. The queries are
    every position of the second copy, ``offset + half .. offset + 2 * half - 1`` where
    ``offset`` is 1 with a BOS position and 0 without. For a query at position ``q`` the
    key is the position just after the previous occurrence of the token at ``q``, which is
    ``q - half + 1``: that is where the token to predict next was seen before.

    The induction score of an attention pattern ``pattern[..., query, key]`` is the mean of
    ``pattern[..., queries, keys]``.
    """
    half = _int_at_least("half", half, 1)
    offset = 1 if bos else 0
    queries = np.arange(offset + half, offset + 2 * half, dtype=np.int64)
    keys = queries - half + 1
    return queries, keys


@dataclass(frozen=True, eq=False)
class ModularAddition:
    """Every ``a + b mod p`` problem, split into train and test.

    Inputs are rows ``[a, b, p]``: the two operands as token ids ``0 .. p - 1`` and the
    token ``p`` standing for "=". The model reads the row and predicts the answer at the
    last position, so ``d_vocab == p + 1`` (the answer is always one of ``0 .. p - 1``).
    """

    p: int
    train_x: np.ndarray  # [n_train, 3] int64 rows a, b, p
    train_y: np.ndarray  # [n_train] int64, (a + b) % p
    test_x: np.ndarray  # [p * p - n_train, 3]
    test_y: np.ndarray  # [p * p - n_train]

    @property
    def d_vocab(self) -> int:
        return self.p + 1


def modular_addition(p: int = 113, train_fraction: float = 0.3, seed: int = 0) -> ModularAddition:
    """All ``p * p`` pairs ``(a, b)`` for ``a, b in range(p)``, shuffled and split.

    The pairs are shuffled by ``np.random.default_rng(seed)``; the first
    ``round(train_fraction * p * p)`` are the training set and the rest the test set, so
    every pair appears exactly once across the two. The defaults are the setup of Nanda et
    al. (2023), "Progress measures for grokking via mechanistic interpretability":
    p = 113 and 30% of the pairs for training.

    `p` need not be prime, but it must be at least 2, and the fraction must leave at least
    one pair on each side.
    """
    p = _int_at_least("p", p, 2)
    try:
        fraction = float(train_fraction)
    except (TypeError, ValueError):
        raise ValueError(f"train_fraction must be a number, got {train_fraction!r}") from None
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"train_fraction must be strictly between 0 and 1, got {train_fraction!r}")
    n_pairs = p * p
    n_train = round(fraction * n_pairs)
    if not 0 < n_train < n_pairs:
        raise ValueError(
            f"train_fraction={train_fraction!r} of {n_pairs} pairs gives {n_train} training pairs; "
            "both train and test need at least one"
        )
    order = np.random.default_rng(seed).permutation(n_pairs)
    a, b = np.divmod(order.astype(np.int64), p)
    x = np.stack([a, b, np.full_like(a, p)], axis=1)
    y = (a + b) % p
    return ModularAddition(
        p=p,
        train_x=x[:n_train],
        train_y=y[:n_train],
        test_x=x[n_train:],
        test_y=y[n_train:],
    )


def sorting(rng: np.random.Generator, batch: int, length: int, n_values: int) -> np.ndarray:
    """Lists to sort: the values, a separator, then the same values in ascending order.

    Returns an int64 array of shape ``[batch, 2 * length + 1]``. Each row holds `length`
    values drawn uniformly (repeats allowed) from ``range(n_values)``, the separator token
    ``n_values``, then those values sorted ascending. Use ``d_vocab = n_values + 1``; score
    the model on its predictions of the sorted half, the positions after the separator.
    """
    batch = _int_at_least("batch", batch, 1)
    length = _int_at_least("length", length, 1)
    n_values = _int_at_least("n_values", n_values, 1)
    values = rng.integers(0, n_values, size=(batch, length), dtype=np.int64)
    separator = np.full((batch, 1), n_values, dtype=np.int64)
    return np.concatenate([values, separator, np.sort(values, axis=1)], axis=1)


def batches_from_text(ids: np.ndarray, rng: np.random.Generator, batch: int, block: int) -> np.ndarray:
    """Random windows of ``block + 1`` consecutive token ids, for next-token training.

    Returns an int64 array of shape ``[batch, block + 1]``; row ``i`` is
    ``ids[s_i : s_i + block + 1]`` with each start ``s_i`` drawn uniformly from
    ``0 .. len(ids) - block - 1`` (independently, so windows may overlap). Split a batch
    ``w`` as ``x = w[:, :-1]`` (inputs) and ``y = w[:, 1:]`` (targets), as nanoGPT's
    ``get_batch`` does.

    `ids` must be one-dimensional and longer than `block`.
    """
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be a one-dimensional array of token ids, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must hold integer token ids, got dtype {ids.dtype}")
    batch = _int_at_least("batch", batch, 1)
    block = _int_at_least("block", block, 1)
    if block >= len(ids):
        raise ValueError(f"block ({block}) must be shorter than the text ({len(ids)} ids)")
    starts = rng.integers(0, len(ids) - block, size=batch)
    return ids[starts[:, None] + np.arange(block + 1)].astype(np.int64, copy=False)
