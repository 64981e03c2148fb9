"""LoRA's contract: unchanged at init, merged equals unmerged, gradients equal autograd through W + BA."""

from __future__ import annotations

import pytest
import torch
from lora_helpers import randomize, tiny, tokens
from torch.func import functional_call

from llm_workings.finetune import LoRAConfig, LoRAError, adapters, add_lora, targets_of

pytestmark = pytest.mark.usefixtures("one_thread")

ALL = {
    "gpt2": ("attn.qkv", "attn.o", "mlp.in", "mlp.out"),
    "llama": ("attn.q", "attn.k", "attn.v", "attn.o", "mlp.gate", "mlp.in", "mlp.out"),
}


@pytest.mark.parametrize("shape", ["gpt2", "llama"])
def test_at_init_the_logits_are_unchanged(shape):
    model = tiny(shape)
    x = tokens()
    before = model(x)
    add_lora(model, LoRAConfig(rank=4, alpha=8, targets=ALL[shape]))
    assert torch.equal(model(x), before)


@pytest.mark.parametrize("shape", ["gpt2", "llama"])
@pytest.mark.parametrize("rslora", [False, True])
def test_merged_equals_unmerged_and_unmerge_restores_the_base(shape, rslora):
    model = tiny(shape).double()  # float64, so 1e-6 tests the algebra rather than float32's rounding
    base_weights = {k: v.clone() for k, v in model.state_dict().items()}
    x = tokens()
    base = model(x)
    adapter = add_lora(model, LoRAConfig(rank=3, alpha=6, targets=ALL[shape], rslora=rslora))
    randomize(adapter)
    adapted = model(x)
    assert (adapted - base).abs().max() > 1e-2  # the adapter does something
    adapter.merge()
    assert (model(x) - adapted).abs().max() < 1e-6
    assert not torch.equal(model.blocks[0].attn.w_o, base_weights["blocks.0.attn.w_o"])
    adapter.unmerge()
    assert (model(x) - adapted).abs().max() < 1e-6
    for k, v in base_weights.items():
        assert (model.state_dict()[k] - v).abs().max() < 1e-6, k
    adapter.disable()
    assert (model(x) - base).abs().max() < 1e-6
    adapter.merge()  # merging a disabled adapter turns it on
    assert (model(x) - adapted).abs().max() < 1e-6
    adapter.disable()
    assert (model(x) - base).abs().max() < 1e-6
    adapter.enable()
    model_after_remove = adapter.remove(merge=True)
    assert (model_after_remove(x) - adapted).abs().max() < 1e-6
    assert set(model.state_dict()) == set(base_weights)
    assert not any("lora" in name for name in model.hook_dict)


def test_the_update_reads_like_the_equation():
    """out = W x + (alpha / r) B A x on exactly the targeted rows (here Llama's k rows of the fused qkv)."""
    model = tiny("llama")
    adapter = add_lora(model, LoRAConfig(rank=2, alpha=5, targets=("attn.k",), layers=(1,)))
    randomize(adapter)
    lora = adapter.modules["blocks.1.attn.k"]
    attn = model.blocks[1].attn
    x = torch.randn(3, 32)
    start, stop = lora.rows
    assert (start, stop) == (32, 48)  # after q's 4 heads x 8, k's 2 heads x 8
    expected = x @ attn.w_qkv.T
    expected[:, start:stop] += (5 / 2) * x @ lora.A.T @ lora.B.T
    assert torch.allclose(attn.project(x, "w_qkv", None), expected, atol=1e-6)


