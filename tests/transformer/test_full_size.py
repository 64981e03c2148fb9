"""Parity at real widths and vocabularies: GPT-2 small, Pythia-70M, and Llama-3.2-1B's width.

Random weights (Hugging Face's own init, std 0.02, with norm gains and biases perturbed), one
sequence of 16 tokens, fp32. The tolerance stays 1e-4: measured differences are a few 1e-6 even
with a 2048-wide stream and a 128k vocabulary.
"""

from __future__ import annotations

import gc

import pytest
import torch
from hf_helpers import build_hf, hf_reference, max_diff, tokens

from llm_workings.transformer import Transformer

pytestmark = pytest.mark.slow

TOL = 1e-4
SHAPES = {
    "gpt2-small": (
        "gpt2",
        dict(n_embd=768, n_layer=12, n_head=12, n_positions=1024, vocab_size=50257, bos_token_id=50256, eos_token_id=50256),
    ),
    "pythia-70m": (
        "neox",
        dict(
            hidden_size=512,
            num_hidden_layers=6,
            num_attention_heads=8,
            intermediate_size=2048,
            vocab_size=50304,
            rotary_pct=0.25,
            use_parallel_residual=True,
            max_position_embeddings=2048,
            bos_token_id=0,
            eos_token_id=0,
        ),
    ),
    # Llama-3.2-1B at full width, head layout, vocabulary and rope settings, but 2 of its 16 layers:
    # all 16 in fp32 are 5 GB per copy and take ~2 minutes to initialise and convert on two cores,
    # while every layer has the same shapes, so two layers already check layer-to-layer handoff.
    "llama-3.2-1b-width": (
        "llama",
        dict(
            hidden_size=2048,
            num_hidden_layers=2,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=64,
            intermediate_size=8192,
            vocab_size=128256,
            tie_word_embeddings=True,
            max_position_embeddings=131072,
            rms_norm_eps=1e-5,
            rope_theta=500000.0,
            bos_token_id=128000,
            eos_token_id=128001,
            rope_scaling={
                "rope_type": "llama3",
                "factor": 32.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192,
            },
        ),
    ),
}


@pytest.fixture(scope="module", params=list(SHAPES))
def pair(request):
    family, config = SHAPES[request.param]
    hf = build_hf(family, std=0.02, **config)
    ours = Transformer.from_hf(hf)
    yield hf, ours
    del hf, ours
    gc.collect()


def test_shapes_are_the_real_ones(pair) -> None:
    hf, ours = pair
    n_hf = sum(p.numel() for p in hf.parameters())
    n_ours = sum(p.numel() for p in ours.parameters())  # a tied parameter counts once in both
    assert n_ours == n_hf
    assert ours.cfg.d_vocab == hf.config.vocab_size and ours.cfg.n_layers == hf.config.num_hidden_layers


def test_logits_and_residual_stream_match(pair) -> None:
    hf, ours = pair
    toks = tokens(1, 16, vocab=ours.cfg.d_vocab)
    ref = hf_reference(hf, toks)
    assert ref["logits"].std() > 0.1  # not degenerate
    assert max_diff(ours(toks), ref["logits"]) < TOL
    logits, cache = ours.run_with_cache(toks)  # explicit attention
    assert max_diff(logits, ref["logits"]) < TOL
    for layer in range(ours.cfg.n_layers):
        assert max_diff(cache[f"blocks.{layer}.hook_resid_post"], ref["resid_post"][layer]) < TOL, layer
        assert max_diff(cache[f"blocks.{layer}.attn.hook_pattern"], ref["patterns"][layer]) < TOL, layer


def test_greedy_generation_cached_equals_uncached_equals_hf(pair) -> None:
    hf, ours = pair
    toks, n = tokens(1, 16, vocab=ours.cfg.d_vocab, seed=1), 4
    cached = ours.generate(toks, max_new_tokens=n, stop_at_eos=False)
    uncached = ours.generate(toks, max_new_tokens=n, stop_at_eos=False, use_kv_cache=False)
    assert cached.shape == (1, 16 + n)
    assert torch.equal(cached, uncached)
    ref = hf.generate(
        toks,
        attention_mask=torch.ones_like(toks),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
    )
    assert torch.equal(cached, ref)
