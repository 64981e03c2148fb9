"""Fixtures for the transformer tests; the model builders themselves live in hf_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from hf_helpers import build_hf, save_with_tokenizer, tiny_tokenizer


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Llama with a word-level tokenizer whose BOS/EOS ids (1, 2) match the config's."""
    vocab = len(tiny_tokenizer())  # every id the model can produce decodes to a word
    return save_with_tokenizer(build_hf("llama", vocab_size=vocab), tmp_path_factory.mktemp("llama"))
