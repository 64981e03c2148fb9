"""`Transformer` computes what Hugging Face's eager reference computes, on the same weights, in fp32.

For every family and several config variants: logits, the residual stream entering block 0 and
after every block, the final normed stream and every attention pattern agree within 1e-4, on
both our fused path (`model(tokens)`, SDPA) and our explicit one (`run_with_cache`, which hooks
the pattern so attention is computed step by step). Then the same weights loaded from disk in
each supported layout must give the very same parameters.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from hf_helpers import build_hf, hf_reference, max_diff, save_safetensors, save_torch_bin, tokens

from llm_workings.transformer import Transformer

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-4
LLAMA3 = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 16,
}  # wavelengths 6.3 (blended band), 167+ (slowed): both branches run

VARIANTS = [
    pytest.param("gpt2", {}, id="gpt2-gelu_new-tied"),
    pytest.param("gpt2", dict(activation_function="gelu"), id="gpt2-gelu"),
    pytest.param("gpt2", dict(activation_function="relu", n_inner=48), id="gpt2-relu-n_inner48"),
    pytest.param("gpt2", dict(tie_word_embeddings=False), id="gpt2-untied"),
    pytest.param("gpt2", dict(layer_norm_epsilon=0.5), id="gpt2-big_eps"),
    pytest.param("neox", dict(use_parallel_residual=True, rotary_pct=0.25), id="neox-parallel-rot0.25"),
    pytest.param("neox", dict(use_parallel_residual=False, rotary_pct=0.25), id="neox-sequential-rot0.25"),
    pytest.param("neox", dict(use_parallel_residual=True, rotary_pct=1.0), id="neox-parallel-rot1.0"),
    pytest.param(
        "neox", dict(use_parallel_residual=False, rotary_pct=1.0, rotary_emb_base=100.0), id="neox-sequential-rot1.0-base100"
    ),
    pytest.param("neox", dict(attention_bias=False), id="neox-no_attention_bias"),
    pytest.param("neox", dict(tie_word_embeddings=True, hidden_act="gelu_new"), id="neox-tied-gelu_new"),
    pytest.param("llama", {}, id="llama-mha"),
    pytest.param("llama", dict(num_key_value_heads=1), id="llama-gqa1"),
    pytest.param("llama", dict(num_key_value_heads=2), id="llama-gqa2"),
    pytest.param("llama", dict(attention_bias=True, mlp_bias=True), id="llama-biases"),
    pytest.param("llama", dict(tie_word_embeddings=True), id="llama-tied"),
    pytest.param("llama", dict(rope_scaling=LLAMA3, rope_theta=500000.0), id="llama-rope_llama3"),
    pytest.param("llama", dict(rope_scaling={"rope_type": "linear", "factor": 4.0}), id="llama-rope_linear"),
    pytest.param("llama", dict(head_dim=16, num_key_value_heads=2), id="llama-head_dim16"),
    pytest.param("llama", dict(rms_norm_eps=0.5, hidden_act="gelu_pytorch_tanh"), id="llama-big_eps-gelu_tanh"),
    pytest.param("mistral", dict(sliding_window=4), id="mistral-window4"),
    pytest.param("mistral", dict(sliding_window=1), id="mistral-window1"),
    pytest.param("mistral", dict(sliding_window=100), id="mistral-window_wider_than_seq"),
    pytest.param("qwen2", {}, id="qwen2-qkv_bias-gqa2"),
    pytest.param("qwen2", dict(num_key_value_heads=4, tie_word_embeddings=True), id="qwen2-mha-tied"),
]


def make(family: str, overrides: dict) -> transformers.PreTrainedModel:
    return build_hf(family, **overrides)


def assert_matches(ours: Transformer, hf: transformers.PreTrainedModel, toks: torch.Tensor) -> None:
    ref = hf_reference(hf, toks)
    fused = ours(toks)
    explicit, cache = ours.run_with_cache(toks)
    n = ours.cfg.n_layers
    assert len(ref["resid_post"]) == n
    assert max_diff(fused, ref["logits"]) < TOL, "fused path logits"
    assert max_diff(explicit, ref["logits"]) < TOL, "explicit path logits"
    assert max_diff(cache["blocks.0.hook_resid_pre"], ref["embed"]) < TOL, "embedding"
    for layer in range(n):
        assert max_diff(cache[f"blocks.{layer}.hook_resid_post"], ref["resid_post"][layer]) < TOL, f"resid_post {layer}"
        assert max_diff(cache[f"blocks.{layer}.attn.hook_pattern"], ref["patterns"][layer]) < TOL, f"pattern {layer}"
    assert max_diff(cache["ln_final.hook_normalized"], ref["final"]) < TOL, "final norm"


@pytest.mark.parametrize("family, overrides", VARIANTS)
def test_matches_hugging_face(family: str, overrides: dict) -> None:
    hf = make(family, overrides)
    ours = Transformer.from_hf(hf)
    toks = tokens(2, 12)
    assert_matches(ours, hf, toks)
    # and the loss, which shifts targets by one
    hf_loss = hf(toks, labels=toks).loss.item()
    assert abs(ours(toks, return_type="loss").item() - hf_loss) < TOL


def test_the_weights_are_not_trivial() -> None:
    """Guards the other tests' power: the logits vary by O(1), attention is far from uniform, and a
    small change to one weight moves the logits by far more than the tolerance."""
    hf = make("llama", {})
    ours = Transformer.from_hf(hf)
    toks = tokens(2, 12)
    logits, cache = ours.run_with_cache(toks)
    assert logits.std() > 0.3
    assert cache["blocks.1.attn.hook_pattern"][..., -1, :].max() > 0.3  # uniform would be 1/12
    with torch.no_grad():
        ours.blocks[1].ln2.w[0] += 0.1
    assert max_diff(ours(toks), logits) > 100 * TOL


def test_sliding_window_is_what_limits_attention() -> None:
    """With a window of 4, a late query puts zero weight on keys 4 or more positions back."""
    hf = make("mistral", dict(sliding_window=4))
    _, cache = Transformer.from_hf(hf).run_with_cache(tokens(1, 12))
    pattern = cache["blocks.0.attn.hook_pattern"][0, :, 11]  # [head, key]
    assert pattern[:, :8].abs().max() == 0 and pattern[:, 8:].min() > 0


# -- the same weights from disk --------------------------------------------------------------------
def _safetensors(hf, path):
    return save_safetensors(hf, path)


def _sharded_safetensors(hf, path):
    save_safetensors(hf, path, max_shard_size="20KB")
    assert (path / "model.safetensors.index.json").exists() and len(list(path.glob("*.safetensors"))) > 2
    return path


def _torch_bin(hf, path):
    return save_torch_bin(hf, path)


def _sharded_torch_bin(hf, path):
    return save_torch_bin(hf, path, shards=3)


LAYOUTS = {
    "safetensors": _safetensors,
    "sharded_safetensors": _sharded_safetensors,
    "torch_bin": _torch_bin,
    "sharded_torch_bin": _sharded_torch_bin,
}
ON_DISK = [
    ("gpt2", {}, "safetensors"),
    ("gpt2", {}, "torch_bin"),
    ("gpt2", dict(tie_word_embeddings=False), "sharded_torch_bin"),
    ("neox", {}, "safetensors"),
    ("neox", {}, "torch_bin"),
    ("neox", {}, "sharded_safetensors"),
    ("llama", dict(num_key_value_heads=2, rope_scaling=LLAMA3), "safetensors"),
    ("llama", {}, "torch_bin"),
    ("llama", dict(tie_word_embeddings=True), "sharded_safetensors"),
    ("mistral", dict(sliding_window=4), "safetensors"),
    ("qwen2", {}, "safetensors"),
    ("qwen2", {}, "torch_bin"),
]


def _same_parameters(a: Transformer, b: Transformer) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name
    assert a.cfg == b.cfg


@pytest.mark.parametrize("family, overrides, layout", [pytest.param(*v, id=f"{v[0]}-{v[2]}") for v in ON_DISK])
def test_loads_the_same_weights_from_disk(family: str, overrides: dict, layout: str, tmp_path: Path) -> None:
    hf = make(family, overrides)
    from_object = Transformer.from_hf(hf)
    path = LAYOUTS[layout](hf, tmp_path / "ckpt")
    from_disk = Transformer.from_hf(path)
    from_str = Transformer.from_hf(str(path))
    from_object.cfg.name = from_disk.cfg.name = from_str.cfg.name = ""  # the name records where it came from
    _same_parameters(from_object, from_disk)
    _same_parameters(from_object, from_str)
    toks = tokens(2, 12)
    assert max_diff(from_disk(toks), hf(toks).logits.detach()) < TOL


def _legacy_config(path: Path) -> None:
    """Rewrite config.json the way transformers 4 wrote it (and most hub checkpoints still hold it):
    rope settings as flat keys and `rope_scaling`, not transformers 5's `rope_parameters`."""
    c = json.loads((path / "config.json").read_text())
    rope = c.pop("rope_parameters")
    theta, pct, kind = rope.pop("rope_theta"), rope.pop("partial_rotary_factor", None), rope.pop("rope_type")
    if c["model_type"] == "gpt_neox":
        c.update(rotary_emb_base=theta, rotary_pct=pct)
    else:
        c["rope_theta"] = theta
    if kind == "linear":
        c["rope_scaling"] = {"type": "linear", **rope}  # Llama 2 era spelling
    elif kind != "default":
        c["rope_scaling"] = {"rope_type": kind, **rope}
    (path / "config.json").write_text(json.dumps(c))


