"""Fixtures every test folder can use."""

from __future__ import annotations

import pytest
import torch

from llm_workings import zoo


@pytest.fixture
def one_thread():
    """Run on one intra-op thread: the tiny models gain nothing from more, and on a two-core machine
    with other work running, OpenMP's barrier makes every small matmul wait out a scheduler slice
    (~16 ms instead of ~10 us). Modules opt in with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _bundled(name: str):
    model, _ = zoo.load(name)
    return model.eval()


# The bundled models, loaded once per session for every folder that reads their known answers.
@pytest.fixture(scope="session")
def induction_model():
    return _bundled("induction-2l")


@pytest.fixture(scope="session")
def modadd_model():
    return _bundled("modadd-113")


@pytest.fixture(scope="session")
def shakespeare_model():
    return _bundled("shakespeare-char")


@pytest.fixture(scope="session")
def austen_model():
    return _bundled("austen-bpe")


@pytest.fixture(scope="session")
def hf_checkpoint_paths(tmp_path_factory):
    """Random-weight GPT-2, NeoX and Llama checkpoints built here (tests/hf_checkpoints.py), as the
    `--model` paths a lab serves them from: catalog ids "cli.gpt2-random", "cli.neox-random" and
    "cli.llama-random". Built once per session for every folder's lab tests."""
    from hf_checkpoints import build_checkpoint

    root = tmp_path_factory.mktemp("checkpoints")
    return tuple(str(build_checkpoint(family, root / f"{family}-random")) for family in ("gpt2", "neox", "llama"))


# A random-weight character model deep enough that a patching sweep over a long prompt takes seconds,
# so that a test can watch it run as a job and cancel it part-way (the Patching page's tests).
DEEP_MODEL_TEXT = "the quick brown fox jumps over the lazy dog, and then the dog sleeps. "


@pytest.fixture(scope="session")
def deep_model_dir(tmp_path_factory):
    """An 8-layer, d_model 128 model saved by Transformer.save with a char tokenizer, in "deep-random"
    (catalog id "cli.deep-random" when given to the lab with --model)."""
    from llm_workings.tokenizers import CharTokenizer
    from llm_workings.transformer import Transformer, TransformerConfig

    tok = CharTokenizer.train(DEEP_MODEL_TEXT)
    cfg = TransformerConfig(d_model=128, n_layers=8, n_heads=4, d_vocab=tok.vocab_size, n_ctx=64, name="deep-random")
    path = tmp_path_factory.mktemp("deep") / "deep-random"
    Transformer(cfg, tok).init_weights(0).save(path)
    return path
