"""Tokenizers: text to integer ids and back. NumPy only (no torch).

- `CharTokenizer`: one id per character (char.py).
- `BPETokenizer`: byte-level BPE as in GPT-2, trained here from scratch (bpe.py, bpe_train.py),
  convertible to Hugging Face `tokenizers` (hf.py).

Both save to one JSON file with a "type" field; `load_tokenizer` reads any of them.

How to use:

    from llm_workings.tokenizers import BPETokenizer, load_tokenizer

    tok = BPETokenizer.train(text, vocab_size=4096)
    tok.save("tok.json")
    tok = load_tokenizer("tok.json")
    tok.decode(tok.encode("Hello")) == "Hello"
"""

from __future__ import annotations

import os

from .base import Tokenizer, read_tokenizer_json
from .bpe import GPT2_PATTERN, BPETokenizer
from .char import CharTokenizer

TOKENIZER_TYPES: dict[str, type[Tokenizer]] = {"char": CharTokenizer, "bpe": BPETokenizer}


def load_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """The tokenizer saved at `path`, of whichever type its "type" field names."""
    tokenizer_type = read_tokenizer_json(path)["type"]
    if tokenizer_type not in TOKENIZER_TYPES:
        raise ValueError(f"{path}: unknown tokenizer type {tokenizer_type!r}; expected one of {sorted(TOKENIZER_TYPES)}")
    return TOKENIZER_TYPES[tokenizer_type].load(path)


__all__ = ["GPT2_PATTERN", "TOKENIZER_TYPES", "BPETokenizer", "CharTokenizer", "Tokenizer", "load_tokenizer"]