@pytest.mark.parametrize("shape", ["gpt2", "llama"])
def test_gradients_equal_autograd_through_an_explicit_w_plus_ba(shape):
    model = tiny(shape)
    cfg = LoRAConfig(rank=3, alpha=4, targets=ALL[shape])
    adapter = add_lora(model, cfg)
    randomize(adapter)
    x = tokens()
    model(x, return_type="loss").backward()
    ours = {k: (m.A.grad.clone(), m.B.grad.clone()) for k, m in adapter.modules.items()}
    assert all(a.abs().max() > 0 and b.abs().max() > 0 for a, b in ours.values())

    # the same loss from the base weights with W[rows] + scaling * B A written out, as leaves of their own
    reference = tiny(shape)
    leaves = {
        k: (m.A.detach().clone().requires_grad_(), m.B.detach().clone().requires_grad_()) for k, m in adapter.modules.items()
    }
    weights = dict(reference.named_parameters())
    for key, (A, B) in leaves.items():
        _, layer, target = key.split(".", 2)
        spec = targets_of(reference)[target]
        name = f"blocks.{layer}.{spec.component}.{spec.weight}"
        start, stop = adapter.modules[key].rows
        w = weights[name]
        weights[name] = torch.cat([w[:start], w[start:stop] + cfg.scaling * B @ A, w[stop:]])
    functional_call(reference, weights, (x,), {"return_type": "loss"}).backward()
    for key, (A, B) in leaves.items():
        assert torch.allclose(ours[key][0], A.grad, atol=1e-6), key
        assert torch.allclose(ours[key][1], B.grad, atol=1e-6), key


def test_only_the_adapter_trains_and_several_adapters_stack():
    model = tiny("gpt2")
    first = add_lora(model, LoRAConfig(rank=2, targets=("attn.qkv",)), name="first")
    second = add_lora(model, LoRAConfig(rank=4, alpha=2, targets=("attn.qkv", "mlp.out"), layers=(0,)), name="second")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n, _ in model.named_parameters() if ".lora." in n}
    assert first.num_parameters() == 2 * 2 * (32 + 96) and second.num_parameters() == 4 * (32 + 96) + 4 * (128 + 32)
    assert set(adapters(model)) == {"first", "second"}
    assert adapters(model)["second"].config == second.config
    randomize(first, 1)
    randomize(second, 2)
    attn, x = model.blocks[0].attn, torch.randn(3, 32)
    a, b = first.modules["blocks.0.attn.qkv"], second.modules["blocks.0.attn.qkv"]
    expected = x @ attn.w_qkv.T + attn.b_qkv + (8 / 2) * x @ a.A.T @ a.B.T + (2 / 4) * x @ b.A.T @ b.B.T
    assert torch.allclose(attn.project(x, "w_qkv", attn.b_qkv), expected, atol=1e-5)
    ids = tokens()
    both = model(ids)
    second.disable()
    only_first = model(ids)
    assert not torch.allclose(both, only_first)
    second.enable().merge()
    assert torch.allclose(model(ids), both, atol=1e-5)


def test_the_adapter_output_is_a_hook_point():
    model = tiny("gpt2")
    adapter = add_lora(model, LoRAConfig(rank=2, targets=("attn.o",)))
    randomize(adapter)
    x = tokens()
    logits, cache = model.run_with_cache(x)
    name = "blocks.1.attn.lora.default.o.hook_out"
    assert cache[name].shape == (2, 10, 32)
    # attn_out is the base output plus what the adapter adds; patching the adapter's output to zero removes it
    base_out = cache["blocks.1.hook_attn_out"] - cache[name]
    patched = model.run_with_hooks(x, fwd_hooks=[(name, lambda a, hook: torch.zeros_like(a))])
    adapter.modules["blocks.1.attn.o"].enabled = False
    _, without = model.run_with_cache(x)
    assert torch.allclose(without["blocks.1.hook_attn_out"], base_out, atol=1e-6)
    assert torch.allclose(patched, model(x), atol=1e-6)
    assert not torch.allclose(patched, logits)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (dict(rank=0), "rank must be a positive integer"),
        (dict(rank=33, targets=("attn.o",)), "rank 33 is above the width of attn.o"),
        (dict(targets=("attn.q_proj",)), "no linear map 'attn.q_proj'; it has attn.qkv, attn.q"),
        (dict(targets=("mlp.gate",)), "no linear map 'mlp.gate'"),
        (dict(targets=("attn.qkv", "attn.q")), "adapt the same rows"),
        (dict(layers=(2,)), "layers [2] do not exist; this model has layers 0..1"),
        (dict(alpha=0), "alpha must be positive"),
        (dict(dropout=1.0), "dropout must be in [0, 1)"),
    ],
)
def test_bad_settings_are_refused_by_name_and_the_model_is_untouched(settings, message):
    model = tiny("gpt2")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(LoRAError, match=None) as info:
        add_lora(model, LoRAConfig(**settings))
    assert message in str(info.value)
    assert set(model.state_dict()) == set(before)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    assert all(p.requires_grad for p in model.parameters())