@pytest.mark.parametrize(
    "family, overrides",
    [
        pytest.param("neox", dict(rotary_pct=0.5, rotary_emb_base=500.0), id="pythia-rotary_pct-rotary_emb_base"),
        pytest.param("llama", dict(rope_scaling=LLAMA3, rope_theta=500000.0), id="llama3-rope_scaling"),
        pytest.param("llama", dict(rope_scaling={"rope_type": "linear", "factor": 4.0}), id="llama2-linear-type"),
        pytest.param("qwen2", dict(rope_theta=1000.0), id="qwen2-rope_theta"),
    ],
)
def test_transformers_4_config_layout(family: str, overrides: dict, tmp_path: Path) -> None:
    hf = make(family, overrides)
    path = save_safetensors(hf, tmp_path)
    _legacy_config(path)
    assert "rope_parameters" not in (path / "config.json").read_text()
    assert_matches(Transformer.from_hf(path), hf, tokens(2, 12))


# -- base models (no LM head): tied unembedding, tensor names without the "model." prefix -------
BASES = [
    pytest.param("gpt2", {}, "transformer", id="GPT2Model"),
    pytest.param("neox", dict(tie_word_embeddings=True), "gpt_neox", id="GPTNeoXModel"),
    pytest.param("llama", dict(tie_word_embeddings=True, num_key_value_heads=2), "model", id="LlamaModel"),
    pytest.param("qwen2", dict(tie_word_embeddings=True), "model", id="Qwen2Model"),
]


@pytest.mark.parametrize("family, overrides, attr", BASES)
def test_base_model_classes(family: str, overrides: dict, attr: str, tmp_path: Path) -> None:
    base = getattr(make(family, overrides), attr)
    save_safetensors(base, tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["architectures"] == [type(base).__name__]
    toks = tokens(2, 12)
    ref = hf_reference(base, toks)
    for ours in (Transformer.from_hf(base), Transformer.from_hf(tmp_path)):
        logits, cache = ours.run_with_cache(toks)
        for layer in range(ours.cfg.n_layers):
            assert max_diff(cache[f"blocks.{layer}.hook_resid_post"], ref["resid_post"][layer]) < TOL
        assert max_diff(cache["ln_final.hook_normalized"], ref["final"]) < TOL
        assert max_diff(logits, ref["final"] @ base.get_input_embeddings().weight.T) < TOL
