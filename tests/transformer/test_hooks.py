"""Hook points: names, shapes, reading and replacing activations, and pay-for-what-you-hook."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from llm_workings.transformer import Transformer, TransformerConfig

GPT2_LIKE = dict(d_model=32, n_layers=2, n_heads=4, d_vocab=50, n_ctx=24)
LLAMA_LIKE = dict(
    d_model=32,
    n_layers=2,
    n_heads=4,
    n_kv_heads=2,
    d_vocab=50,
    n_ctx=24,
    positions="rotary",
    norm="rmsnorm",
    act="silu",
    gated_mlp=True,
    bias_qkv=False,
    bias_attn_out=False,
    bias_mlp=False,
)
NEOX_LIKE = dict(
    d_model=32,
    n_layers=2,
    n_heads=4,
    d_vocab=50,
    n_ctx=24,
    positions="rotary",
    rotary_pct=0.25,
    parallel_residual=True,
    act="gelu",
)
ATTN_ONLY = dict(d_model=32, n_layers=2, n_heads=4, d_vocab=50, n_ctx=24, attn_only=True)
MISTRAL_LIKE = dict(LLAMA_LIKE, sliding_window=5)
CONFIGS = {"gpt2": GPT2_LIKE, "llama": LLAMA_LIKE, "neox": NEOX_LIKE, "attn-only": ATTN_ONLY, "mistral": MISTRAL_LIKE}


def build(kind: str = "gpt2", seed: int = 0) -> Transformer:
    model = Transformer(TransformerConfig(**CONFIGS[kind])).init_weights(seed, std=0.3)
    with torch.no_grad():  # non-trivial norms and biases, so their paths are exercised
        gen = torch.Generator().manual_seed(seed + 1)
        for name, p in model.named_parameters():
            if name.endswith((".w", ".b")) or name.rsplit(".", 1)[-1].startswith("b"):
                p.add_(torch.randn(p.shape, generator=gen) * 0.2)
    return model.eval()


def tokens(batch: int = 2, pos: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 50, (batch, pos), generator=torch.Generator().manual_seed(seed))


def test_hook_names_follow_transformerlens():
    names = set(build("gpt2").hook_dict)
    expected = {"hook_embed", "hook_pos_embed", "ln_final.hook_scale", "ln_final.hook_normalized"}
    for layer in range(2):
        expected |= {f"blocks.{layer}.hook_{n}" for n in ("resid_pre", "attn_out", "resid_mid", "mlp_out", "resid_post")}
        expected |= {f"blocks.{layer}.attn.hook_{n}" for n in ("q", "k", "v", "attn_scores", "pattern", "z", "result")}
        expected |= {f"blocks.{layer}.mlp.hook_{n}" for n in ("pre", "post")}
        expected |= {f"blocks.{layer}.{ln}.hook_{n}" for ln in ("ln1", "ln2") for n in ("scale", "normalized")}
    assert names == expected


def test_rotary_gated_parallel_and_attn_only_models_have_their_own_hooks():
    llama = set(build("llama").hook_dict)
    assert {"blocks.0.attn.hook_rot_q", "blocks.0.attn.hook_rot_k", "blocks.0.mlp.hook_pre_linear"} <= llama
    assert "hook_pos_embed" not in llama
    assert "blocks.0.hook_resid_mid" not in set(build("neox").hook_dict)  # both sublayers read resid_pre
    attn_only = set(build("attn-only").hook_dict)
    assert not any("mlp" in n or "ln2" in n for n in attn_only)


def test_cached_shapes():
    model = build("llama")
    _, cache = model.run_with_cache(tokens(2, 12))
    assert cache["blocks.1.hook_resid_pre"].shape == (2, 12, 32)
    assert cache["blocks.0.attn.hook_q"].shape == (2, 12, 4, 8)
    assert cache["blocks.0.attn.hook_k"].shape == (2, 12, 2, 8)  # grouped-query: 2 key/value heads
    assert cache["blocks.0.attn.hook_pattern"].shape == (2, 4, 12, 12)
    assert cache["blocks.0.attn.hook_result"].shape == (2, 12, 4, 32)
    assert cache["blocks.0.mlp.hook_post"].shape == (2, 12, 128)
    assert cache["blocks.0.ln1.hook_scale"].shape == (2, 12, 1)
    pattern = cache["pattern", 1]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 4, 12))
    assert torch.all(pattern.triu(1) == 0), "a query attended to a later position"


def test_cached_activations_recompute_the_next_ones():
    model = build("gpt2")
    _, cache = model.run_with_cache(tokens())
    attn = model.blocks[0].attn
    q = torch.einsum("bpm,hmd->bphd", cache["normalized", 0, "ln1"], attn.W_Q) + attn.b_Q
    torch.testing.assert_close(q, cache["q", 0], atol=1e-5, rtol=1e-5)
    heads = cache["result", 0].sum(2) + attn.b_O
    torch.testing.assert_close(heads, cache["attn_out", 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache["resid_pre", 0] + cache["attn_out", 0], cache["resid_mid", 0])
    torch.testing.assert_close(cache["resid_post", 0], cache["resid_pre", 1])
    x = cache["resid_mid", 0]
    expected_scale = (x.var(-1, keepdim=True, correction=0) + model.cfg.norm_eps).sqrt()
    torch.testing.assert_close(cache["scale", 0, "ln2"], expected_scale, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_fused_and_explicit_attention_agree(kind):
    """SDPA when nothing reads the pattern; explicit when a hook may edit it. Same numbers."""
    model = build(kind)
    toks = tokens(2, 12)
    fused = model(toks)
    editing_noop = [(lambda name: name.endswith("hook_pattern"), lambda x, hook: x * 1.0)]
    explicit = model.run_with_hooks(toks, fwd_hooks=editing_noop)
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=1e-5)
    assert not model.blocks[0].attn.explicit, "hooks outlived run_with_hooks"


def test_zero_ablating_a_head_equals_removing_its_output_weights():
    model = build("gpt2")
    toks = tokens()

    def ablate(z, hook):
        z[:, :, 2] = 0.0  # in place, returning None, as many notebooks do

    ablated = model.run_with_hooks(toks, fwd_hooks=[("blocks.1.attn.hook_z", ablate)])
    with torch.no_grad():  # as for any parameter edited in place
        model.blocks[1].attn.W_O[2] = 0.0  # the view writes through to the fused storage
    torch.testing.assert_close(ablated, model(toks), atol=1e-5, rtol=1e-5)


def test_replacing_the_pattern_takes_effect():
    model = build("gpt2")
    toks = tokens(1, 6)

    def uniform(pattern, hook):
        return torch.ones_like(pattern).tril() / torch.arange(1, 7).view(1, 1, 6, 1)

    _, cache = model.run_with_cache(toks, names_filter=lambda n: n.startswith("blocks.0.attn"))
    with model.hooks([("blocks.0.attn.hook_pattern", uniform)]):
        _, edited = model.run_with_cache(toks, names_filter="blocks.0.attn.hook_z")
    v = cache["v", 0]  # [batch, pos, head, d_head]: z under uniform attention is the running mean of v
    running_mean = v.cumsum(1) / torch.arange(1, 7).view(1, 6, 1, 1)
    torch.testing.assert_close(edited["z", 0], running_mean, atol=1e-5, rtol=1e-5)


def test_editing_a_layer_norm_scale_is_honoured():
    model = build("gpt2")
    toks = tokens()
    baseline = model(toks)
    read = model.run_with_cache(toks, names_filter="blocks.0.ln1.hook_scale")[0]
    torch.testing.assert_close(read, baseline)  # a cache reader changes nothing
    doubled = model.run_with_hooks(toks, fwd_hooks=[("blocks.0.ln1.hook_scale", lambda s, h: s * 2)])
    assert (doubled - baseline).abs().max() > 1e-3


def test_names_filter_keeps_only_what_was_asked():
    model = build("gpt2")
    toks = tokens()
    _, one = model.run_with_cache(toks, names_filter="blocks.0.hook_resid_post")
    assert list(one) == ["blocks.0.hook_resid_post"]
    _, listed = model.run_with_cache(toks, names_filter=["hook_embed", "blocks.1.attn.hook_pattern"])
    assert set(listed) == {"hook_embed", "blocks.1.attn.hook_pattern"}
    _, by_fn = model.run_with_cache(toks, names_filter=lambda n: n.endswith("resid_pre"))
    assert set(by_fn) == {"blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"}
    with pytest.raises(KeyError, match="not cached"):
        one["blocks.1.hook_resid_post"]


def test_unknown_hook_names_suggest_the_right_one():
    model = build("gpt2")
    with pytest.raises(KeyError, match="did you mean blocks.0.hook_resid_pre"):
        model.run_with_hooks(tokens(), fwd_hooks=[("blocks.0.hook_resid_pr", lambda x, h: None)])


def test_hooks_are_removed_after_an_error():
    model = build("gpt2")

    def broken(x, hook):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        model.run_with_hooks(tokens(), fwd_hooks=[(lambda n: "resid" in n, broken)])
    assert not any(hp.active for hp in model.hook_dict.values())


def test_a_hook_returning_the_wrong_shape_is_named():
    model = build("gpt2")
    with pytest.raises(ValueError, match=r"blocks.0.hook_attn_out returned shape \[2, 12\]"):
        model.run_with_hooks(tokens(), fwd_hooks=[("blocks.0.hook_attn_out", lambda x, h: x[..., 0])])


def test_stop_at_layer_returns_the_stream_entering_that_block():
    model = build("llama")
    toks = tokens()
    _, cache = model.run_with_cache(toks, names_filter="blocks.1.hook_resid_pre")
    torch.testing.assert_close(model(toks, stop_at_layer=1), cache["resid_pre", 1])


def test_loss_is_next_token_cross_entropy():
    model = build("gpt2")
    toks = tokens()
    logits, loss = model(toks, return_type="both")
    manual = F.cross_entropy(logits[:, :-1].reshape(-1, 50), toks[:, 1:].reshape(-1))
    torch.testing.assert_close(loss, manual)
    per_token = model(toks, return_type="loss", loss_per_token=True)
    assert per_token.shape == (2, 11)
    torch.testing.assert_close(per_token.mean(), manual)


def test_backward_hooks_cache_gradients_equal_to_autograd():
    model = build("gpt2")
    toks = tokens()
    loss, cache = model.run_with_cache(
        toks, return_type="loss", incl_bwd=True, names_filter=["blocks.1.hook_resid_mid", "blocks.0.attn.hook_pattern"]
    )
    assert cache["blocks.0.attn.hook_pattern_grad"].shape == cache["pattern", 0].shape
    captured = {}

    def keep(x, hook):
        x.retain_grad()
        captured["x"] = x

    model.zero_grad()
    model.run_with_hooks(toks, return_type="loss", fwd_hooks=[("blocks.1.hook_resid_mid", keep)]).backward()
    torch.testing.assert_close(cache["blocks.1.hook_resid_mid_grad"], captured["x"].grad)


def test_weight_views_share_storage_and_refuse_bad_shapes():
    model = build("llama")
    attn = model.blocks[0].attn
    assert attn.W_Q.shape == (4, 32, 8) and attn.W_K.shape == (2, 32, 8) and attn.W_O.shape == (4, 8, 32)
    assert model.blocks[0].mlp.W_gate.shape == (32, 128) and model.blocks[0].mlp.W_out.shape == (128, 32)
    assert model.W_U.shape == (32, 50) and model.stack("W_Q").shape == (2, 4, 32, 8)
    attn.W_K = torch.zeros(2, 32, 8)
    assert attn.w_qkv[32:48].abs().sum() == 0
    with pytest.raises(ValueError, match=r"expected shape \[2, 32, 8\]"):
        attn.W_V = torch.zeros(4, 32, 8)


def test_inputs_are_checked():
    model = build("gpt2")
    with pytest.raises(ValueError, match=r"token ids must lie in \[0, 50\)"):
        model(torch.tensor([[1, 50]]))
    with pytest.raises(TypeError, match="integer tensor"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="beyond n_ctx=24"):
        model(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(ValueError, match="no tokenizer"):
        model("some text")


def test_init_weights_scales_the_residual_writers():
    model = Transformer(TransformerConfig(d_model=256, n_layers=8, n_heads=4, d_vocab=512, n_ctx=16)).init_weights(0)
    assert abs(model.W_E.std().item() - 0.02) < 0.002
    assert abs(model.blocks[0].attn.w_o.std().item() - 0.02 / 4) < 0.001  # 0.02 / sqrt(2 * 8)
    assert torch.all(model.blocks[0].ln1.w == 1) and torch.all(model.blocks[0].mlp.b_in == 0)


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_start_at_layer_resumes_from_a_residual_stream(kind):
    model = build(kind)
    toks = tokens()
    middle = model(toks, stop_at_layer=1)
    torch.testing.assert_close(model(middle, start_at_layer=1), model(toks), atol=1e-5, rtol=1e-5)
    loss = model(middle, start_at_layer=1, return_type="loss", tokens=toks)
    torch.testing.assert_close(loss, model(toks, return_type="loss"), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="needs the tokens"):
        model(middle, start_at_layer=1, return_type="loss")
    with pytest.raises(ValueError, match=r"residual stream \[batch, pos, d_model=32\]; got \[2, 12\]"):
        model(toks, start_at_layer=1)


def test_in_place_edits_reach_neither_weights_nor_autograd_state():
    model = build("gpt2")
    toks = tokens()
    w_pos = model.W_pos.detach().clone()

    def zero(x, hook):
        x[:] = 0

    with torch.no_grad():
        model.run_with_hooks(toks[:1], fwd_hooks=[("hook_pos_embed", zero)])
    assert torch.equal(model.W_pos, w_pos), "an edit of the position embedding reached W_pos"
    for name in ("hook_pos_embed", "blocks.0.attn.hook_z", "blocks.0.attn.hook_pattern", "blocks.0.ln1.hook_scale"):
        model.zero_grad()
        with model.hooks([(name, lambda x, h: x.mul_(0.5))]):
            model(toks, return_type="loss").backward()  # autograd's saved tensors were left alone
        in_place = model.W_E.grad.clone()
        model.zero_grad()
        with model.hooks([(name, lambda x, h: x * 0.5)]):
            model(toks, return_type="loss").backward()
        torch.testing.assert_close(in_place, model.W_E.grad, msg=name)


def test_nested_contexts_unwind_in_order_and_survive_reset():
    model = build("gpt2")
    order = []
    first, second = (lambda x, h: order.append("first")), (lambda x, h: order.append("second"))
    point = "blocks.0.hook_resid_pre"
    with model.hooks([(point, first), (point, second)]):
        with model.hooks([(point, first)]):
            pass
        model(tokens())
    assert order == ["first", "second"]
    with model.hooks([(point, first)]):
        model.reset_hooks()  # leaving the context must not fail
    assert not model.hook_dict[point].active


def test_gradient_edits_downstream_are_seen_upstream():
    """resid_post of block 0 is resid_pre of block 1; zeroing the gradient at the latter must show
    in every gradient cached before it."""
    model = build("gpt2")

    def zero(g, h):
        return torch.zeros_like(g)

    with model.hooks(bwd_hooks=[("blocks.1.hook_resid_pre", zero)]):
        _, cache = model.run_with_cache(
            tokens(), return_type="both", incl_bwd=True, names_filter=["blocks.0.hook_resid_post", "blocks.0.hook_resid_mid"]
        )
    assert cache["blocks.0.hook_resid_post_grad"].abs().max() == 0
    assert cache["blocks.0.hook_resid_mid_grad"].abs().max() == 0


def test_model_level_weight_names_assign_by_copy():
    model = build("gpt2")
    model.W_E = torch.zeros(50, 32)
    assert model.embed.W_E.abs().sum() == 0
    model.W_U = torch.ones(32, 50)
    assert torch.all(model.unembed.weight == 1)


def test_step_by_step_layer_norm_keeps_float32_statistics_in_bfloat16():
    """A large residual mean is where bf16 statistics lose most; the step path must be no worse
    than the fused kernel, which computes them in float32."""
    model = Transformer(TransformerConfig(**dict(GPT2_LIKE, d_model=64, positions="rotary"))).init_weights(0, std=0.2)
    with torch.no_grad():
        model.embed.W_E += 3.0
    toks = tokens(2, 11)
    reference = model(toks).double()
    model = model.to(torch.bfloat16)
    fused_error = (model(toks).double() - reference).abs().max()
    editing_noop = [(lambda n: n.endswith("hook_scale"), lambda x, h: x * 1.0)]
    step_error = (model.run_with_hooks(toks, fwd_hooks=editing_noop).double() - reference).abs().max()
    assert step_error <= 1.25 * fused_error + 1e-3, (step_error, fused_error)
