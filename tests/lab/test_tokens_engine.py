"""The Tokens page's engine side against the model itself: every number it sends is checked here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_workings import zoo
from llm_workings.lab.models.tokenizer import text_tokenizer
from llm_workings.lab.prompts import token_ids
from llm_workings.lab.tokens import compute, wire
from llm_workings.lab.wire import decode_tensor
from llm_workings.transformer.generate import sample, sampling_distribution

pytestmark = pytest.mark.usefixtures("one_thread")

LANGUAGE_MODELS = ("shakespeare-char", "austen-bpe")
TEXT = "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer"


@pytest.fixture(scope="module", params=LANGUAGE_MODELS)
def lm(request):
    model, tokenizer = zoo.load(request.param)
    return model.eval(), text_tokenizer(tokenizer)


def test_token_ids_are_the_tokenizers_own(lm):
    model, tok = lm
    assert token_ids(model, tok, TEXT) == tok.inner.encode(TEXT)  # the zoo models read no BOS


def test_predictions_match_a_plain_forward_pass(lm):
    model, tok = lm
    ids = token_ids(model, tok, TEXT)[: model.cfg.n_ctx]
    pred = compute.predict(model, ids, k=7)
    with torch.no_grad():
        logits = model(torch.tensor([ids]))[0]
        losses = model(torch.tensor([ids]), return_type="loss", loss_per_token=True)[0]
    probs = logits.softmax(-1)
    top = probs.topk(7, dim=-1)
    torch.testing.assert_close(pred.top_probs, top.values, atol=1e-6, rtol=1e-5)
    assert torch.equal(pred.top_ids, top.indices)
    torch.testing.assert_close(pred.next_loss, losses, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pred.next_prob, probs[:-1].gather(-1, torch.tensor(ids[1:])[:, None])[:, 0])
    torch.testing.assert_close(pred.surprise_bits, losses / math.log(2))
    assert pred.context == list(range(1, len(ids) + 1)) and not pred.windowed
    torch.testing.assert_close(pred.last_logits, logits[-1])


def test_a_text_longer_than_n_ctx_is_read_in_windows_in_one_forward_pass():
    model, tokenizer = zoo.load("shakespeare-char")
    model.eval()
    n_ctx = model.cfg.n_ctx
    ids = tokenizer.encode((TEXT * 4)[:250])
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(1))
    try:
        pred = compute.predict(model, ids, k=5)
    finally:
        handle.remove()
    assert len(calls) == 1 and pred.windowed
    assert all(c >= n_ctx // 2 for c in pred.context[n_ctx // 2 :])
    for i in (0, n_ctx - 1, n_ctx, 100, 173, len(ids) - 1):
        window = ids[i + 1 - pred.context[i] : i + 1]
        assert len(window) <= n_ctx
        with torch.no_grad():
            probs = model(torch.tensor([window]))[0, -1].softmax(-1)
        torch.testing.assert_close(pred.top_probs[i], probs.topk(5).values, atol=1e-6, rtol=1e-5)
        if i + 1 < len(ids):
            torch.testing.assert_close(pred.next_prob[i], probs[ids[i + 1]], atol=1e-6, rtol=1e-5)
        # the sampling panel reshapes the same prediction the bars show
        panel = compute.reshape(compute.logits_at(model, ids, i), 1.0, None, None, k=5)
        torch.testing.assert_close(panel.before, pred.top_probs[i], atol=1e-6, rtol=1e-5)


@settings(deadline=None)
@given(st.integers(1, 2000), st.integers(1, 300))
def test_windows_cover_every_position_and_each_fits(n, n_ctx):
    starts = compute.window_starts(n, n_ctx)
    width = min(n, n_ctx)
    assert starts[0] == 0 and starts[-1] + width == n and starts == sorted(set(starts))
    for i in range(n):
        earliest = next(s for s in starts if i < s + width)  # the window predict uses for position i
        assert i - earliest + 1 >= min(i + 1, n_ctx - n_ctx // 2)  # at least half a window of context


SETTINGS = [(1.0, None, None), (0.5, None, None), (1.7, 5, None), (0.8, None, 0.9), (1.2, 20, 0.5), (1.0, 1, None)]


@pytest.mark.parametrize(("temperature", "top_k", "top_p"), SETTINGS)
def test_the_panel_shows_the_distribution_sample_draws_from(lm, temperature, top_k, top_p):
    model, tok = lm
    pred = compute.predict(model, token_ids(model, tok, TEXT)[:40], k=5)
    logits = pred.last_logits[None].repeat(64, 1)
    drawn = sample(logits, temperature, top_k, top_p, torch.Generator().manual_seed(3))
    probs = sampling_distribution(logits, temperature, top_k, top_p)
    again = torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(3))[:, 0]
    assert torch.equal(drawn, again)
    assert (probs[:, drawn.unique()] > 0).all()
    shaped = compute.reshape(pred.last_logits, temperature, top_k, top_p, k=5)
    assert shaped.kept == int((probs[0] > 0).sum())
    if top_k is not None:
        assert shaped.kept <= top_k
    torch.testing.assert_close(shaped.after, probs[0][shaped.ids])
    torch.testing.assert_close(shaped.before, pred.last_logits.softmax(-1)[shaped.ids])


def test_temperature_zero_is_greedy(lm):
    model, tok = lm
    logits = compute.predict(model, token_ids(model, tok, TEXT)[:30], k=3).last_logits
    shaped = compute.reshape(logits, 0.0, None, None, k=3)
    assert shaped.kept == 1 and shaped.after.tolist() == [1.0, 0.0, 0.0] and shaped.entropy_after == 0


def test_a_seed_reproduces_a_sample_exactly_and_is_generate_itself(lm):
    model, tok = lm
    ids = token_ids(model, tok, "ROMEO:\nI")
    first = compute.continue_text(model, ids, 0.9, None, 0.95, seed=11, max_new_tokens=25)
    assert compute.continue_text(model, ids, 0.9, None, 0.95, seed=11, max_new_tokens=25) == first
    assert compute.continue_text(model, ids, 0.9, None, 0.95, seed=12, max_new_tokens=25) != first
    direct = model.generate(torch.tensor([ids]), 25, temperature=0.9, top_p=0.95, seed=11)
    assert direct[0, len(ids) :].tolist() == first and len(first) == 25


def test_a_continuation_past_n_ctx_keeps_going():
    model, tokenizer = zoo.load("shakespeare-char")
    ids = tokenizer.encode(TEXT[:60])
    new = compute.continue_text(model.eval(), ids, 1.0, None, None, seed=0, max_new_tokens=30)
    assert len(new) == 30


def test_wire_sends_the_engines_float32_numbers_and_thins_to_the_budget(lm):
    model, tok = lm
    ids = token_ids(model, tok, TEXT)
    pred = compute.predict(model, ids, k=10)
    out = wire.predictions("m", model.cfg.n_ctx, model.cfg.d_vocab, False, pred, tok.token_text, 10)
    probs = decode_tensor(out.top_probs.model_dump())
    assert np.array_equal(probs, pred.top_probs.numpy())
    assert out.strings == tok.token_text(ids) and out.thinned is None and out.k == 10
    top_ids = decode_tensor(out.top_ids.model_dump())
    assert out.top_ids.dtype == "uint16" and np.array_equal(top_ids, pred.top_ids.numpy())
    assert set(out.vocab) == {str(i) for i in top_ids.ravel()}
    assert wire.alternatives_within_budget(1024, 50, budget=100_000) < 50


def test_a_response_over_the_byte_budget_sends_fewer_alternatives_and_says_so(lm, monkeypatch):
    model, tok = lm
    pred = compute.predict(model, token_ids(model, tok, TEXT), k=20)
    whole = wire.predictions("m", model.cfg.n_ctx, model.cfg.d_vocab, False, pred, tok.token_text, 20)
    monkeypatch.setattr(wire, "BYTE_BUDGET", 2_000)
    out = wire.predictions("m", model.cfg.n_ctx, model.cfg.d_vocab, False, pred, tok.token_text, 20)
    assert out.k < 20 and out.top_ids.shape == [len(pred.ids), out.k] and out.top_probs.shape == out.top_ids.shape
    assert f"top {out.k} of the 20" in out.thinned
    assert out.ids == whole.ids and out.next_loss == whole.next_loss  # the strip's own fields are never cut
    assert len(out.model_dump_json()) < len(whole.model_dump_json())
