"""Probes: known answers on synthetic data, the split and its standardization, control tasks, and
layer-by-layer probes on the bundled language models (shakespeare-char and austen-bpe)."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
import torch

from llm_workings import zoo
from llm_workings.analysis.conventions import AnalysisError
from llm_workings.analysis.probing import (
    LayerProbes,
    ProbeResult,
    control_labels,
    harvest,
    hook_names,
    probe_layers,
    split_indices,
    train_probe,
)
from llm_workings.data import load_corpus
from llm_workings.data.text_labels import inside_quotation, speaker_line, text_windows


def linear_data(n: int = 2000, d: int = 10, n_classes: int = 2, seed: int = 0):
    """Features and labels that a linear map separates exactly (class = argmax of X @ W)."""
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen) * torch.linspace(0.1, 10, d)  # unequal scales: standardization matters
    W = torch.randn(n_classes, d, generator=gen) / torch.linspace(0.1, 10, d)
    scores = X @ W.T
    y = (scores[:, 0] > 0).long() if n_classes == 2 else scores.argmax(-1)
    return X, y


@contextmanager
def one_torch_thread():
    """Module fixtures run before the per-test one_thread fixture; two threads on a busy two-core
    machine run these small matmuls about twice as slowly as one."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# -- known answers on synthetic data ------------------------------------------------------------------
@pytest.mark.parametrize("n_classes", [2, 4])
def test_logistic_probe_recovers_a_linear_rule(n_classes):
    X, y = linear_data(n_classes=n_classes)
    probe = train_probe(X, y, l2=1e-4)
    assert probe.score_name == "accuracy" and probe.classes == list(range(n_classes))
    assert probe.weights.shape == (1 if n_classes == 2 else n_classes, 10)
    assert probe.test_score > 0.96 and probe.train_score > 0.97  # measured ~0.99 for both
    assert probe.baseline < 0.6
    assert (probe.n_train, probe.n_test) == (1600, 400)
    # weights and bias act on raw features: predict reproduces the reported training accuracy
    train, _ = split_indices(len(X), 0.2, 0)
    assert (probe.predict(X[train]) == y[train]).float().mean().item() == pytest.approx(probe.train_score)


def test_control_labels_on_the_same_features_score_near_chance():
    X, y = linear_data()
    types = torch.randint(0, 300, (len(X),), generator=torch.Generator().manual_seed(1))  # unrelated to X
    control = train_probe(X, control_labels(types, y, seed=0))
    assert control.test_score < control.baseline + 0.05  # nothing in X predicts a type's random label


def test_linear_probe_regression_r2():
    X, _ = linear_data()
    w = torch.randn(10, generator=torch.Generator().manual_seed(2)) / torch.linspace(0.1, 10, 10)
    signal = X @ w
    y = signal + 0.5 * signal.std() * torch.randn(len(X), generator=torch.Generator().manual_seed(3))
    probe = train_probe(X, y, probe_kind="linear", l2=1e-6)
    assert probe.score_name == "r2" and probe.classes is None
    assert probe.test_score == pytest.approx(0.8, abs=0.04)  # R² = 1 / (1 + 0.5²)
    assert abs(probe.baseline) < 0.02
    assert torch.allclose(probe.predict(X)[:5], (X @ probe.weights.T + probe.bias)[:5, 0].double(), atol=1e-4)
    # integer labels with the linear kind: one-vs-rest least squares, scored with accuracy
    X, y = linear_data(n_classes=3)
    assert train_probe(X, y, probe_kind="linear").test_score > 0.85


def test_split_is_deterministic_and_test_rows_never_reach_the_standardization():
    X, y = linear_data()
    train, test = split_indices(len(X), 0.2, seed=0)
    assert sorted(torch.cat([train, test]).tolist()) == list(range(len(X))) and len(test) == 400
    assert torch.equal(split_indices(len(X), 0.2, 0)[1], test)
    assert not torch.equal(split_indices(len(X), 0.2, 1)[1], test)

    first, again = train_probe(X, y, seed=0), train_probe(X, y, seed=0)
    assert torch.equal(first.weights, again.weights) and first.test_score == again.test_score
    assert not torch.equal(train_probe(X, y, seed=1).weights, first.weights)

    corrupted = X.clone()
    corrupted[test] = 1e6 * torch.randn(len(test), X.shape[1])  # wild test rows
    leaked = train_probe(corrupted, y, seed=0)
    assert torch.equal(leaked.weights, first.weights) and torch.equal(leaked.bias, first.bias)
    assert leaked.train_score == first.train_score


def test_bad_input_raises_clear_errors():
    X, y = linear_data(n=100)
    with pytest.raises(AnalysisError, match="one label per row"):
        train_probe(X, y[:-1])
    with pytest.raises(AnalysisError, match="at least 2 classes"):
        train_probe(X, torch.zeros(100, dtype=torch.long))
    with pytest.raises(AnalysisError, match="probe_kind must be one of"):
        train_probe(X, y, probe_kind="mlp")
    with pytest.raises(AnalysisError, match="integer class labels"):
        train_probe(X, y.float())
    with pytest.raises(AnalysisError, match=r"features \[n, d\]"):
        train_probe(X[:, 0], y)
    with pytest.raises(AnalysisError, match="test_fraction"):
        train_probe(X, y, test_fraction=1.0)
    with pytest.raises(AnalysisError, match="same shape"):
        control_labels(torch.zeros(5), torch.zeros(6))


