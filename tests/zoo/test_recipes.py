"""Recipes are data: overrides find their table, parse as the type they replace, and bad ones are refused."""

from __future__ import annotations

import json

import pytest

from llm_workings.cli import main, parse_overrides
from llm_workings.train import TrainConfigError
from llm_workings.transformer import ConfigError
from llm_workings.zoo import RECIPES, get_recipe


def test_overrides_reach_the_model_the_trainer_and_the_task() -> None:
    recipe = get_recipe("modadd-113").with_overrides(
        {"d_model": "64", "lr": "1e-3", "grad_clip": "0.5", "p": "59", "d_vocab": "60", "gated_mlp": "true"}
    )
    assert recipe.model_config().d_model == 64 and recipe.model_config().gated_mlp is True
    assert recipe.train_config().lr == 1e-3 and recipe.train_config().grad_clip == 0.5
    assert recipe.data["p"] == 59
    assert RECIPES["modadd-113"].model["d_model"] == 128  # the registered recipe is untouched
    assert get_recipe("shakespeare-char").with_overrides({"grad_clip": "none"}).train_config().grad_clip is None
    assert get_recipe("induction-2l").with_overrides({"snapshots": "log:5"}).train_config().snapshots == "log:5"


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"stepz": "5"}, ValueError, "has no setting 'stepz'; settings are: .*steps"),
        ({"steps": "many"}, ValueError, "steps='many': expected a int"),
        ({"attn_only": "maybe"}, ValueError, "expected a bool"),
        ({"n_heads": "5"}, ConfigError, "not divisible"),
        ({"warmup_steps": "5000"}, TrainConfigError, "warmup_steps must be in"),
    ],
)
def test_bad_overrides_are_refused_before_training(overrides, error, message) -> None:
    with pytest.raises(error, match=message):
        get_recipe("induction-2l").with_overrides(overrides)


def test_command_line_overrides() -> None:
    assert parse_overrides(["--steps=10", "--lr", "3e-3", "--d-model=32"]) == {"steps": "10", "lr": "3e-3", "d_model": "32"}
    with pytest.raises(ValueError, match="expected --setting=value"):
        parse_overrides(["steps=10"])
    with pytest.raises(ValueError, match="--lr needs a value"):
        parse_overrides(["--lr"])


def test_llmw_train_runs_a_recipe_and_refuses_bad_input(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "induction-2l",
                "--out",
                str(out),
                "--no-progress",
                "--steps=6",
                "--warmup_steps=2",
                "--eval_every=3",
                "--snapshots=0,6",
                "--batch_size=4",
            ]
        )
        == 0
    )
    assert {"card.json", "config.json", "model.safetensors", "checkpoint.json"} <= {p.name for p in out.iterdir()}
    card = json.loads((out / "card.json").read_text())
    overrides = "--steps=6 --warmup_steps=2 --eval_every=3 --snapshots=0,6 --batch_size=4"
    assert card["reproduce"] == f"llmw train induction-2l {overrides} --out {out}"  # where it was trained
    assert main(["train", "no-such-recipe"]) == 2
    assert "recipes are: induction-2l" in capsys.readouterr().err
    assert main(["train", "induction-2l", "--out", str(out), "--lr=5"]) == 1  # resuming with other settings
    assert "other settings" in capsys.readouterr().err
