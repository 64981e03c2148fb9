"""Synthetic tasks: seeded, shaped as documented, and correct by their defining rule."""

from __future__ import annotations

import numpy as np
import pytest

from llm_workings.data import (
    ModularAddition,
    batches_from_text,
    induction_targets,
    modular_addition,
    repeated_tokens,
    sorting,
)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- repeated_tokens -------------------------------------------------------------------


def test_repeated_tokens_shape_dtype_and_repeat():
    x = repeated_tokens(rng(), batch=16, half=10, d_vocab=50, bos=0)
    assert x.shape == (16, 21)
    assert x.dtype == np.int64
    assert (x[:, 0] == 0).all()
    np.testing.assert_array_equal(x[:, 1:11], x[:, 11:])


@pytest.mark.parametrize("bos", [0, 3, 6])
def test_repeated_tokens_body_avoids_bos_and_stays_in_vocab(bos):
    d_vocab = 7
    x = repeated_tokens(rng(1), batch=200, half=20, d_vocab=d_vocab, bos=bos)
    assert (x[:, 0] == bos).all()
    body = x[:, 1:]
    assert body.min() >= 0 and body.max() < d_vocab
    assert not (body == bos).any()
    # Every non-BOS id turns up (4000 draws over 6 ids), so the shift over BOS loses none.
    assert set(np.unique(body)) == set(range(d_vocab)) - {bos}


def test_repeated_tokens_body_is_roughly_uniform():
    x = repeated_tokens(rng(2), batch=500, half=40, d_vocab=5, bos=2)
    counts = np.bincount(x[:, 1:41].ravel(), minlength=5)
    assert counts[2] == 0
    frequencies = counts[[0, 1, 3, 4]] / counts.sum()
    np.testing.assert_allclose(frequencies, 0.25, atol=0.02)


def test_repeated_tokens_without_bos():
    x = repeated_tokens(rng(3), batch=50, half=8, d_vocab=3, bos=None)
    assert x.shape == (50, 16)
    np.testing.assert_array_equal(x[:, :8], x[:, 8:])
    assert set(np.unique(x)) == {0, 1, 2}


def test_repeated_tokens_is_deterministic_from_the_rng():
    a = repeated_tokens(rng(7), batch=4, half=12, d_vocab=100)
    b = repeated_tokens(rng(7), batch=4, half=12, d_vocab=100)
    c = repeated_tokens(rng(8), batch=4, half=12, d_vocab=100)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch": 2, "half": 0, "d_vocab": 10},
        {"batch": 0, "half": 3, "d_vocab": 10},
        {"batch": 2, "half": 3, "d_vocab": 1, "bos": 0},
        {"batch": 2, "half": 3, "d_vocab": 0, "bos": None},
        {"batch": 2, "half": 3, "d_vocab": 10, "bos": 10},
        {"batch": 2, "half": 3, "d_vocab": 10, "bos": -1},
        {"batch": 2, "half": 2.5, "d_vocab": 10},
        {"batch": True, "half": 3, "d_vocab": 10},
    ],
)
def test_repeated_tokens_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        repeated_tokens(rng(), **kwargs)


# --- induction_targets -----------------------------------------------------------------


def brute_force_induction_targets(seq: np.ndarray) -> tuple[list[int], list[int]]:
    """For each position whose token occurred before, the position after its latest earlier occurrence."""
    queries, keys = [], []
    for q in range(len(seq)):
        earlier = [j for j in range(q) if seq[j] == seq[q]]
        if earlier:
            queries.append(q)
            keys.append(earlier[-1] + 1)
    return queries, keys


@pytest.mark.parametrize("half", [1, 2, 5, 17])
@pytest.mark.parametrize("bos", [True, False])
def test_induction_targets_match_brute_force(half, bos):
    # Distinct tokens in the first copy, so the only earlier occurrences are in that copy.
    body = np.arange(1, half + 1)
    seq = np.concatenate([[0], body, body]) if bos else np.concatenate([body, body])
    expected_q, expected_k = brute_force_induction_targets(seq)
    queries, keys = induction_targets(half, bos=bos)
    assert queries.dtype == np.int64 and keys.dtype == np.int64
    assert queries.tolist() == expected_q
    assert keys.tolist() == expected_k
    # The attended key holds the token that comes next after the query.
    next_positions = queries + 1
    inside = next_positions < len(seq)
    np.testing.assert_array_equal(seq[keys[inside]], seq[next_positions[inside]])


def test_induction_targets_line_up_with_repeated_tokens():
    half = 9
    x = repeated_tokens(rng(4), batch=3, half=half, d_vocab=1000, bos=0)
    queries, keys = induction_targets(half, bos=True)
    assert queries.max() == x.shape[1] - 1
    # Token at q equals the token just before its key: that is the previous occurrence.
    np.testing.assert_array_equal(x[:, queries], x[:, keys - 1])


def test_induction_targets_rejects_bad_half():
    with pytest.raises(ValueError):
        induction_targets(0)


# --- modular_addition ------------------------------------------------------------------


def test_modular_addition_covers_every_pair_once_with_correct_labels():
    p = 13
    task = modular_addition(p=p, train_fraction=0.3, seed=0)
    assert isinstance(task, ModularAddition)
    assert task.p == p and task.d_vocab == p + 1
    x = np.concatenate([task.train_x, task.test_x])
    y = np.concatenate([task.train_y, task.test_y])
    assert x.dtype == np.int64 and y.dtype == np.int64
    assert x.shape == (p * p, 3) and y.shape == (p * p,)
    assert (x[:, 2] == p).all()
    pairs = {(int(a), int(b)) for a, b in x[:, :2]}
    assert pairs == {(a, b) for a in range(p) for b in range(p)}
    for (a, b, _), label in zip(x.tolist(), y.tolist()):
        assert label == (a + b) % p


