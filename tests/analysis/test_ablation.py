"""Ablation: batched sweeps give the same numbers as one ablation at a time, and the known circuits
of the bundled models break where they should."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm_workings.analysis.ablation import METHODS, ablate, ablate_heads, ablate_layers, ablate_neurons, component
from llm_workings.analysis.conventions import AnalysisError
from llm_workings.analysis.metrics import LogitDiff, NextTokenLoss
from llm_workings.data.tasks import repeated_tokens

HALF = 12


def induction_data(batch: int = 16, seed: int = 0) -> tuple[torch.Tensor, NextTokenLoss]:
    """Repeated random tokens and the loss on the repeated half (the predictions only induction can make)."""
    tokens = torch.tensor(repeated_tokens(np.random.default_rng(seed), batch, HALF, 128))
    mask = torch.zeros(batch, tokens.shape[1] - 1, dtype=torch.bool)
    mask[:, HALF + 1 :] = True
    return tokens, NextTokenLoss(tokens, mask)


def modadd_data(n: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = torch.randint(0, 113, (2, n), generator=torch.Generator().manual_seed(0))
    return torch.stack([a, b, torch.full_like(a, 113)], 1), (a + b) % 113


@pytest.mark.parametrize("method", METHODS)
def test_head_sweep_equals_one_at_a_time(induction_model, method, no_grad):
    tokens, metric = induction_data(batch=6)
    reference = None if method == "zero" else induction_data(batch=10, seed=1)[0]
    # 7 runs of 6 prompts per pass: passes mix nothing across layers, and one layer needs two passes
    sweep = ablate_heads(induction_model, tokens, method, metric, reference=reference, seed=3, batch_size=18)
    single = torch.tensor(
        [
            [ablate(induction_model, tokens, f"L{layer}H{head}", method, metric, reference, seed=3) for head in range(4)]
            for layer in range(2)
        ]
    )
    torch.testing.assert_close(sweep.values, single, atol=1e-5, rtol=0)
    torch.testing.assert_close(sweep.change, single - sweep.baseline)
    assert sweep.baseline == pytest.approx(float(metric(induction_model(tokens))), abs=1e-6)
    assert sweep.labels[:2] == ["L0H0", "L0H1"] and sweep.rows == ["L0", "L1"] and sweep.cols[-1] == "H3"
    assert sweep.change.abs().max() > 1  # the comparison is not between unchanged runs


def test_neuron_and_layer_sweeps_equal_one_at_a_time(modadd_model):
    tokens, answers = modadd_data(n=16)
    metric = LogitDiff(answers)
    neurons = [0, 5, 17, 300, 511]
    sweep = ablate_neurons(modadd_model, tokens, 0, "mean", metric, neurons=neurons, batch_size=32)
    single = torch.tensor([ablate(modadd_model, tokens, f"L0N{n}", "mean", metric) for n in neurons])
    torch.testing.assert_close(sweep.values, single, atol=1e-5, rtol=0)
    assert sweep.rows == [f"L0N{n}" for n in neurons] and sweep.cols is None
    layers = ablate_layers(modadd_model, tokens, "resample", metric, seed=1)
    single = torch.tensor([[ablate(modadd_model, tokens, f"L0 {kind}", "resample", metric, seed=1) for kind in ("attn", "mlp")]])
    torch.testing.assert_close(layers.values, single, atol=1e-5, rtol=0)


def test_induction_circuit(induction_model):
    """Every layer-1 head of this model is an induction head (scores 0.89-0.92), so they back each
    other up: one alone barely matters, all four together destroy in-context copying. The layer-0
    previous-token head H2 is the only one whose output their keys read (K-composition)."""
    tokens, metric = induction_data()
    reference = induction_data(batch=32, seed=1)[0]
    zero = ablate_heads(induction_model, tokens, "zero", metric)
    mean = ablate_heads(induction_model, tokens, "mean", metric, reference=reference)
    all_layer_1 = ablate(induction_model, tokens, [f"L1H{h}" for h in range(4)], "zero", metric)
    print(
        f"repeated-half loss {zero.baseline:.3f}; zero ablation change {zero.change}; mean ablation change "
        f"{mean.change}; all of layer 1 zeroed: {all_layer_1:.2f}"
    )
    assert zero.baseline < 0.1
    assert all_layer_1 > 3
    assert zero.change[1].max() < 0.5
    for change in (zero.change, mean.change):
        assert change[0, 2] > 3  # the previous-token head
        assert change[0, [0, 1, 3]].max() < 0.5


def test_modadd_needs_its_mlp(modadd_model):
    tokens, answers = modadd_data()

    def accuracy(logits: torch.Tensor) -> torch.Tensor:  # a plain function: scored run by run
        return (logits[:, -1, :113].argmax(-1) == answers).float().mean()

    for method in METHODS:
        layers = ablate_layers(modadd_model, tokens, method, accuracy)
        print(f"{method} ablation, accuracy with [attn, mlp] ablated: {layers.values[0].tolist()}")
        assert layers.baseline == 1.0
        assert layers.values[0, 1] < 0.1
        assert layers.cols == ["attn", "mlp"] and layers.metric_name == "accuracy"


def test_resample_is_seeded_and_takes_another_sequence(induction_model, no_grad):
    tokens, metric = induction_data(batch=4)
    first = ablate(induction_model, tokens, "L0H2", "resample", metric, seed=0)
    assert first == ablate(induction_model, tokens, "L0H2", "resample", metric, seed=0)
    # with two sequences and no reference set, each must take the other's activations
    pair, loss = tokens[:2], NextTokenLoss(tokens[:2])
    _, cache = induction_model.run_with_cache(pair, names_filter="blocks.0.hook_attn_out")
    swapped = cache["attn_out", 0].flip(0)
    expected = loss(induction_model.run_with_hooks(pair, fwd_hooks=[("blocks.0.hook_attn_out", lambda x, _: swapped)]))
    for seed in range(3):
        assert ablate(induction_model, pair, "L0 attn", "resample", loss, seed=seed) == pytest.approx(float(expected))
    assert float(expected) > loss(induction_model(pair)) + 1


def test_bad_input(induction_model, modadd_model):
    tokens, _ = induction_data(batch=2)
    with pytest.raises(AnalysisError, match="layer 2 is out of range"):
        ablate(induction_model, tokens, "L2H0")
    with pytest.raises(AnalysisError, match="head 4 is out of range"):
        ablate(induction_model, tokens, ("head", 1, 4))
    with pytest.raises(AnalysisError, match="neuron 512 is out of range"):
        ablate_neurons(modadd_model, modadd_data(4)[0], 0, neurons=[512])
    with pytest.raises(AnalysisError, match="attention-only"):
        ablate_neurons(induction_model, tokens, 0)
    with pytest.raises(AnalysisError, match="unknown ablation method 'random'"):
        ablate_heads(induction_model, tokens, "random")
    with pytest.raises(AnalysisError, match="cannot read the component"):
        ablate(induction_model, tokens, "layer 1 head 0")
    with pytest.raises(AnalysisError, match="as long as the tokens"):
        ablate(induction_model, tokens, "L0H2", "resample", reference=tokens[:, :-2])
    with pytest.raises(AnalysisError, match="as long as the tokens"):
        ablate_heads(induction_model, tokens, "mean", reference=tokens[:, :-2], per_position=True)
    with pytest.raises(AnalysisError, match="at least 2 sequences"):
        ablate(induction_model, tokens[:1], "L0H2", "resample")
    assert component(induction_model, "L1 attn").hook == "blocks.1.hook_attn_out"


def test_serializes_and_draws(induction_model, modadd_model):
    tokens, metric = induction_data(batch=2)
    heads = ablate_heads(induction_model, tokens, metric=metric)
    assert heads.to_dict()["result_type"] == "ablation" and len(heads.to_dict()["change"]) == 2
    fig = heads.plot()
    assert "Zero ablation" in fig.axes[0].get_title() and fig.axes[0].get_ylabel() == "layer"
    neurons = ablate_neurons(modadd_model, modadd_data(4)[0], 0, neurons=range(8))
    ax = neurons.plot().axes[0]
    assert len(ax.patches) == 8 and "next-token loss" in ax.get_ylabel()
