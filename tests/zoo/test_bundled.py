"""Every bundled model loads, and the metrics on its card are what it measures now."""

from __future__ import annotations

import pytest
import torch

from llm_workings.cli import main
from llm_workings.train import InductionTask
from llm_workings.transformer import LoadError
from llm_workings.zoo import RECIPES, build_task, card, list_models, load, load_snapshot, snapshots
from llm_workings.zoo.registry import bundled_root
from llm_workings.zoo.runner import final_metrics

BUNDLED = list_models()


def test_every_recipe_is_bundled_within_the_size_budget() -> None:
    assert BUNDLED == sorted(RECIPES)
    size = sum(f.stat().st_size for f in bundled_root().rglob("*") if f.is_file())
    assert size < 25e6, f"bundled models take {size / 1e6:.1f} MB; the budget is 25 MB"


@pytest.mark.parametrize("name", BUNDLED)
def test_card_metrics_are_recomputed(name: str) -> None:
    model, tokenizer = load(name)
    c = card(name)
    recipe = RECIPES[name]
    assert model.cfg.to_dict() == recipe.model_config().to_dict()
    assert c["train_config"] == recipe.train and c["seed"] == recipe.train["seed"] and c["overrides"] == {}
    assert c["parameters"] == sum(p.numel() for p in model.parameters())
    assert c["training_seconds"] > 0 and "cores" in c["machine"] and c["reproduce"].startswith(f"llmw train {name}")
    measured = final_metrics(recipe, model, build_task(recipe, tokenizer))
    assert set(measured) == set(c["metrics"])
    for key, value in c["metrics"].items():
        assert measured[key] == pytest.approx(value, rel=2e-3, abs=2e-4), key


def test_induction_2l_has_an_induction_head_in_layer_1() -> None:
    m = card("induction-2l")["metrics"]
    assert m["induction_score_max_layer1"] > 0.8
    assert m["repeated_half_loss"] < 0.1 * m["first_half_loss"]


def test_induction_2l_snapshots_capture_the_phase_change() -> None:
    index = snapshots("induction-2l")
    scores = [s["induction_score_max_layer1"] for s in index]
    assert scores[0] < 0.1 and scores[-1] > 0.8
    assert any(0.1 < s < 0.8 for s in scores) or max(b - a for a, b in zip(scores, scores[1:])) > 0.5
    middle = next(s for s in index if s["induction_score_max_layer1"] > 0.5)
    model = load_snapshot("induction-2l", middle["step"])  # a stored snapshot reproduces its recorded metrics
    task = InductionTask(model.cfg.d_vocab, RECIPES["induction-2l"].data["half"])
    with torch.no_grad():
        assert task.evaluate(model)["induction_score_max_layer1"] == pytest.approx(middle["induction_score_max_layer1"], abs=0.02)


def test_modadd_113_groks() -> None:
    c = card("modadd-113")
    assert c["metrics"]["test_accuracy"] >= 0.99 and c["metrics"]["train_accuracy"] == 1.0
    evals = c["evals"]
    memorised = next(e["step"] for e in evals if e["train_accuracy"] == 1.0)
    generalised = next(e["step"] for e in evals if e["test_accuracy"] >= 0.99)
    assert memorised < generalised
    steps = [s["step"] for s in snapshots("modadd-113")]
    assert any(memorised <= s < generalised for s in steps) and steps[-1] >= generalised


@pytest.mark.parametrize("name, nanogpt", [("shakespeare-char", 1.88)])
def test_shakespeare_char_is_compared_with_nanogpt(name: str, nanogpt: float) -> None:
    c = card(name)
    assert c["references"]["nanoGPT CPU config val loss"] == nanogpt
    assert c["metrics"]["val_loss"] < 2.1  # the same ballpark as nanoGPT's CPU config at the same steps
    assert c["metrics"]["val_bits_per_byte"] < c["metrics"]["bigram_bits_per_byte"]


def test_austen_bpe_beats_its_ngram_baselines() -> None:
    m = card("austen-bpe")["metrics"]
    assert m["val_bits_per_byte"] < m["bigram_bits_per_byte"] < m["unigram_bits_per_byte"]
    _, tokenizer = load("austen-bpe")
    assert len(tokenizer) == 4096


def test_unknown_models_are_refused_with_the_list(tmp_path) -> None:
    with pytest.raises(LoadError, match="neither a bundled model .*induction-2l.*nor a directory"):
        load("gpt-5")


def test_sample_and_zoo_list_on_the_command_line(capsys) -> None:
    assert main(["sample", "shakespeare-char", "--prompt", "ROMEO:", "--max-new-tokens", "80", "--seed", "1"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("ROMEO:") and len(first) == len("ROMEO:") + 80 + 1  # one character a token, and print's newline
    assert main(["sample", "shakespeare-char", "--prompt", "ROMEO:", "--max-new-tokens", "80", "--seed", "1"]) == 0
    assert capsys.readouterr().out == first  # the seed makes it repeatable
    assert main(["sample", "modadd-113", "--prompt", "1"]) == 2
    assert "no tokenizer" in capsys.readouterr().err
    assert main(["zoo", "list"]) == 0
    listing = capsys.readouterr().out
    assert all(name in listing for name in RECIPES)
