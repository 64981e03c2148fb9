"""Head scores: known answers on induction-2l, exact agreement with TransformerLens's head_detector
and attention patterns on a tiny GPT-2, and the definitions on hand-built patterns."""

from __future__ import annotations

import math

import pytest
import torch

from llm_workings.analysis.conventions import AnalysisError
from llm_workings.analysis.heads import (
    HEAD_KINDS,
    AttentionPattern,
    HeadScores,
    attention_entropy,
    attention_patterns,
    detect_head_scores,
    detection_patterns,
    detection_score,
    head_kind_score,
    head_pattern,
    head_scores,
    repeated_random_tokens,
    target_attention,
)
from llm_workings.train.tasks import InductionTask

HALF = 20


@pytest.fixture(scope="module")
def induction_tokens(induction_model):
    return repeated_random_tokens(induction_model, batch=16, half=HALF, seed=0, distinct=True)


@pytest.fixture(scope="module")
def induction_scores(induction_model, induction_tokens):
    return head_scores(induction_model, induction_tokens)


# -- known answers --------------------------------------------------------------------------------
def test_induction_model_has_layer1_induction_heads_and_a_layer0_previous_token_head(induction_scores):
    induction, previous = induction_scores.scores["induction"], induction_scores.scores["previous_token"]
    # measured: layer 1 = [0.943, 0.939, 0.901, 0.913] (all four heads induct), layer 0 <= 0.04
    ((layer, _, best),) = induction_scores.top("induction", 1)
    assert layer == 1 and best > 0.8
    assert induction[0].max() < 0.3
    # measured: L0H2 = 0.925; next best 0.375 (L0H3); layer 1 <= 0.04
    ((layer, head, best),) = induction_scores.top("previous_token", 1)
    assert (layer, best > 0.8) == (0, True)
    others = torch.cat([previous[0, :head], previous[0, head + 1 :], previous[1]])
    assert others.max() < 0.5
    assert induction_scores.scores["duplicate_token"].max() < 0.3  # nothing here needs a duplicate head


