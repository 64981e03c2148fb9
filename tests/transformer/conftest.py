"""Fixtures for the transformer tests; the model builders themselves live in hf_helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hf_helpers import build_hf, save_with_tokenizer, tiny_tokenizer


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny Llama with a word-level tokenizer whose BOS/EOS ids (1, 2) match the config's."""
    vocab = len(tiny_tokenizer())  # every id the model can produce decodes to a word
    return save_with_tokenizer(build_hf("llama", vocab_size=vocab), tmp_path_factory.mktemp("llama"))


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: the tiny models gain nothing from more, and on a two-core machine
    with other work running, OpenMP's barrier makes every small matmul wait out a scheduler slice
    (~16 ms instead of ~10 us). Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
