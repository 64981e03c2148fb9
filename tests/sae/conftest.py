"""A tiny random model, token batches and SAEs of every architecture, for the SAE tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm_workings.sae import SAEConfig, build_sae
from llm_workings.transformer import Transformer, TransformerConfig


@pytest.fixture(scope="session")
def tiny_model():
    cfg = TransformerConfig(d_model=16, n_layers=2, n_heads=2, d_vocab=40, n_ctx=16, name="tiny")
    return Transformer(cfg).init_weights(seed=3, std=0.2).eval()


@pytest.fixture(scope="session")
def tiny_ids():
    return np.random.default_rng(0).integers(0, 40, size=5000)


def random_sae(architecture: str, d_in: int = 16, d_sae: int = 48, seed: int = 0, hook_name: str = "blocks.1.hook_resid_pre"):
    """An SAE with every parameter random (biases and thresholds too), so a round trip checks each tensor."""
    k = 6 if architecture in ("topk", "batchtopk") else None
    sae = build_sae(SAEConfig(architecture, d_in, d_sae, k=k, hook_name=hook_name, model_name="tiny"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
        if hasattr(sae, "threshold"):
            sae.threshold.copy_(torch.rand(sae.threshold.shape, generator=gen) * 0.2 if sae.threshold.ndim else torch.tensor(0.1))
    return sae.eval()


@pytest.fixture
def make_sae():
    return random_sae
