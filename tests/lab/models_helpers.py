"""Checkpoints built on the spot for the model-cache tests: a Hugging Face GPT-2 with random weights
and a byte-level BPE tokenizer (as tests/transformer/hf_helpers.py builds them, offline), one of our
saved models, and run directories as `llmw train` leaves them."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from llm_workings.tokenizers import BPETokenizer, CharTokenizer
from llm_workings.transformer import Transformer, TransformerConfig

TEXT = "the cat sat on the mat, and the dog — the dog sat on the log. naïve café: a bat, a hat, the rat ran. " * 4


def bpe_tokenizer() -> BPETokenizer:
    return BPETokenizer.train(TEXT, vocab_size=280)


def build_gpt2_dir(path: Path, seed: int = 0, with_tokenizer: bool = True, n_layer: int = 2, padding: int = 0) -> Path:
    """A GPT-2 checkpoint directory (config.json, model.safetensors, tokenizer files), random weights;
    `padding` output rows past the tokenizer's tokens, as a padded vocabulary has."""
    import transformers

    tok = bpe_tokenizer()
    config = transformers.GPT2Config(
        n_embd=32,
        n_layer=n_layer,
        n_head=4,
        n_positions=64,
        vocab_size=tok.vocab_size + padding,
        initializer_range=0.15,
        bos_token_id=None,
        eos_token_id=None,
    )
    torch.manual_seed(seed)
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(path)
    if with_tokenizer:
        transformers.PreTrainedTokenizerFast(tokenizer_object=tok.to_hf()).save_pretrained(path)
    return path


def build_our_model(path: Path, seed: int = 0, d_model: int = 32) -> Path:
    """A model saved by Transformer.save, with a char tokenizer beside it."""
    tok = CharTokenizer.train(TEXT)
    cfg = TransformerConfig(d_model=d_model, n_layers=2, n_heads=4, d_vocab=tok.vocab_size, n_ctx=32, name="tiny")
    Transformer(cfg, tok).init_weights(seed).save(path)
    return path


def build_finished_run(runs_dir: Path, name: str, seed: int = 0) -> Path:
    """A run as `llmw train` leaves it when done: its final model and a card."""
    run = build_our_model(runs_dir / name, seed)
    card = {
        "name": name,
        "summary": "a tiny test run",
        "task": "char-lm",
        "metrics": {"val_loss": 1.5},
        "reproduce": "llmw train x",
    }
    (run / "card.json").write_text(json.dumps(card))
    (run / "checkpoint.json").write_text(json.dumps({"step": 100}))
    return run


def build_training_run(runs_dir: Path, name: str, step: int = 40) -> Path:
    """A run still training: a committed checkpoint record, no final model yet."""
    run = runs_dir / name
    run.mkdir(parents=True)
    (run / "checkpoint.json").write_text(json.dumps({"format": "llm_workings.checkpoint", "step": step}))
    return run
