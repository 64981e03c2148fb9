"""Hugging Face checkpoints with random weights, built here, for the lab tests that must work on GPT-2,
NeoX and Llama-family models as on the bundled ones: each with a byte-level BPE tokenizer trained on a
line of Austen, and <|endoftext|> as BOS and EOS."""

from __future__ import annotations

from pathlib import Path

CORPUS = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune must be in want of a wife. " * 3
)
# Small, but with every wiring the pages draw: GPT-2's learned positions and fused Conv1D attention,
# NeoX's parallel residual and partial rotary, Llama's RMSNorm, gated MLP and grouped-query heads.
SHAPE = dict(hidden=64, layers=2, heads=4, ctx=128)


def _tokenizer():
    import transformers

    from llm_workings.tokenizers import BPETokenizer

    tok = transformers.PreTrainedTokenizerFast(tokenizer_object=BPETokenizer.train(CORPUS, vocab_size=300).to_hf())
    tok.add_special_tokens({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"})
    return tok


def _model(family: str, tok):
    import transformers

    ids = dict(bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, vocab_size=len(tok) + 20)
    d, n, h, ctx = SHAPE["hidden"], SHAPE["layers"], SHAPE["heads"], SHAPE["ctx"]
    if family == "gpt2":
        config = transformers.GPT2Config(n_embd=d, n_layer=n, n_head=h, n_positions=ctx, initializer_range=0.2, **ids)
        return transformers.GPT2LMHeadModel(config)
    if family == "neox":
        config = transformers.GPTNeoXConfig(
            hidden_size=d,
            num_hidden_layers=n,
            num_attention_heads=h,
            intermediate_size=4 * d,
            max_position_embeddings=ctx,
            rotary_pct=0.5,
            use_parallel_residual=True,
            initializer_range=0.2,
            **ids,
        )
        return transformers.GPTNeoXForCausalLM(config)
    if family == "llama":
        config = transformers.LlamaConfig(
            hidden_size=d,
            num_hidden_layers=n,
            num_attention_heads=h,
            num_key_value_heads=2,
            intermediate_size=3 * d,
            max_position_embeddings=ctx,
            initializer_range=0.2,
            **ids,
        )
        return transformers.LlamaForCausalLM(config)
    raise ValueError(f"unknown family {family!r}")


def build_checkpoint(family: str, path: Path, seed: int = 0) -> Path:
    """`path`, now a checkpoint directory of `family` ("gpt2", "neox" or "llama") with its tokenizer."""
    import torch

    tok = _tokenizer()
    torch.manual_seed(seed)
    _model(family, tok).eval().save_pretrained(path)
    tok.save_pretrained(path)
    return path
