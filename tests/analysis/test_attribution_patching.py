"""Attribution patching: its gradients against an independent autograd run and finite differences,
its shapes against true patching, and its agreement with true patching where the answer is known."""

from __future__ import annotations

import pytest
import torch

from llm_workings.analysis.attribution_patching import attribution_patch, compare, pearson
from llm_workings.analysis.conventions import AnalysisError
from llm_workings.analysis.metrics import LogitDiff
from llm_workings.transformer import Transformer, TransformerConfig


@pytest.fixture(scope="module")
def setup():
    cfg = TransformerConfig(d_model=32, n_layers=2, n_heads=4, d_mlp=64, d_vocab=40, n_ctx=16)
    model = Transformer(cfg).init_weights(seed=3, std=0.2).eval()
    gen = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 40, (3, 6), generator=gen)
    corrupted = clean.clone()
    corrupted[:, 1] = torch.randint(0, 40, (3,), generator=gen)
    return model, clean, corrupted, LogitDiff(torch.tensor([[1, 2], [3, 4], [5, 6]]))


def test_estimate_is_the_gradient_times_the_difference(setup):
    """The gradient at resid_pre of layer 1, computed independently from a leaf tensor."""
    model, clean, corrupted, metric = setup
    estimate = attribution_patch(model, clean, corrupted, metric, "resid_pre", layers=[1])
    _, corrupted_cache = model.run_with_cache(corrupted)
    _, clean_cache = model.run_with_cache(clean)
    x = corrupted_cache["resid_pre", 1].clone().requires_grad_(True)
    metric(model(x, start_at_layer=1)).backward()
    change = ((clean_cache["resid_pre", 1] - corrupted_cache["resid_pre", 1]) * x.grad).sum((0, 2))
    torch.testing.assert_close(estimate.values[0], estimate.corrupted + change, atol=1e-5, rtol=1e-5)


def test_small_patches_follow_the_estimate(setup):
    """Patching a fraction eps of the way moves the metric by eps times the estimated change, to first order."""
    model, clean, corrupted, metric = setup
    estimate = attribution_patch(model, clean, corrupted, metric, "z", ("head",))
    _, clean_cache = model.run_with_cache(clean)
    _, corrupted_cache = model.run_with_cache(corrupted)
    eps = 1e-3
    for layer, head in [(0, 1), (1, 2)]:

        def hook(z, _hook, layer=layer, head=head):
            z = z.clone()
            z[:, :, head] += eps * (clean_cache["z", layer] - corrupted_cache["z", layer])[:, :, head]
            return z

        with torch.no_grad():
            moved = metric(model.run_with_hooks(corrupted, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)]))
        slope = (moved.item() - estimate.corrupted) / eps
        assert slope == pytest.approx(estimate.values[layer, head].item() - estimate.corrupted, rel=1e-2, abs=1e-3)


@pytest.mark.parametrize(
    "activation, indexed",
    [("resid_pre", ("pos",)), ("z", ("pos", "head")), ("pattern", ("head", "dest_pos")), ("mlp_out", ("pos",))],
)
def test_same_cells_as_true_patching(setup, activation, indexed):
    model, clean, corrupted, metric = setup
    check = compare(model, clean, corrupted, metric, activation, indexed, progress=False)
    assert check.estimate.values.shape == check.actual.values.shape
    assert check.estimate.axes == check.actual.axes
    assert check.estimate.clean == pytest.approx(check.actual.clean, abs=1e-5)
    assert check.estimate.corrupted == pytest.approx(check.actual.corrupted, abs=1e-5)
    # cells the corruption cannot reach (positions before it) are exactly unchanged in both
    if indexed[0] == "pos":
        torch.testing.assert_close(check.estimate.values[:, 0], check.actual.values[:, 0])
    assert check.pearson > 0.5


def test_frozen_parameters_still_give_gradients(setup):
    model, clean, corrupted, metric = setup
    model.zero_grad(set_to_none=True)  # an earlier test ran backward on this model
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        frozen = attribution_patch(model, clean, corrupted, metric, "z", ("head",))
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
    live = attribution_patch(model, clean, corrupted, metric, "z", ("head",))
    torch.testing.assert_close(frozen.values, live.values)
    assert all(p.grad is None for p in model.parameters())


def test_pearson():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert pearson(a, 2 * a + 1) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)


def test_a_metric_must_be_a_scalar(setup):
    model, clean, corrupted, _ = setup
    with pytest.raises(AnalysisError, match="scalar"):
        attribution_patch(model, clean, corrupted, lambda logits: logits[:, -1, 0], "resid_pre")
