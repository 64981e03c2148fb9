"""Shortened recipes, retrained from nothing: the behaviour each bundled model exists to show must appear."""

from __future__ import annotations

import pytest

from llm_workings.train import Trainer
from llm_workings.transformer import Transformer
from llm_workings.zoo import build_task, get_recipe

pytestmark = pytest.mark.slow


def train(name: str, **overrides: str):
    recipe = get_recipe(name).with_overrides({"snapshots": "none", **overrides})
    task = build_task(recipe)
    model = Transformer(recipe.model_config()).init_weights(recipe.train_config().seed)
    return Trainer(model, task, recipe.train_config(), progress=False).train()


def test_induction_heads_form_in_a_phase_change() -> None:
    """Layer 1 starts with no induction head and ends with one, helped by a previous-token head in layer 0;
    the loss on the repeated half falls far below the first half's."""
    evals = train("induction-2l", steps="700", eval_every="50").evals
    first, last = evals[0], evals[-1]
    assert first["induction_score_max_layer1"] < 0.1 and first["repeated_over_first"] > 0.9
    assert last["induction_score_max_layer1"] > 0.6
    assert last["prev_token_score_max_layer0"] > 0.4
    assert last["repeated_over_first"] < 0.25
    assert last["induction_score_max_layer0"] < 0.1  # one layer cannot do it alone: the scores say where it lives
    # a phase change, not a slow drift: most of the fall happens within a few hundred steps
    drops = [a["repeated_over_first"] - b["repeated_over_first"] for a, b in zip(evals, evals[1:])]
    assert max(drops[i] + drops[i + 1] + drops[i + 2] for i in range(len(drops) - 2)) > 0.4


def test_modular_addition_memorises_before_it_generalises() -> None:
    """A smaller cousin of modadd-113 (p = 59, 40% of pairs, d_model 64, constant lr, as a 500-step cosine
    would decay before it groks): train accuracy reaches 100% while test accuracy is still low, and test
    accuracy gets there later."""
    evals = train(
        "modadd-113",
        steps="500",
        eval_every="25",
        p="59",
        d_vocab="60",
        train_fraction="0.4",
        d_model="64",
        d_mlp="256",
        schedule="constant",
    ).evals
    memorised = next(e for e in evals if e["train_accuracy"] == 1.0)
    generalised = next(e for e in evals if e["test_accuracy"] >= 0.99)
    assert memorised["step"] < generalised["step"] - 100
    assert memorised["test_accuracy"] < 0.6
    assert evals[-1]["train_accuracy"] == 1.0 and evals[-1]["test_accuracy"] >= 0.99
