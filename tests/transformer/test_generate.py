"""Generation: the KV cache changes nothing but speed, greedy decoding matches Hugging Face's, and
sampling is repeatable under a seed and honours top_k / top_p."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hf_helpers import build_hf, max_diff, tokens

from llm_workings.transformer import KVCache, Transformer

pytestmark = pytest.mark.usefixtures("one_thread")

TOL = 1e-4
MODELS = [
    # untied: a random GPT-2 with tied embeddings greedily repeats its input token, which proves little
    pytest.param("gpt2", dict(tie_word_embeddings=False), id="gpt2-learned_positions"),
    pytest.param("neox", dict(rotary_pct=0.25), id="pythia-partial_rotary"),
    pytest.param("llama", dict(num_key_value_heads=1), id="llama-gqa1"),
    pytest.param("mistral", dict(sliding_window=4), id="mistral-window4"),  # generation runs well past the window
    pytest.param("qwen2", {}, id="qwen2"),
]


def pair(family: str, overrides: dict, **kw):
    hf = build_hf(family, **overrides, **kw)
    return hf, Transformer.from_hf(hf)


def greedy(model: Transformer, toks: torch.Tensor, n: int, **kw) -> torch.Tensor:
    return model.generate(toks, max_new_tokens=n, stop_at_eos=False, **kw)


@pytest.mark.parametrize("family, overrides", MODELS)
def test_greedy_matches_hugging_face_with_and_without_kv_cache(family: str, overrides: dict) -> None:
    hf, ours = pair(family, overrides, seed=3)
    toks, n = tokens(2, 8, seed=1), 16
    cached = greedy(ours, toks, n)
    uncached = greedy(ours, toks, n, use_kv_cache=False)
    ref = hf.generate(
        toks,
        attention_mask=torch.ones_like(toks),
        max_new_tokens=n,
        min_new_tokens=n,
        do_sample=False,
        pad_token_id=0,
        eos_token_id=None,
    )
    assert cached.shape == (2, 8 + n)
    assert torch.equal(cached[:, :8], toks)
    assert torch.equal(cached, uncached)
    assert torch.equal(cached, ref)
    assert len(set(cached[:, 8:].flatten().tolist())) > 2  # the continuation is not one repeated token


@pytest.mark.parametrize("chunk", [1, 3])
@pytest.mark.parametrize("family, overrides", MODELS)
def test_cached_logits_equal_full_sequence_logits(family: str, overrides: dict, chunk: int) -> None:
    """Feed a prefix, then `chunk` tokens at a time through one KVCache: each step's logits are the
    full-sequence logits at those positions. Rotary models run past 64 positions, where the cache's
    buffers first grow."""
    _, ours = pair(family, overrides)
    total = 60 if family == "gpt2" else 80  # GPT-2 learned 64 positions
    toks = tokens(2, total, seed=2)
    full = ours(toks)
    cache, start = KVCache(ours.cfg.n_layers), 5
    with torch.no_grad():
        steps = [ours(toks[:, :start], kv_cache=cache)]
        for i in range(start, total, chunk):
            steps.append(ours(toks[:, i : i + chunk], kv_cache=cache))
    assert cache.length == total
    assert max_diff(torch.cat(steps, dim=1), full) < TOL


def test_cached_explicit_attention_equals_full_sequence() -> None:
    """The step-by-step attention path (pattern hooked) with a KV cache and a sliding window."""
    _, ours = pair("mistral", dict(sliding_window=4))
    toks = tokens(1, 20, seed=4)
    full = ours(toks)
    cache, patterns = KVCache(ours.cfg.n_layers), []
    with ours.hooks([("blocks.1.attn.hook_pattern", lambda x, hook: patterns.append(x.clone()))]), torch.no_grad():
        steps = [ours(toks[:, :6], kv_cache=cache)] + [ours(toks[:, i : i + 1], kv_cache=cache) for i in range(6, 20)]
    assert max_diff(torch.cat(steps, dim=1), full) < TOL
    last = patterns[-1][0, :, 0]  # [head, key] for the query at position 19
    assert last.shape[-1] == 20 and last[:, :16].abs().max() == 0 and last[:, 16:].min() > 0


def test_learned_positions_stop_at_n_ctx() -> None:
    _, ours = pair("gpt2", {})
    with pytest.raises(ValueError, match="n_ctx=64"):
        greedy(ours, tokens(1, 60), 10)


# -- sampling ---------------------------------------------------------------------------------------
SAMPLING = [
    pytest.param(dict(temperature=1.0), id="t1"),
    pytest.param(dict(temperature=0.7, top_k=5), id="top_k5"),
    pytest.param(dict(temperature=1.0, top_p=0.8), id="top_p0.8"),
    pytest.param(dict(temperature=1.3, top_k=10, top_p=0.9), id="top_k10-top_p0.9"),
]


@pytest.fixture(scope="module")
def llama() -> Transformer:
    return Transformer.from_hf(build_hf("llama", num_key_value_heads=2))


@pytest.mark.parametrize("kw", SAMPLING)
def test_sampling_is_repeatable_and_cache_independent(llama: Transformer, kw: dict) -> None:
    toks = tokens(3, 6)
    a = llama.generate(toks, max_new_tokens=20, seed=7, stop_at_eos=False, **kw)
    b = llama.generate(toks, max_new_tokens=20, seed=7, stop_at_eos=False, **kw)
    c = llama.generate(toks, max_new_tokens=20, seed=7, stop_at_eos=False, use_kv_cache=False, **kw)
    other = llama.generate(toks, max_new_tokens=20, seed=8, stop_at_eos=False, **kw)
    assert torch.equal(a, b)
    assert torch.equal(a, c)
    assert not torch.equal(a, other)
    assert not torch.equal(a, greedy(llama, toks, 20))


@pytest.mark.parametrize("kw", [dict(top_k=1), dict(top_p=1e-6), dict(temperature=0.0, top_k=3)], ids=str)
def test_sampling_that_keeps_one_token_is_greedy(llama: Transformer, kw: dict) -> None:
    toks = tokens(2, 6)
    sampled = llama.generate(toks, max_new_tokens=12, seed=0, stop_at_eos=False, **{"temperature": 1.0, **kw})
    assert torch.equal(sampled, greedy(llama, toks, 12))


@pytest.mark.parametrize("k, p", [(3, None), (None, 0.5)], ids=["top_k3", "top_p0.5"])
def test_sampled_tokens_come_from_the_allowed_set(llama: Transformer, k: int | None, p: float | None) -> None:
    """Each sampled token is among the top k, or in the smallest set whose probability reaches p,
    of the full-sequence distribution at its step."""
    toks = tokens(4, 6)
    out = llama.generate(toks, max_new_tokens=15, temperature=1.0, top_k=k, top_p=p, seed=1, stop_at_eos=False)
    with torch.no_grad():  # generate's output is an inference tensor; autograd may not save it
        probs = llama(out[:, :-1])[:, 5:].softmax(-1)  # predictions for positions 6..20
    sorted_probs, order = probs.sort(-1, descending=True)
    rank = (order == out[:, 6:, None]).float().argmax(-1)  # the sampled token's rank at each step
    if k is not None:
        assert rank.max() < k
        assert rank.max() > 0  # not merely greedy
    else:
        mass_above = (sorted_probs.cumsum(-1) - sorted_probs).gather(-1, rank[..., None])[..., 0]
        assert (mass_above < p + 1e-5).all()
        assert rank.max() > 0


def test_generate_rejects_bad_sampling_settings(llama: Transformer) -> None:
    toks = tokens(1, 4)
    for kw, field in (
        (dict(temperature=-1.0), "temperature"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_k=0), "top_k"),
    ):
        with pytest.raises(ValueError, match=field):
            llama.generate(toks, max_new_tokens=2, **kw)


def _stopped_at_eos(free: torch.Tensor, eos: int, start: int) -> torch.Tensor:
    """What stop_at_eos should make of the free-running continuation `free`: each row eos-padded after its
    first new eos, and the batch cut once every row has finished."""
    out, ends = free.clone(), []
    for row in out:
        hits = (row[start:] == eos).nonzero()
        ends.append(start + int(hits[0, 0]) + 1 if len(hits) else row.shape[0])
        row[ends[-1] :] = eos
    return out[:, : max(ends)]


def test_stop_at_eos(llama: Transformer) -> None:
    toks = tokens(1, 6)
    free = greedy(llama, toks, 10)
    eos = int(free[0, 6 + 3])  # the fourth new token; make it the end of text
    assert eos not in free[0, 6:9].tolist(), "pick a prompt whose continuation has no earlier repeat"
    stopped = llama.generate(toks, max_new_tokens=10, eos_token_id=eos)
    assert torch.equal(stopped, free[:, :10])
    assert torch.equal(stopped, _stopped_at_eos(free, eos, 6))
    # in a batch, a finished row is padded with eos while the others continue
    batch = torch.cat([toks, tokens(1, 6, seed=5)])
    free_batch = greedy(llama, batch, 10)
    assert eos not in free_batch[1, 6:].tolist(), "the second row should run to the end"
    stopped_batch = llama.generate(batch, max_new_tokens=10, eos_token_id=eos)
    assert stopped_batch.shape == (2, 16) and (stopped_batch[0, 9:] == eos).all()
    assert torch.equal(stopped_batch, _stopped_at_eos(free_batch, eos, 6))
    # stop_at_eos=False ignores it
    assert torch.equal(llama.generate(batch, max_new_tokens=10, eos_token_id=eos, stop_at_eos=False), free_batch)


def test_the_tokenizers_eos_is_the_default(llama_dir: Path) -> None:
    model = Transformer.from_hf(llama_dir)
    toks = model.to_tokens("the dog")
    free = greedy(model, toks, 8)
    n = toks.shape[1]
    assert model.tokenizer.eos_token_id not in free[0, n:].tolist()
    assert torch.equal(model.generate(toks, max_new_tokens=8), free)  # runs on: no eos came
    stop = int(free[0, n + 2])
    first = free[0, n:].tolist().index(stop)
    model.tokenizer.eos_token = model.tokenizer.convert_ids_to_tokens(stop)  # now that word ends the text
    assert model.tokenizer.eos_token_id == stop
    assert torch.equal(model.generate(toks, max_new_tokens=8), free[:, : n + first + 1])


def test_text_in_text_out(llama_dir: Path) -> None:
    """A string prompt gets BOS prepended, and comes back as the prompt and its continuation, without BOS."""
    model = Transformer.from_hf(llama_dir)
    prompt = "the cat sat on"
    out = model.generate(prompt, max_new_tokens=5, stop_at_eos=False)
    assert isinstance(out, str)
    ids = greedy(model, model.to_tokens(prompt), 5)
    assert ids[0, 0] == model.tokenizer.bos_token_id
    assert out == model.to_string(ids[0, 1:])
    assert out.startswith(prompt + " ") and len(out.split()) == len(prompt.split()) + 5


def test_generated_tokens_can_be_fed_back_to_the_model(llama: Transformer) -> None:
    out = llama.generate(tokens(1, 6), max_new_tokens=3, stop_at_eos=False)
    logits, cache = llama.run_with_cache(out)
    assert logits.shape[:2] == out.shape


def test_a_ragged_text_batch_is_refused_rather_than_continued_after_its_padding(llama_dir: Path) -> None:
    model = Transformer.from_hf(llama_dir)
    with pytest.raises(ValueError, match="different token lengths"):
        model.generate(["the cat", "the bird sang a song"], max_new_tokens=4)
    texts = model.generate(["the cat", "the dog"], max_new_tokens=2, stop_at_eos=False)
    assert [t.split()[:2] for t in texts] == [["the", "cat"], ["the", "dog"]]  # text in, text out
    assert all(len(t.split()) == 4 for t in texts)


def test_top_p_of_one_samples_from_the_whole_distribution(monkeypatch) -> None:
    """At top_p=1.0 no token may be dropped, however float32 rounds the cumulative sum."""
    from llm_workings.transformer.generate import sample

    seen = []

    def record(probs, n, generator=None):
        seen.append(probs)
        return torch.zeros(probs.shape[0], n, dtype=torch.long)

    monkeypatch.setattr(torch, "multinomial", record)
    sample(torch.randn(4, 50257, generator=torch.Generator().manual_seed(0)) * 3, top_p=1.0)
    assert (seen[0] > 0).all()


def test_learned_positions_too_short_for_the_request_fail_before_generating() -> None:
    _, ours = pair("gpt2", {})  # n_positions 64
    with pytest.raises(ValueError, match="need more than the n_ctx=64 positions"):
        ours.generate(tokens(1, 60), max_new_tokens=10)


def test_crop_context_slides_the_window_past_n_ctx() -> None:
    """Past n_ctx, each token is the greedy choice given the last n_ctx tokens, as nanoGPT's sampler does."""
    _, ours = pair("gpt2", {})  # n_positions 64
    out = ours.generate(tokens(1, 60), max_new_tokens=10, crop_context=True)
    assert out.shape == (1, 70)
    with torch.no_grad():
        for i in range(60, 70):
            window = out[:, max(0, i - 64) : i]
            assert out[0, i] == ours(window)[0, -1].argmax()
