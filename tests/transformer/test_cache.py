"""ActivationCache views of the residual stream: each must add up to what the model computed."""

from __future__ import annotations

import pytest
import torch
from test_hooks import build, tokens

from llm_workings.transformer import act_name


def test_short_names_resolve_like_transformerlens():
    assert act_name("pattern", 1) == "blocks.1.attn.hook_pattern"
    assert act_name("resid_pre", 0) == "blocks.0.hook_resid_pre"
    assert act_name("post", 2) == "blocks.2.mlp.hook_post"
    assert act_name("scale", 1, "ln2") == "blocks.1.ln2.hook_scale"
    assert act_name("normalized") == "ln_final.hook_normalized"
    assert act_name("embed") == "hook_embed"
    with pytest.raises(KeyError, match="give a layer"):
        act_name("resid_pre")
    with pytest.raises(KeyError, match="unknown activation 'resid'"):
        act_name("resid", 0)


def test_cache_lookup_and_repr():
    model = build("gpt2")
    _, cache = model.run_with_cache(tokens())
    assert cache["z", 1] is cache["blocks.1.attn.hook_z"]
    assert ("pattern", 0) in cache and "no_such" not in cache
    assert "ActivationCache with" in repr(cache)
    with pytest.raises(KeyError, match="not a hook name"):
        cache["blocks.9.hook_resid_pre"]


@pytest.mark.parametrize("kind", ["gpt2", "llama", "neox", "attn-only"])
def test_decomposed_residual_sums_to_the_stream(kind):
    model = build(kind)
    _, cache = model.run_with_cache(tokens())
    parts, labels = cache.decompose_resid(return_labels=True)
    torch.testing.assert_close(parts.sum(0), cache["resid_post", 1], atol=1e-4, rtol=1e-4)
    assert labels[0] == "embed" and labels[-1] == ("1_attn_out" if kind == "attn-only" else "1_mlp_out")
    before_block_1 = cache.decompose_resid(layer=1)
    torch.testing.assert_close(before_block_1.sum(0), cache["resid_pre", 1], atol=1e-4, rtol=1e-4)


def test_accumulated_residual_is_the_stream_before_each_block():
    model = build("gpt2")
    _, cache = model.run_with_cache(tokens())
    stack, labels = cache.accumulated_resid(incl_mid=True, return_labels=True)
    assert labels == ["0_pre", "0_mid", "1_pre", "1_mid", "final_post"]
    torch.testing.assert_close(stack[2], cache["resid_pre", 1])
    torch.testing.assert_close(stack[-1], cache["resid_post", 1])
    last = cache.accumulated_resid(pos_slice=-1)  # an int drops the axis, as indexing does
    assert last.shape == (3, 2, 32)
    torch.testing.assert_close(last, cache.accumulated_resid()[:, :, -1])


@pytest.mark.parametrize("cached", ["result", "z only"])
def test_head_results_sum_to_attention_output(cached):
    model = build("llama")
    names = None if cached == "result" else (lambda n: n.endswith(("hook_z", "hook_attn_out")))
    _, cache = model.run_with_cache(tokens(), names_filter=names)
    stack, labels = cache.stack_head_results(return_labels=True)
    assert stack.shape == (8, 2, 12, 32) and labels[5] == "L1H1"
    torch.testing.assert_close(stack[4:].sum(0), cache["attn_out", 1], atol=1e-5, rtol=1e-5)  # no b_O in Llama


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_apply_ln_to_stack_is_linear_given_the_cached_scale(kind):
    """After folding, the final norm has no gain or bias, so the normed parts sum to its output."""
    model = build(kind).fold_layer_norm()
    _, cache = model.run_with_cache(tokens())
    parts = cache.decompose_resid(apply_ln=True)
    torch.testing.assert_close(parts.sum(0), cache["ln_final.hook_normalized"], atol=1e-4, rtol=1e-4)
    into_block_1 = cache.apply_ln_to_stack(cache["resid_pre", 1][None], layer=1)
    torch.testing.assert_close(into_block_1[0], cache["normalized", 1, "ln1"], atol=1e-4, rtol=1e-4)
    into_mlp_0 = cache.apply_ln_to_stack(cache["resid_mid", 0][None], layer=0, mlp_input=True)
    torch.testing.assert_close(into_mlp_0[0], cache["normalized", 0, "ln2"], atol=1e-4, rtol=1e-4)


def test_accumulated_residual_up_to_a_layer_includes_that_layer_like_transformerlens():
    model = build("gpt2")
    _, cache = model.run_with_cache(tokens())
    stack, labels = cache.accumulated_resid(1, return_labels=True)
    assert labels == ["0_pre", "1_pre"]
    torch.testing.assert_close(stack[-1], cache["resid_pre", 1])
    assert cache.accumulated_resid(0, return_labels=True)[1] == ["0_pre"]
    assert cache.accumulated_resid(-1).shape == cache.accumulated_resid().shape == (3, 2, 12, 32)
    assert cache.stack_head_results(0).shape == (0, 2, 12, 32)  # nothing before block 0: an empty stack
    assert cache.decompose_resid(0, incl_embeds=False).shape == (0, 2, 12, 32)
    with pytest.raises(ValueError, match=r"layer must be in \[0, 2\]"):
        cache.accumulated_resid(3)
