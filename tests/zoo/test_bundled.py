"""Every bundled model loads, and the metrics on its card are what it measures now."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open

from llm_workings.cli import main
from llm_workings.train import InductionTask
from llm_workings.transformer import LoadError
from llm_workings.zoo import RECIPES, build_task, card, list_models, load, load_snapshot, snapshots
from llm_workings.zoo.registry import bundled_root
from llm_workings.zoo.runner import final_metrics, locate_transition

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


@pytest.mark.parametrize("name", ["induction-2l", "modadd-113"])
def test_the_transition_on_the_card_spans_at_least_8_snapshots(name: str) -> None:
    """The card says where the behaviour the model exists to show happens, found from its evals by the
    recipe's rule, and records the snapshot schedule, which is dense enough to replay that stretch."""
    c = card(name)
    assert c["transition"] == locate_transition(c["evals"], RECIPES[name].transition) is not None
    assert c["snapshot_steps"] == [s["step"] for s in snapshots(name)]
    start, end = c["transition"]["start_step"], c["transition"]["end_step"]
    assert sum(start <= step <= end for step in c["snapshot_steps"]) >= 8
    assert all(s["file"].endswith(".safetensors") for s in snapshots(name))
    # the snapshots are float16, as the schedule's size budget assumes
    first = safe_open(bundled_root() / name / "snapshots" / snapshots(name)[0]["file"], "pt")
    assert {first.get_tensor(k).dtype for k in first.keys()} == {torch.float16}


def test_locating_a_transition() -> None:
    evals = [{"step": s, "acc": a} for s, a in [(0, 0.1), (10, 0.3), (20, 0.1), (30, 0.5), (40, 0.995), (50, 1.0)]]
    rising = {"name": "g", "metric": "acc", "start": 0.35, "end": 0.99}
    assert locate_transition(evals, rising) == {**rising, "start_step": 20, "end_step": 40}
    falling = {"name": "f", "metric": "loss", "start": 0.8, "end": 0.2}
    losses = [{"step": s, "loss": v} for s, v in [(0, 1.0), (5, 0.9), (10, 0.5), (15, 0.1)]]
    assert locate_transition(losses, falling) == {**falling, "start_step": 5, "end_step": 15}
    assert locate_transition(evals[:3], rising) is None  # never got there: a shortened run
    assert locate_transition(evals, {}) is None


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