def test_control_labels_are_fixed_per_type_and_follow_the_label_distribution():
    gen = torch.Generator().manual_seed(0)
    types = torch.randint(0, 5000, (20000,), generator=gen)
    labels = (torch.rand(20000, generator=gen) < 0.3).long()
    control = control_labels(types, labels, seed=0)
    for t in types[:50].tolist():
        assert control[types == t].unique().numel() == 1
    per_type = torch.zeros(5000, dtype=torch.long).index_put_((types,), control)
    assert per_type[types.unique()].float().mean().item() == pytest.approx(0.3, abs=0.03)
    assert torch.equal(control, control_labels(types, labels, seed=0))
    assert not torch.equal(control, control_labels(types, labels, seed=1))


# -- harvesting activations ---------------------------------------------------------------------------
def test_harvest_matches_the_cache_and_respects_the_mask(shakespeare_model):
    tokens = torch.randint(0, 65, (5, 12), generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(5, 12, dtype=torch.bool)
    mask[:, 4:] = True
    acts = harvest(
        shakespeare_model, tokens, [("resid_post", 1), "blocks.0.attn.hook_z", "embed"], mask=mask, batch_size=2, progress=False
    )
    assert list(acts) == ["blocks.1.hook_resid_post", "blocks.0.attn.hook_z", "hook_embed"]
    _, cache = shakespeare_model.run_with_cache(tokens)
    assert torch.allclose(acts["blocks.1.hook_resid_post"], cache["blocks.1.hook_resid_post"][mask], atol=1e-5)
    assert acts["blocks.0.attn.hook_z"].shape == (40, 128)  # 4 heads x 32 flattened
    assert torch.allclose(acts["hook_embed"], cache["hook_embed"][mask])
    whole = harvest(shakespeare_model, tokens, "ln_final.hook_normalized", progress=False)
    assert whole["ln_final.hook_normalized"].shape == (60, 128)


def test_harvest_rejects_unknown_hooks(shakespeare_model):
    tokens = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(AnalysisError, match="no hook point"):
        harvest(shakespeare_model, tokens, ("resid_post", 9), progress=False)
    with pytest.raises(AnalysisError, match="unknown activation"):
        harvest(shakespeare_model, tokens, "resid_psot", progress=False)
    with pytest.raises(AnalysisError, match="not one vector per position"):
        hook_names(shakespeare_model, ("pattern", 0))
    with pytest.raises(AnalysisError, match="mask must match"):
        harvest(shakespeare_model, tokens, "embed", mask=torch.ones(2, 4, dtype=torch.bool), progress=False)


# -- probes on the bundled language models ------------------------------------------------------------
@pytest.fixture(scope="module")
def speaker_probes(shakespeare_model):
    tokenizer = zoo.load("shakespeare-char")[1]
    text = load_corpus("tinyshakespeare").val[: 48 * 64]
    tokens, labels = map(torch.from_numpy, text_windows(text, speaker_line(text), tokenizer, length=64))
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, 16:] = True  # early positions cannot see back to the blank line
    with one_torch_thread():
        return probe_layers(shakespeare_model, tokens, labels, mask=mask, progress=False)


def test_speaker_line_is_read_better_after_attention_than_from_the_embedding(speaker_probes):
    r = speaker_probes
    assert r.layer_labels == ["embed", "0", "1", "2", "3"]
    assert r.hook_names[0] == "blocks.0.hook_resid_pre" and r.hook_names[-1] == "blocks.3.hook_resid_post"
    # measured: test accuracy embed 0.954, layers 0-3 0.998 0.996 0.991 0.993; majority class 0.937
    error = 1 - r.test_score
    assert error[2] < error[0] / 3
    assert r.test_score[2] > r.baseline + 0.04
    # 65 characters: a linear probe memorizes any per-character labelling (measured control 0.998-1.0)
    assert r.control_test_score.min() > 0.95 and r.n_types <= 65


@pytest.fixture(scope="module")
def quotation_probes():
    model, tokenizer = zoo.load("austen-bpe")
    text = load_corpus("austen").val[:20000]
    tokens, labels = map(torch.from_numpy, text_windows(text, inside_quotation(text), tokenizer, length=128, n_windows=32))
    mask = torch.zeros_like(tokens, dtype=torch.bool)
    mask[:, 32:] = True  # early positions may not see the paragraph's opening quote
    with one_torch_thread():
        return probe_layers(model.eval(), tokens, labels, mask=mask, progress=False)


def test_inside_quotation_beats_its_control_task_in_later_layers(quotation_probes):
    r = quotation_probes
    # measured (seed 0): probe test 0.642 0.808 0.888 0.967 0.976; control 0.749 0.718 0.733 0.726 0.717;
    # selectivity -0.107 0.090 0.155 0.241 0.259; majority class 0.523; 906 token types
    assert r.selectivity.max() > 0.15
    assert r.selectivity[0] < 0.05  # the embedding knows the token, not whether a quotation is open
    assert r.test_score[3] > r.test_score[0] + 0.2
    assert r.n_types > 500


def test_layer_probes_serialize_and_draw(quotation_probes, tmp_path):
    data = json.loads(quotation_probes.to_json())
    assert data["result_type"] == "layer_probes" and len(data["selectivity"]) == 5
    quotation_probes.plot(tmp_path / "probes.png")
    assert (tmp_path / "probes.png").stat().st_size > 1000
    probe = train_probe(*linear_data(n=300))
    assert isinstance(probe, ProbeResult) and json.loads(probe.to_json())["result_type"] == "probe"
    probe.plot(tmp_path / "probe.png")
    assert isinstance(quotation_probes, LayerProbes)
