"""Fixtures for the steering tests: a tiny random-weight model for hand computations (the bundled
models of the demonstrations come from the root conftest)."""

from __future__ import annotations

import pytest

from llm_workings.transformer import Transformer, TransformerConfig


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every steering test runs on one thread (see the root conftest's `one_thread`)."""


@pytest.fixture(scope="session")
def tiny_model():
    cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=23, n_ctx=32)
    return Transformer(cfg).init_weights(seed=3, std=0.2).eval()
