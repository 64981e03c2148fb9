"""The logit lens: the last layer is the model's output, every layer matches TransformerLens's
final norm + unembedding of the same residual stream, and on induction-2l the copy shows up only
after layer 1."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from llm_workings.analysis.conventions import AnalysisError
from llm_workings.analysis.logit_lens import logit_lens
from llm_workings.data.tasks import repeated_tokens

# the module itself: the package exports its function under the same name
lens_module = importlib.import_module("llm_workings.analysis.logit_lens")

HALF = 12


def induction_tokens(batch: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.tensor(repeated_tokens(np.random.default_rng(seed), batch, HALF, 128))


def test_last_layer_is_the_models_logits(induction_model, no_grad):
    tokens = induction_tokens()
    lens = logit_lens(induction_model, tokens, keep_logits=True)
    assert lens.labels == ["0_pre", "1_pre", "final_post"]  # attention-only: no "_mid" streams
    assert torch.equal(lens.logits[-1], induction_model(tokens))
    assert torch.equal(lens.top_tokens[-1, ..., 0], induction_model(tokens).argmax(-1))


def test_every_layer_matches_transformer_lens(reference_pair, no_grad):
    from tl_reference import tokens as reference_tokens

    ours, theirs = reference_pair
    tokens = reference_tokens(batch=2, pos=10)
    lens = logit_lens(ours, tokens, incl_mid=True, keep_logits=True)
    _, cache = theirs.run_with_cache(tokens)
    resid, labels = cache.accumulated_resid(incl_mid=True, return_labels=True)
    expected = theirs.unembed(theirs.ln_final(resid))  # the final norm recomputes its scale per stream
    assert lens.labels == labels == ["0_pre", "0_mid", "1_pre", "1_mid", "2_pre", "2_mid", "final_post"]
    torch.testing.assert_close(lens.logits, expected, atol=1e-4, rtol=1e-4)
    assert torch.equal(lens.logits[-1], ours(tokens))
    # ranks and probabilities of the next token follow from those logits
    index = tokens[None, :, 1:, None].expand(len(labels), -1, -1, 1)
    next_logits = expected[:, :, :-1].gather(-1, index)
    assert torch.equal(lens.target_rank[:, :, :-1], (expected[:, :, :-1] > next_logits).sum(-1))
    torch.testing.assert_close(
        lens.target_prob[:, :, :-1], expected[:, :, :-1].softmax(-1).gather(-1, index)[..., 0], atol=1e-5, rtol=1e-4
    )
    assert (lens.target_rank[:, :, -1] == -1).all() and lens.target_prob[:, :, -1].isnan().all()


def test_induction_copy_happens_in_layer_1(induction_model):
    """On the repeated half the next token is ranked first after layer 1, and nowhere near it before."""
    lens = logit_lens(induction_model, induction_tokens(batch=16))
    # positions HALF + 1 .. 2 HALF - 1 predict a token seen one half earlier; the last has no target
    ranks = lens.target_rank[:, :, HALF + 1 : -1].float()
    top1 = (ranks == 0).float().mean((1, 2))  # per layer: 0_pre, 1_pre, final_post
    print(
        f"share of repeated-half targets ranked first: {[round(x, 3) for x in top1.tolist()]}; "
        f"median rank {ranks.median(-1).values.median(-1).values.tolist()}"
    )
    assert top1[-1] > 0.97
    assert top1[0] < 0.1 and top1[1] < 0.1
    assert ranks[0].median() > 10 and ranks[1].median() > 10
    assert lens.target_prob[-1, :, HALF + 1 : -1].mean() > 0.9


def test_chosen_target_and_memory_option(induction_model, monkeypatch, no_grad):
    tokens = induction_tokens(batch=2)
    target = torch.full_like(tokens, -1)
    target[:, 3] = 5
    monkeypatch.setattr(lens_module, "KEEP_LOGITS_LIMIT", 10)  # as if the vocabulary were big
    lens = logit_lens(induction_model, tokens, target=target, top_k=3)
    assert lens.logits is None and lens.top_tokens.shape == (3, 2, tokens.shape[1], 3)
    full = logit_lens(induction_model, tokens, target=target, keep_logits=True)
    logits = full.logits[:, :, 3]  # [layer, batch, d_vocab]
    assert torch.equal(lens.target_rank[:, :, 3], (logits > logits[..., 5:6]).sum(-1))
    assert (lens.target_rank[:, :, 4] == -1).all()
    assert torch.equal(lens.top_probs, full.top_probs[..., :3])
    assert (lens.top_probs[..., :-1] >= lens.top_probs[..., 1:]).all()


def test_bad_input(induction_model):
    tokens = induction_tokens(batch=2)
    with pytest.raises(AnalysisError, match="target must be token ids"):
        logit_lens(induction_model, tokens, target=tokens[:, :-1])
    with pytest.raises(AnalysisError, match="target ids"):
        logit_lens(induction_model, tokens, target=tokens + 500)
    with pytest.raises(AnalysisError, match="top_k"):
        logit_lens(induction_model, tokens, top_k=0)
    with pytest.raises(AnalysisError, match=r"\[batch, pos\]"):
        logit_lens(induction_model, tokens[0].float())


def test_serializes_and_draws(shakespeare_model, tmp_path):
    tokens = shakespeare_model.to_tokens("ROMEO: I will")
    lens = logit_lens(shakespeare_model, tokens, incl_mid=True)
    assert lens.labels[1] == "0_mid" and lens.str_tokens[0][-1] == "l"
    assert len(lens.top_strs) == len(lens.labels) and len(lens.top_strs[0][0]) == tokens.shape[1]
    data = lens.to_dict()
    assert data["result_type"] == "logit_lens" and data["target_prob"][0][0][-1] is None  # NaN -> null
    fig = lens.plot(tmp_path / "lens.png")
    assert (tmp_path / "lens.png").stat().st_size > 0
    ax = fig.axes[0]
    assert "probability" in ax.get_title() and ax.get_yticklabels()[-1].get_text() == "final_post"
    assert len(ax.texts) == len(lens.labels) * tokens.shape[1]  # each cell names its top-1 token