@pytest.mark.parametrize(("p", "fraction"), [(113, 0.3), (7, 0.5), (5, 0.9), (2, 0.3)])
def test_modular_addition_split_size(p, fraction):
    task = modular_addition(p=p, train_fraction=fraction, seed=1)
    n_train = round(fraction * p * p)
    assert len(task.train_x) == len(task.train_y) == n_train
    assert len(task.test_x) == len(task.test_y) == p * p - n_train


def test_modular_addition_default_is_nandas_setup():
    task = modular_addition()
    assert task.p == 113 and task.d_vocab == 114
    assert len(task.train_x) == round(0.3 * 113 * 113) == 3831


def test_modular_addition_is_seeded():
    a = modular_addition(p=11, seed=3)
    b = modular_addition(p=11, seed=3)
    c = modular_addition(p=11, seed=4)
    np.testing.assert_array_equal(a.train_x, b.train_x)
    np.testing.assert_array_equal(a.test_x, b.test_x)
    assert not np.array_equal(a.train_x, c.train_x)


def test_modular_addition_is_shuffled_not_in_order():
    task = modular_addition(p=11, seed=0)
    ordered = np.array([(a, b) for a in range(11) for b in range(11)])
    assert not np.array_equal(task.train_x[:, :2], ordered[: len(task.train_x)])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"p": 1},
        {"p": 0},
        {"p": 11, "train_fraction": 0.0},
        {"p": 11, "train_fraction": 1.0},
        {"p": 11, "train_fraction": -0.2},
        {"p": 11, "train_fraction": 1.5},
        {"p": 2, "train_fraction": 0.05},  # rounds to no training pair
        {"p": 2, "train_fraction": 0.95},  # rounds to no test pair
        {"p": 11, "train_fraction": "half"},
    ],
)
def test_modular_addition_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        modular_addition(**kwargs)


# --- sorting ---------------------------------------------------------------------------


def test_sorting_rows_are_values_separator_sorted_values():
    length, n_values = 12, 10
    x = sorting(rng(5), batch=64, length=length, n_values=n_values)
    assert x.shape == (64, 2 * length + 1) and x.dtype == np.int64
    values, separator, answer = x[:, :length], x[:, length], x[:, length + 1 :]
    assert (separator == n_values).all()
    assert values.min() >= 0 and values.max() < n_values
    assert (np.diff(answer, axis=1) >= 0).all()
    for row_in, row_out in zip(values, answer):
        assert sorted(row_in.tolist()) == row_out.tolist()
    # With 12 draws from 10 values some rows must repeat a value.
    assert any(len(set(row.tolist())) < length for row in values)


def test_sorting_is_deterministic_from_the_rng():
    np.testing.assert_array_equal(sorting(rng(9), 5, 6, 20), sorting(rng(9), 5, 6, 20))
    assert not np.array_equal(sorting(rng(9), 5, 6, 20), sorting(rng(10), 5, 6, 20))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"batch": 0, "length": 3, "n_values": 5},
        {"batch": 2, "length": 0, "n_values": 5},
        {"batch": 2, "length": 3, "n_values": 0},
    ],
)
def test_sorting_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        sorting(rng(), **kwargs)


# --- batches_from_text -----------------------------------------------------------------


def test_batches_are_contiguous_windows_of_the_ids():
    ids = np.arange(1000, 1100, dtype=np.uint16)  # like a nanoGPT memmap of token ids
    block = 8
    w = batches_from_text(ids, rng(6), batch=32, block=block)
    assert w.shape == (32, block + 1) and w.dtype == np.int64
    starts = w[:, 0] - 1000
    for start, row in zip(starts, w):
        np.testing.assert_array_equal(row, ids[start : start + block + 1])


def test_batches_start_anywhere_in_the_allowed_range_and_never_past_it():
    ids = np.arange(20)
    block = 15  # starts may be 0..4
    w = batches_from_text(ids, rng(7), batch=500, block=block)
    assert set(w[:, 0].tolist()) == {0, 1, 2, 3, 4}
    assert w[:, -1].max() == 19


def test_batches_with_block_one_less_than_the_text_take_the_whole_text():
    ids = np.array([5, 3, 9, 1])
    w = batches_from_text(ids, rng(), batch=3, block=3)
    np.testing.assert_array_equal(w, np.tile(ids, (3, 1)))


def test_batches_are_deterministic_from_the_rng():
    ids = np.random.default_rng(0).integers(0, 65, size=5000)
    np.testing.assert_array_equal(batches_from_text(ids, rng(1), 4, 32), batches_from_text(ids, rng(1), 4, 32))
    assert not np.array_equal(batches_from_text(ids, rng(1), 4, 32), batches_from_text(ids, rng(2), 4, 32))


@pytest.mark.parametrize(
    ("ids", "batch", "block"),
    [
        (np.arange(10), 2, 10),
        (np.arange(10), 2, 11),
        (np.arange(10), 2, 0),
        (np.arange(10), 0, 4),
        (np.arange(12).reshape(3, 4), 2, 2),
        (np.linspace(0, 1, 10), 2, 4),
    ],
)
def test_batches_reject_bad_arguments(ids, batch, block):
    with pytest.raises(ValueError):
        batches_from_text(ids, rng(), batch=batch, block=block)
