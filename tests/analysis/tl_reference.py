"""A tiny random-weight GPT-2, saved locally, loaded into this project and into TransformerLens
3.9's `HookedTransformer` with identical weights (no folding or centering on either side).

HookedTransformer is the model TransformerLens's own analysis functions (`patching`,
`head_detector`, `FactoredMatrix`) are written for; `from_pretrained` refuses local paths, so its
config is written by hand and the GPT-2 weights converted with TransformerLens's converter.
Weights are drawn wider than GPT-2's default so attention patterns are far from uniform.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

from llm_workings.transformer import Transformer

CONFIG = dict(
    n_embd=32, n_layer=3, n_head=4, n_positions=64, vocab_size=97, bos_token_id=0, eos_token_id=0, initializer_range=0.15
)


@torch.no_grad()
def build_pair(directory: Path, seed: int = 0):
    from transformer_lens import HookedTransformer, HookedTransformerConfig
    from transformer_lens.pretrained.weight_conversions import convert_gpt2_weights

    config = GPT2Config(**CONFIG)
    torch.manual_seed(seed)
    hf = GPT2LMHeadModel(config).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    for p in hf.parameters():
        if p.ndim == 1:  # norm gains and biases: off their 1 and 0 so those paths count
            p.add_(0.1 * torch.randn(p.shape, generator=gen))
    hf.save_pretrained(directory)
    ours = Transformer.from_hf(directory).eval()
    cfg = HookedTransformerConfig(
        n_layers=config.n_layer,
        d_model=config.n_embd,
        n_heads=config.n_head,
        d_head=config.n_embd // config.n_head,
        d_mlp=4 * config.n_embd,
        d_vocab=config.vocab_size,
        n_ctx=config.n_positions,
        act_fn="gelu_new",
        normalization_type="LN",
        eps=config.layer_norm_epsilon,
        positional_embedding_type="standard",
        original_architecture="GPT2LMHeadModel",
        device="cpu",
        seed=seed,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = HookedTransformer(cfg)
    theirs.load_and_process_state_dict(
        convert_gpt2_weights(hf, cfg), fold_ln=False, center_writing_weights=False, center_unembed=False, fold_value_biases=False
    )
    return ours, theirs.eval()


def tokens(batch: int = 2, pos: int = 10, seed: int = 0) -> torch.Tensor:
    return torch.randint(1, CONFIG["vocab_size"], (batch, pos), generator=torch.Generator().manual_seed(seed))
