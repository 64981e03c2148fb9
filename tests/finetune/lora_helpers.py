"""Tiny random models of both shapes LoRA must handle: GPT-2's (fused qkv, plain MLP) and Llama's
(grouped-query attention, gated MLP)."""

from __future__ import annotations

import torch

from llm_workings.transformer import Transformer, TransformerConfig

SHAPES = {
    "gpt2": dict(d_model=32, n_layers=2, n_heads=4, d_vocab=50, n_ctx=16),
    "llama": dict(
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        d_mlp=48,
        d_vocab=50,
        n_ctx=16,
        positions="rotary",
        norm="rmsnorm",
        act="silu",
        gated_mlp=True,
        bias_qkv=False,
        bias_attn_out=False,
        bias_mlp=False,
    ),
}


def tiny(shape: str, seed: int = 0) -> Transformer:
    return Transformer(TransformerConfig(**SHAPES[shape])).init_weights(seed, std=0.2).eval()


def tokens(batch: int = 2, pos: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 50, (batch, pos), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def randomize(adapter, seed: int = 1, std: float = 0.3) -> None:
    """Give B non-zero values, so an adapter changes the model and a test of it can fail."""
    gen = torch.Generator().manual_seed(seed)
    for module in adapter.modules.values():
        module.B.copy_(torch.randn(module.B.shape, generator=gen) * std)
