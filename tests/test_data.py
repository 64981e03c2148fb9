"""Toy datasets: seeded, labelled by their defining rule, split as asked."""

from __future__ import annotations

import numpy as np
import pytest

from llm_workings.data import DATASETS, XOR_LABELS, XOR_POINTS, make_dataset


def test_xor_is_the_four_clean_points():
    d = make_dataset("xor", n_samples=500, noise=0.3)
    np.testing.assert_array_equal(d.X_train, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(d.y_train, [0, 1, 1, 0])
    np.testing.assert_array_equal(d.X_test, XOR_POINTS)
    np.testing.assert_array_equal(d.y_test, XOR_LABELS)


def test_noisy_xor_is_labelled_by_quadrant_with_the_asked_flip_rate():
    d = make_dataset("noisy-xor", n_samples=2000, noise=0.2, train_ratio=0.5, seed=7)
    X = np.concatenate([d.X_train, d.X_test])
    clean = np.concatenate([d.y_train_clean, d.y_test_clean])
    noisy = np.concatenate([d.y_train, d.y_test])
    assert X.min() >= 0.0 and X.max() <= 1.0
    np.testing.assert_array_equal(clean, (X[:, 0] > 0.5) ^ (X[:, 1] > 0.5))
    assert abs((noisy != clean).mean() - 0.2) < 0.03


@pytest.mark.parametrize("name", DATASETS[1:])
def test_datasets_are_seeded_split_and_inside_their_domain(name):
    a = make_dataset(name, n_samples=300, noise=0.1, train_ratio=0.7, seed=3)
    b = make_dataset(name, n_samples=300, noise=0.1, train_ratio=0.7, seed=3)
    c = make_dataset(name, n_samples=300, noise=0.1, train_ratio=0.7, seed=4)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_train, c.X_train)
    assert len(a.X_train) == 210 and len(a.X_test) == 90
    X = np.concatenate([a.X_train, a.X_test])
    x0, x1, y0, y1 = a.domain
    assert x0 <= X[:, 0].min() and X[:, 0].max() <= x1 and y0 <= X[:, 1].min() and X[:, 1].max() <= y1
    labels = np.concatenate([a.y_train_clean, a.y_test_clean])
    balance = 0.1 if name == "noisy-xor" else 0.01  # noisy XOR samples the square uniformly
    assert set(labels) == {0, 1} and abs(labels.mean() - 0.5) < balance


def test_circle_labels_follow_the_radius():
    d = make_dataset("circle", 400, seed=0)
    r = np.linalg.norm(d.X_train, axis=1)
    assert (r[d.y_train_clean == 1] <= 0.5).all() and (r[d.y_train_clean == 0] >= 0.7).all()


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(name="swirl"), "unknown dataset 'swirl'"),
        (dict(name="circle", noise=0.7), r"noise is a label-flip probability and must be in \[0, 0.5\]"),
        (dict(name="circle", train_ratio=1.0), "train_ratio must be strictly between 0 and 1"),
        (dict(name="spiral", n_samples=2), "n_samples must be at least 4"),
    ],
)
def test_bad_dataset_arguments_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        make_dataset(**kwargs)
