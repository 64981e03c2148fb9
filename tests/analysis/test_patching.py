"""Activation patching: the same numbers as TransformerLens's patching functions, batched sweeps equal
to one patch at a time, a known answer on induction-2l, and clear errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch
from tl_reference import tokens

from llm_workings.analysis.conventions import AnalysisError
from llm_workings.analysis.metrics import LogitDiff, NextTokenLoss
from llm_workings.analysis.patching import activation_patch, patch_heads, patch_residual


@pytest.fixture(scope="module")
def prompts():
    clean = tokens(2, 8, seed=0)
    corrupted = clean.clone()
    corrupted[:, 2:4] = tokens(2, 2, seed=5)
    return clean, corrupted, LogitDiff(torch.tensor([[5, 7], [9, 11]]))


TL_SWEEPS = [  # (our call, TransformerLens's function)
    (dict(fn=patch_residual), "get_act_patch_resid_pre"),
    (dict(fn=patch_residual, activation="resid_mid"), "get_act_patch_resid_mid"),
    (dict(fn=patch_residual, activation="attn_out"), "get_act_patch_attn_out"),
    (dict(fn=patch_residual, activation="mlp_out"), "get_act_patch_mlp_out"),
    (dict(fn=patch_heads), "get_act_patch_attn_head_out_all_pos"),
    (dict(fn=patch_heads, by_position=True), "get_act_patch_attn_head_out_by_pos"),
    (dict(fn=patch_heads, activation="q", by_position=True), "get_act_patch_attn_head_q_by_pos"),
    (dict(fn=patch_heads, activation="k"), "get_act_patch_attn_head_k_all_pos"),
    (dict(fn=patch_heads, activation="v"), "get_act_patch_attn_head_v_all_pos"),
    (dict(fn=patch_heads, activation="pattern"), "get_act_patch_attn_head_pattern_all_pos"),
    (dict(fn=patch_heads, activation="pattern", by_position=True), "get_act_patch_attn_head_pattern_by_pos"),
]


@pytest.mark.parametrize("ours, theirs", TL_SWEEPS, ids=[t for _, t in TL_SWEEPS])
def test_same_numbers_as_transformer_lens(reference_pair, prompts, ours, theirs):
    from transformer_lens import patching

    model, tl_model = reference_pair
    clean, corrupted, metric = prompts
    kwargs = dict(ours)
    result = kwargs.pop("fn")(model, clean, corrupted, metric, progress=False, **kwargs)
    with torch.no_grad():
        _, clean_cache = tl_model.run_with_cache(clean)
        expected = getattr(patching, theirs)(tl_model, corrupted, clean_cache, metric)
    assert list(result.values.shape) == list(expected.shape)
    torch.testing.assert_close(result.values, expected, atol=1e-4, rtol=0)
    assert result.values.max() - result.values.min() > 0.02  # the patches differ: the comparison has teeth


def test_batched_sweep_equals_one_patch_at_a_time(reference_pair, prompts):
    model, _ = reference_pair
    clean, corrupted, metric = prompts
    swept = patch_heads(model, clean, corrupted, metric, by_position=True, batch_size=7, progress=False)
    _, clean_cache = model.run_with_cache(clean)
    for layer, pos, head in [(0, 0, 0), (1, 3, 2), (2, 7, 3), (2, 2, 1)]:

        def hook(z, _hook, layer=layer, pos=pos, head=head):
            z = z.clone()
            z[:, pos, head] = clean_cache["z", layer][:, pos, head]
            return z

        with torch.no_grad():
            one = metric(model.run_with_hooks(corrupted, fwd_hooks=[(f"blocks.{layer}.attn.hook_z", hook)]))
        assert swept.values[layer, pos, head].item() == pytest.approx(one.item(), abs=1e-5)


def test_endpoints_and_normalization(reference_pair, prompts):
    """Patching the whole stream at the first layer turns the corrupted run into the clean one."""
    model, _ = reference_pair
    clean, corrupted, metric = prompts
    result = patch_residual(model, clean, corrupted, metric, progress=False)
    with torch.no_grad():
        assert result.clean == pytest.approx(metric(model(clean)).item(), abs=1e-6)
        assert result.corrupted == pytest.approx(metric(model(corrupted)).item(), abs=1e-6)
    # position 0 is the same in both prompts; the final stream at the last position is all the metric reads
    assert result.normalized[0, 0].item() == pytest.approx(0.0, abs=1e-5)
    final = patch_residual(model, clean, corrupted, metric, activation="resid_post", progress=False)
    assert final.normalized[-1, -1].item() == pytest.approx(1.0, abs=1e-5)
    noised = patch_residual(model, clean, corrupted, metric, activation="resid_post", direction="noise", progress=False)
    assert noised.normalized[-1, -1].item() == pytest.approx(0.0, abs=1e-5)
    data = json.loads(result.to_json())
    assert data["result_type"] == "activation_patching" and data["axes"] == ["layer", "pos"]
    assert "kind" not in data  # the key that said what a result is was renamed to result_type
    assert len(data["normalized"]) == model.cfg.n_layers


def test_induction_needs_the_first_copy_and_every_layer_1_head(induction_model):
    """Corrupting the first copy of a repeated sequence breaks induction. Only the first copy's
    positions can restore it (the second copy is the same in both runs), and each layer-1 head (all
    four are induction heads) restores part of it on its own."""
    from test_path_patching import induction_pair

    clean, corrupted, mask = induction_pair(induction_model, batch=8)
    metric = NextTokenLoss(clean, mask)
    heads = patch_heads(induction_model, clean, corrupted, metric, progress=False)
    assert heads.corrupted > 4 and heads.clean < 0.1
    # layer-1 heads write the answer: restoring any one of them recovers a good part of the clean loss
    assert (heads.normalized[1] > 0.15).all() and heads.normalized[1].sum() > 0.8
    residual = patch_residual(induction_model, clean, corrupted, metric, progress=False)
    half = (clean.shape[1] - 1) // 2
    # the corruption is in the first copy (positions 1..half): only those positions can restore
    assert residual.normalized[:, half + 1 :].abs().max() < 0.05
    # entering layer 0 a single restored token is useless (its key needs its neighbour too); entering
    # layer 1, each first-copy position carries its token and, from the previous-token head, the one before
    assert residual.normalized[0, 1 : half + 1].max() < 0.05
    assert residual.normalized[1, 1 : half + 1].sum() > 0.5


def test_bad_input_is_named(reference_pair, prompts):
    model, _ = reference_pair
    clean, corrupted, metric = prompts
    with pytest.raises(AnalysisError, match=r"clean tokens \[2, 8\] and corrupted tokens \[2, 6\]"):
        patch_residual(model, clean, corrupted[:, :6], metric)
    with pytest.raises(AnalysisError, match=r"layers must lie in \[0, 3\).*\[5\]"):
        patch_residual(model, clean, corrupted, metric, layers=[0, 5])
    with pytest.raises(AnalysisError, match="resid_pre"):
        patch_residual(model, clean, corrupted, metric, activation="resid_preee")
    with pytest.raises(AnalysisError, match="patch_residual"):
        patch_heads(model, clean, corrupted, metric, activation="resid_pre")
    with pytest.raises(AnalysisError, match="cannot index by head"):
        activation_patch(model, clean, corrupted, metric, "resid_pre", ("head",))
    with pytest.raises(AnalysisError, match="direction"):
        patch_residual(model, clean, corrupted, metric, direction="sideways")
    with pytest.raises(AnalysisError, match=r"token ids must lie in \[0, 97\)"):
        patch_residual(model, clean + 200, corrupted, metric)


def test_attention_only_model_has_no_mlp_to_patch(induction_model):
    clean = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(AnalysisError, match="attention-only"):
        patch_residual(induction_model, clean, clean, NextTokenLoss(clean), activation="mlp_out")


def test_figure_is_written(reference_pair, prompts, tmp_path):
    model, _ = reference_pair
    clean, corrupted, metric = prompts
    result = patch_heads(model, clean, corrupted, metric, by_position=True, progress=False)
    for name in ("heads.png", "heads.svg"):
        path = result.plot(tmp_path / name) and tmp_path / name
        assert path.stat().st_size > 1000
    with pytest.raises(AnalysisError, match="png or .svg"):
        result.plot(tmp_path / "heads.jpg")
