"""Nanda et al.'s progress measures: the split of the logits is exact, a pure Fourier table keeps all of
its loss in the restricted part, and on a shortened modular-addition run (p = 59) the measures behave
as published: the restricted loss falls before test accuracy rises, and the excluded loss rises."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from llm_workings.analysis import AnalysisError, progress_measures
from llm_workings.analysis.fourier import all_pairs, embedding_spectrum, key_frequencies
from llm_workings.analysis.progress_measures import measures_from_logits, split_logits, sum_directions
from llm_workings.data.tasks import modular_addition
from llm_workings.train import Trainer
from llm_workings.transformer import Transformer
from llm_workings.transformer.saving import load_weights_into
from llm_workings.zoo import build_task, get_recipe
from llm_workings.zoo.registry import snapshots

P = 11


def test_the_key_directions_are_orthonormal_and_the_split_is_exact() -> None:
    directions = sum_directions(P, [1, 3])
    assert directions.shape == (4, P * P)
    torch.testing.assert_close(directions @ directions.T, torch.eye(4, dtype=torch.float64))
    logits = torch.randn(P * P, P, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    restricted, excluded = split_logits(logits, P, [1, 3])
    torch.testing.assert_close(restricted + excluded, logits + logits.mean(0, keepdim=True))
    torch.testing.assert_close(directions @ excluded, torch.zeros(4, P, dtype=torch.float64), atol=1e-12, rtol=0)


def test_a_pure_fourier_table_is_all_restricted_and_nothing_excluded() -> None:
    """Logits cos(2πw(a + b - c)/p) at a key frequency, as a grokked model computes them: keeping the
    key directions loses nothing, removing them leaves a constant (chance, ln p)."""
    tokens, answers = all_pairs(P)
    a, b = tokens[:, 0].double(), tokens[:, 1].double()
    c = torch.arange(P, dtype=torch.float64)
    logits = 8 * torch.cos(2 * math.pi * 3 * ((a + b)[:, None] - c[None, :]) / P)
    data = modular_addition(P, 0.5, 0)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    m = measures_from_logits(logits, P, [3], x, y)
    full = F.cross_entropy(logits, answers).item()
    assert m["restricted_loss"] == pytest.approx(full, rel=1e-9)
    assert m["excluded_loss"] == pytest.approx(math.log(P), rel=1e-9)
    assert m["train_accuracy"] == m["test_accuracy"] == 1.0
    assert measures_from_logits(logits, P, [2], x, y)["restricted_loss"] == pytest.approx(math.log(P), rel=1e-6)


def test_bad_input_is_refused() -> None:
    with pytest.raises(AnalysisError, match="key frequencies must be integers in 1..5 for p=11"):
        sum_directions(P, [0])
    with pytest.raises(AnalysisError, match="in 1..5"):
        sum_directions(P, [6])
    data = modular_addition(P, 0.5, 0)
    x, y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
    with pytest.raises(AnalysisError, match="train_y is not"):
        measures_from_logits(torch.zeros(P * P, P, dtype=torch.float64), P, [1], x, (y + 1) % P)
    with pytest.raises(AnalysisError, match="at least one"):
        progress_measures([], P, [1], x, y)


@pytest.mark.slow
def test_on_a_shortened_run_the_restricted_loss_falls_first_and_the_excluded_loss_rises(tmp_path) -> None:
    """p = 59, 40% of pairs, d_model 64, constant lr (tests/zoo's shortened modadd), a snapshot every
    25 steps; the key frequencies are the final embedding's, as in the paper."""
    recipe = get_recipe("modadd-113").with_overrides(
        dict(
            steps="500",
            eval_every="25",
            p="59",
            d_vocab="60",
            train_fraction="0.4",
            d_model="64",
            d_mlp="256",
            schedule="constant",
            snapshots="every:25",
        )
    )
    task = build_task(recipe)
    Trainer(
        Transformer(recipe.model_config()).init_weights(0), task, recipe.train_config(), run_dir=tmp_path, progress=False
    ).train()
    models = [
        (s["step"], load_weights_into(Transformer(recipe.model_config()), tmp_path / "snapshots" / s["file"]).eval())
        for s in snapshots(tmp_path)
    ]
    keys = key_frequencies(embedding_spectrum(models[-1][1], 59))
    assert 1 <= len(keys) <= 8
    m = progress_measures(models, 59, keys, task.train_x, task.train_y)
    index = snapshots(tmp_path)
    test_accuracy = [s["test_accuracy"] for s in index]
    memorised = next(i for i, s in enumerate(index) if s["train_accuracy"] == 1.0)
    generalised = next(i for i, a in enumerate(test_accuracy) if a >= 0.99)
    assert test_accuracy[memorised] < 0.5 and m.steps[generalised] - m.steps[memorised] >= 200
    # the restricted loss falls (to half its value at memorisation) well before test accuracy rises
    fallen = next(i for i in range(memorised, len(index)) if m.restricted_loss[i] < 0.5 * m.restricted_loss[memorised])
    assert m.steps[fallen] <= m.steps[generalised] - 100 and test_accuracy[fallen] < 0.9
    assert all(m.restricted_loss[i] < m.test_loss[i] for i in range(memorised, generalised))  # ahead of the test loss all along
    # the excluded loss rises: the training answers come to depend on the key frequencies
    assert max(m.excluded_loss[memorised:generalised]) > 3 * m.excluded_loss[memorised]
    assert m.excluded_loss[-1] > 2 * m.excluded_loss[memorised] and m.excluded_loss[-1] > 20 * m.train_loss[-1]
    # the measures' own train and test losses are the trainer's on the same weights (float16 snapshots)
    assert m.test_loss[-1] == pytest.approx(index[-1]["test_loss"], rel=0.2, abs=0.01)
