"""Fixtures for the analysis tests: the bundled models (whose answers are known) and a tiny GPT-2
loaded into both this project and TransformerLens (the reference numbers)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every analysis test runs on one thread (see the root conftest's `one_thread`)."""


@pytest.fixture(scope="session")
def reference_pair(tmp_path_factory: pytest.TempPathFactory):
    """(ours, TransformerLens HookedTransformer) on the same random-weight GPT-2 checkpoint."""
    pytest.importorskip("transformer_lens")
    from tl_reference import build_pair

    return build_pair(tmp_path_factory.mktemp("gpt2-reference"))


@pytest.fixture
def no_grad():
    with torch.no_grad():
        yield


@pytest.fixture(scope="session")
def induction_heads(induction_model):
    """(previous-token head in layer 0, induction head in layer 1) of induction-2l, found from its card's
    measurement rather than assumed: the heads whose patterns do those jobs on repeated tokens."""
    import numpy as np

    from llm_workings.data.tasks import induction_targets, repeated_tokens

    half = 16
    tokens = torch.from_numpy(repeated_tokens(np.random.default_rng(0), 8, half, induction_model.cfg.d_vocab))
    _, cache = induction_model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    queries, keys = induction_targets(half)
    prev = cache["pattern", 0].diagonal(-1, 2, 3).mean((0, 2)).argmax().item()
    induction = cache["pattern", 1][:, :, queries, keys].mean((0, 2)).argmax().item()
    return prev, induction
