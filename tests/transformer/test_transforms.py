"""Weight transforms change the weights, never the output distribution."""

from __future__ import annotations

import pytest
import torch
from test_hooks import CONFIGS, build, tokens

from llm_workings.transformer import Transformer, TransformerConfig


def log_probs(model: Transformer) -> torch.Tensor:
    return model(tokens(2, 12)).log_softmax(-1)


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_folding_layer_norms_keeps_the_logits(kind):
    model = build(kind)
    before = model(tokens(2, 12))
    model.fold_layer_norm()
    torch.testing.assert_close(model(tokens(2, 12)), before, atol=1e-4, rtol=1e-4)
    norms = [model.ln_final] + [b.ln1 for b in model.blocks] + [b.ln2 for b in model.blocks if hasattr(b, "ln2")]
    assert all(n.w is None and n.b is None for n in norms)
    if model.cfg.norm == "layernorm":  # reading weights were centred over d_model
        assert model.blocks[0].attn.w_qkv.mean(1).abs().max() < 1e-6
    _, cache = model.run_with_cache(tokens(2, 12), names_filter=lambda n: "ln_final" in n)
    x = cache["ln_final.hook_normalized"]
    if model.cfg.norm == "layernorm":  # the norm now only normalises: zero mean, unit variance
        torch.testing.assert_close(x.mean(-1), torch.zeros_like(x[..., 0]), atol=1e-5, rtol=0)
        torch.testing.assert_close(x.var(-1, correction=0), torch.ones_like(x[..., 0]), atol=1e-3, rtol=0)


@pytest.mark.parametrize("kind", ["gpt2", "neox", "attn-only"])
def test_centering_writing_weights_keeps_the_distribution(kind):
    model = build(kind)
    before = log_probs(model)
    model.center_writing_weights()
    torch.testing.assert_close(log_probs(model), before, atol=1e-4, rtol=1e-4)
    assert model.W_E.mean(-1).abs().max() < 1e-6
    assert model.blocks[1].attn.W_O.mean(-1).abs().max() < 1e-6


def test_centering_writing_weights_is_refused_for_rmsnorm():
    with pytest.raises(ValueError, match="needs LayerNorm"):
        build("llama").center_writing_weights()


@pytest.mark.parametrize("kind", ["gpt2", "llama"])
def test_centering_the_unembedding_keeps_the_distribution(kind):
    model = build(kind)
    before = log_probs(model)
    model.center_unembed()
    torch.testing.assert_close(log_probs(model), before, atol=1e-4, rtol=1e-4)
    assert model.W_U.mean(-1).abs().max() < 1e-6
    assert model(tokens()).mean(-1).abs().max() < 1e-4  # every logit vector now has zero mean


def test_all_three_together_and_with_tied_embeddings():
    cfg = TransformerConfig(**dict(CONFIGS["gpt2"], tie_embeddings=True))
    model = Transformer(cfg).init_weights(3, std=0.3).eval()
    with torch.no_grad():
        model.ln_final.b.add_(0.5)
    embedding = model.W_E.detach().clone()
    before = log_probs(model)
    model.fold_layer_norm().center_writing_weights().center_unembed()
    torch.testing.assert_close(log_probs(model), before, atol=1e-4, rtol=1e-4)
    assert not model.cfg.tie_embeddings, "transforms of W_U must not reach W_E"
    assert model.unembed.weight.data_ptr() != model.embed.W_E.data_ptr()
    torch.testing.assert_close(model.W_E, embedding - embedding.mean(-1, keepdim=True))


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_the_config_describes_the_transformed_model(kind):
    """Transformer(model.cfg) must build the same architecture, so a transformed model can be saved
    and loaded; and the transform must not rewrite a config another model shares."""
    model = build(kind)
    shared = model.cfg
    model.fold_layer_norm().center_unembed()
    if model.cfg.norm == "layernorm":
        model.center_writing_weights()
    rebuilt = Transformer(model.cfg)
    rebuilt.load_state_dict(model.state_dict())  # strict: same parameters, same shapes
    torch.testing.assert_close(rebuilt.eval()(tokens()), model(tokens()))
    assert shared.norm_affine and not model.cfg.norm_affine and model.cfg is not shared


def test_folding_into_an_mlp_without_biases_gives_it_both():
    cfg = TransformerConfig(**dict(CONFIGS["gpt2"], bias_mlp=False))
    model = build_from(cfg)
    before = model(tokens())
    model.fold_layer_norm()
    assert model.cfg.bias_mlp and model.blocks[0].mlp.b_in is not None and model.blocks[0].mlp.b_out is not None
    torch.testing.assert_close(model(tokens()), before, atol=1e-4, rtol=1e-4)


def build_from(cfg: TransformerConfig) -> Transformer:
    model = Transformer(cfg).init_weights(0, std=0.3)
    with torch.no_grad():
        for block in model.blocks:
            block.ln2.b.add_(0.5)
    return model.eval()