def test_scores_agree_with_the_trainers_own_scoring(induction_model, induction_tokens, induction_scores):
    _, cache = induction_model.run_with_cache(induction_tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    theirs = InductionTask(induction_model.cfg.d_vocab, HALF).head_scores(cache)
    # distinct halves: each second-copy token has exactly one earlier occurrence, so the layouts agree exactly
    torch.testing.assert_close(induction_scores.scores["induction"], torch.tensor(theirs["induction_score"]), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        induction_scores.scores["previous_token"], torch.tensor(theirs["prev_token_score"]), atol=1e-5, rtol=0
    )
    # with repeats inside a half, our general definition also counts those, so it moves only a little
    tokens = repeated_random_tokens(induction_model, batch=16, half=HALF, seed=1)
    _, cache = induction_model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    theirs = torch.tensor(InductionTask(induction_model.cfg.d_vocab, HALF).head_scores(cache)["induction_score"])
    ours = head_kind_score(attention_patterns(induction_model, cache), tokens, "induction")
    assert (ours - theirs).abs().max() < 0.05


# -- definitions on hand-built inputs -------------------------------------------------------------
def test_detection_patterns_follow_earlier_occurrences_in_any_text():
    tokens = torch.tensor([5, 1, 2, 1, 2, 1])  # not a repeated-halves layout
    p = detection_patterns(tokens)
    assert torch.equal(p["previous_token_head"], torch.diag(torch.ones(5), -1))
    dup = {(q, k) for q, k in p["duplicate_token_head"].nonzero().tolist()}
    assert dup == {(3, 1), (4, 2), (5, 1), (5, 3)}
    ind = {(q, k) for q, k in p["induction_head"].nonzero().tolist()}
    assert ind == {(3, 2), (4, 3), (5, 2), (5, 4)}  # the token after each earlier occurrence


def test_ideal_heads_score_one_and_target_attention_averages_only_queries_with_targets():
    tokens = torch.tensor([[0, 7, 3, 7, 3, 9, 7]])
    masks = detection_patterns(tokens)
    for mask in masks.values():
        rows = mask[0].clone()
        rows[rows.sum(-1) == 0, 0] = 1  # queries with no target look at BOS
        ideal = (rows / rows.sum(-1, keepdim=True))[None, None, None]  # [layer, batch, head, q, k]
        assert target_attention(ideal, mask).item() == pytest.approx(1.0)
    # a head that always attends BOS scores 0 on duplicates (no query's earlier twin is BOS)
    bos_head = torch.zeros(1, 1, 1, 7, 7)
    bos_head[..., 0] = 1
    assert target_attention(bos_head, masks["duplicate_token_head"]).item() == 0.0


def test_entropy_of_uniform_and_one_hot_patterns():
    n = 6
    uniform = torch.full((2, 3, 4, n, n), 1 / n)
    torch.testing.assert_close(attention_entropy(uniform), torch.full((2, 4), math.log(n)))
    causal = torch.ones(n, n).tril()
    causal = (causal / causal.sum(-1, keepdim=True)).expand(1, 1, 1, n, n)
    per_query = attention_entropy(causal, per_query=True)[0, 0]
    torch.testing.assert_close(per_query, torch.log(torch.arange(1, n + 1.0)))
    assert attention_entropy(torch.eye(n).expand(1, 1, 1, n, n)).item() == 0.0


# -- TransformerLens reference --------------------------------------------------------------------
@pytest.fixture
def tl_prompts(reference_pair, monkeypatch):
    """Three [BOS, r, r] prompts (one with a repeat inside its half), given to TransformerLens by name:
    its detect_head tokenizes strings, and the reference model has no tokenizer."""
    from tl_reference import tokens as random_tokens

    _, theirs = reference_pair
    body = random_tokens(3, 8, seed=1)
    body[1, 5] = body[1, 2]
    seqs = torch.cat([torch.zeros(3, 1, dtype=torch.long), body, body], dim=1)
    by_name = {f"prompt{i}": seqs[i : i + 1] for i in range(len(seqs))}
    monkeypatch.setattr(theirs, "to_tokens", lambda s, *a, **k: by_name[s] if isinstance(s, str) else seqs)
    return seqs, list(by_name)


@pytest.mark.parametrize("kind", HEAD_KINDS)
def test_detection_scores_match_transformer_lens(reference_pair, tl_prompts, kind):
    from transformer_lens.head_detector import detect_head

    ours, theirs = reference_pair
    seqs, names = tl_prompts
    _, one_cache = theirs.run_with_cache(seqs[1:2], remove_batch_dim=True)
    for exclude_bos in (False, True):
        for exclude_current in (False, True):
            flags = {"exclude_bos": exclude_bos, "exclude_current_token": exclude_current}
            one = detect_head(theirs, names[1], kind, cache=one_cache, **flags)
            torch.testing.assert_close(detect_head_scores(ours, seqs[1], kind, *flags.values()), one, atol=1e-4, rtol=0)
            if exclude_bos == exclude_current:  # a list of prompts runs TL once per prompt: two settings suffice
                expected = detect_head(theirs, names, kind, **flags)  # the mean over prompts
                got = detect_head_scores(ours, seqs, kind, *flags.values())
                torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
                assert got.max() - got.min() > 0.02  # heads differ by far more than the tolerance


def test_attention_patterns_match_transformer_lens(reference_pair, tl_prompts):
    ours, theirs = reference_pair
    seqs, _ = tl_prompts
    _, cache = theirs.run_with_cache(seqs)
    expected = torch.stack([cache["pattern", layer] for layer in range(theirs.cfg.n_layers)])
    patterns = attention_patterns(ours, seqs)
    assert patterns.shape == (3, 3, 4, 17, 17)
    torch.testing.assert_close(patterns, expected, atol=1e-5, rtol=0)
    # one prompt, one head: detection_score on [q, k] equals TL's per-head function
    from transformer_lens.head_detector import compute_head_attention_similarity_score

    mask = detection_patterns(seqs[0])["induction_head"]
    expected = compute_head_attention_similarity_score(
        expected[2, 0, 1], mask, exclude_bos=True, exclude_current_token=False, error_measure="mul"
    )
    assert detection_score(patterns[2, 0, 1], mask, exclude_bos=True).item() == pytest.approx(expected, abs=1e-5)


# -- results and errors ---------------------------------------------------------------------------
def test_results_serialize_and_draw(induction_model, induction_tokens, induction_scores, tmp_path):
    data = induction_scores.to_dict()
    assert data["result_type"] == "head_scores" and set(data["scores"]) == {
        "previous_token",
        "duplicate_token",
        "induction",
        "entropy",
    }
    assert len(data["scores"]["induction"]) == 2 and data["layer_labels"] == ["L0", "L1"]
    fig = induction_scores.plot(tmp_path / "heads.png", size=(8, 2))
    assert (tmp_path / "heads.png").stat().st_size > 0 and len(fig.axes) == 8  # 4 maps + colorbars
    layer, head, _ = induction_scores.top("induction", 1)[0]
    result = head_pattern(induction_model, induction_tokens, layer, head, prompt=3)
    assert isinstance(result, AttentionPattern) and result.pattern.shape == (41, 41)
    assert result.str_tokens == [str(t) for t in induction_tokens[3].tolist()]
    result.plot(tmp_path / "pattern.svg")
    assert HeadScores({"x": torch.zeros(2, 3)}).head_labels == ["H0", "H1", "H2"]


def test_bad_input_is_rejected(induction_model, induction_tokens, induction_scores):
    with pytest.raises(AnalysisError, match=r"\[batch, pos\]"):
        attention_patterns(induction_model, induction_tokens[None])
    with pytest.raises(AnalysisError, match="integer"):
        detection_patterns(induction_tokens.float())
    with pytest.raises(AnalysisError, match="unknown head kind"):
        detect_head_scores(induction_model, induction_tokens, "copying_head")
    with pytest.raises(AnalysisError, match="unknown head kind"):
        head_scores(induction_model, induction_tokens, kinds=("inductive",))
    with pytest.raises(AnalysisError, match="unknown head kind"):
        induction_scores.top("nope")
    with pytest.raises(AnalysisError, match=r"layer 2 is out of range \[0, 2\)"):
        head_pattern(induction_model, induction_tokens, layer=2, head=0)
    with pytest.raises(AnalysisError, match="head -1 is out of range"):
        head_pattern(induction_model, induction_tokens, layer=0, head=-1)
    with pytest.raises(AnalysisError, match="does not fit"):
        detection_score(torch.rand(1, 2, 4, 5, 5), torch.zeros(4, 4))
    with pytest.raises(AnalysisError, match="distinct"):
        repeated_random_tokens(10, batch=2, half=10, distinct=True)  # only 9 non-BOS ids
