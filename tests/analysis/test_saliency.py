"""Input saliency: integrated gradients equal Captum's IntegratedGradients on the same embedding
function and baseline, their attributions add up to the change in the target within 1% at 64
steps, gradient x input equals Captum's InputXGradient, attention rollout is a distribution over
earlier tokens, and bad input is named."""

from __future__ import annotations

import json

import pytest
import torch

from llm_workings.analysis import LogitDiff, NextTokenLoss, repeated_random_tokens
from llm_workings.analysis.conventions import AnalysisError
from llm_workings.analysis.runner import run_analysis
from llm_workings.analysis.saliency import (
    attention_rollout,
    embedding_forward,
    gradient_x_input,
    integrated_gradients,
)

captum_attr = pytest.importorskip("captum.attr")

AUSTEN_PROMPT = "It is a truth universally acknowledged, that a single man"


def top_two(model, tokens: torch.Tensor) -> LogitDiff:
    """The logit difference between the model's two likeliest next tokens after the prompt."""
    with torch.no_grad():
        best = model(tokens)[0, -1].topk(2).indices
    return LogitDiff(best[None])


def captum_forward(model, tokens: torch.Tensor, metric):
    """The same embedding function as ours, scoring each row (one point of the path) on its own."""
    forward = embedding_forward(model, tokens.shape[1])
    return lambda embeddings: metric.batched(forward(embeddings)[:, None])


def captum_ig(model, tokens, metric, baseline_embedding):
    ig = captum_attr.IntegratedGradients(captum_forward(model, tokens, metric))
    inputs = model.embed(tokens).detach()
    attributions = ig.attribute(inputs, baselines=baseline_embedding, n_steps=64, internal_batch_size=64)
    return attributions.sum(-1)


def test_ig_equals_captum_on_a_logit_difference(austen_model):
    tokens = austen_model.to_tokens("Mr. Darcy and Miss")
    metric = top_two(austen_model, tokens)
    ours = integrated_gradients(austen_model, tokens, metric, baseline="zero", steps=64, batch_rows=16)
    theirs = captum_ig(austen_model, tokens, metric, torch.zeros_like(austen_model.embed(tokens)))
    torch.testing.assert_close(ours.scores, theirs, atol=1e-4, rtol=1e-4)
    assert ours.target == "logit difference at position -1"
    assert abs(ours.relative_error) < 0.01  # completeness at 64 steps


def test_ig_equals_captum_on_the_loss_from_a_token_baseline(induction_model):
    tokens = repeated_random_tokens(induction_model, batch=1, half=8, seed=3)
    metric = NextTokenLoss(tokens)
    ours = integrated_gradients(induction_model, tokens, metric, baseline=0, steps=64)
    baseline = induction_model.embed(torch.zeros_like(tokens)).detach()
    torch.testing.assert_close(ours.scores, captum_ig(induction_model, tokens, metric, baseline), atol=1e-4, rtol=1e-4)
    assert ours.baseline == "0" and ours.steps == 64


@pytest.mark.parametrize("model_name", ["austen", "gpt2", "induction"])
def test_completeness_within_one_percent_at_64_steps(model_name, austen_model, induction_model, reference_pair):
    model = {"austen": austen_model, "gpt2": reference_pair[0], "induction": induction_model}[model_name]
    if model_name == "austen":
        tokens, baseline = austen_model.to_tokens(AUSTEN_PROMPT), "zero"
    elif model_name == "gpt2":
        from tl_reference import tokens as reference_tokens

        tokens, baseline = reference_tokens(batch=1, pos=8), "zero"
    else:  # rotary positions: the zero embedding is degenerate (see the next test), so a token's
        tokens, baseline = repeated_random_tokens(model, batch=1, half=10, seed=0), 0
    result = integrated_gradients(model, tokens, top_two(model, tokens), baseline=baseline, steps=64)
    change = result.metric - result.baseline_metric
    assert abs(change) > 0.1  # a real change to attribute
    assert result.completeness_error == pytest.approx(float(result.scores.sum()) - change, abs=1e-5)
    assert result.relative_error < 0.01


def test_zero_baseline_on_a_rotary_layernorm_model_needs_more_steps(induction_model):
    """With no position embedding, the stream along the path is alpha * embedding, which layernorm
    cannot tell from the embedding itself until alpha is near 0: the whole change happens in a sliver
    of the path, which 64 points resolve only roughly and 128 well."""
    tokens = repeated_random_tokens(induction_model, batch=1, half=10, seed=0)
    metric = top_two(induction_model, tokens)
    errors = [integrated_gradients(induction_model, tokens, metric, steps=s).relative_error for s in (32, 64, 128)]
    assert errors[0] > 0.05 and errors[2] < 0.005
    assert errors[0] > errors[1] > errors[2]


def test_gradient_x_input_equals_captum(austen_model):
    tokens = austen_model.to_tokens(AUSTEN_PROMPT)
    metric = top_two(austen_model, tokens)
    ours = gradient_x_input(austen_model, tokens, metric)
    theirs = captum_attr.InputXGradient(captum_forward(austen_model, tokens, metric)).attribute(
        austen_model.embed(tokens).detach().requires_grad_()
    )
    torch.testing.assert_close(ours.scores, theirs.sum(-1), atol=1e-5, rtol=1e-4)
    assert ours.completeness_error is None and not ours.heuristic


def test_attention_rollout_is_a_distribution_over_earlier_tokens(induction_model):
    tokens = repeated_random_tokens(induction_model, batch=2, half=6, seed=1)
    rollout = attention_rollout(induction_model, tokens, position=8)
    assert rollout.heuristic and rollout.position == 8
    torch.testing.assert_close(rollout.scores.sum(-1), torch.ones(2))
    assert (rollout.scores[:, 9:] == 0).all()  # causal: nothing after the position
    assert (rollout.scores[:, 8] >= 0.5**2).all()  # the residual path keeps half per layer, at least


def test_attention_rollout_of_one_layer_is_its_mixed_mean_pattern(modadd_model):
    tokens = torch.tensor([[3, 5, 113]])
    _, cache = modadd_model.run_with_cache(tokens, names_filter=lambda n: n.endswith("hook_pattern"))
    expected = 0.5 * cache["pattern", 0].mean(1)[:, -1] + 0.5 * torch.tensor([0.0, 0.0, 1.0])
    torch.testing.assert_close(attention_rollout(modadd_model, tokens).scores, expected)


def test_results_serialize_and_draw(austen_model, tmp_path):
    tokens = austen_model.to_tokens("Mr. Darcy")
    result = integrated_gradients(austen_model, tokens, top_two(austen_model, tokens), steps=8)
    data = json.loads(result.to_json())
    assert data["result_type"] == "saliency" and data["method"] == "integrated_gradients"
    assert len(data["scores"][0]) == tokens.shape[1] and data["str_tokens"][0][-1] == " Darcy"
    assert result.plot(tmp_path / "ig.svg") is not None and (tmp_path / "ig.svg").stat().st_size > 2000


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, t: integrated_gradients(m, t, NextTokenLoss(t), steps=0), "steps must be an integer from 1"),
        (lambda m, t: integrated_gradients(m, t, NextTokenLoss(t), baseline=128), "baseline is 'zero' or a token id in [0, 128)"),
        (lambda m, t: integrated_gradients(m, t, NextTokenLoss(t), baseline="pad"), "baseline is 'zero'"),
        (lambda m, t: attention_rollout(m, t, position=12), "position must be an integer in [-12, 12)"),
        (
            lambda m, t: gradient_x_input(m, t, LogitDiff(torch.tensor([[1, 2], [3, 4]]))),
            "answers are for 2 prompts; tokens have 1",
        ),
        (lambda m, t: gradient_x_input(m, t[:, :0], NextTokenLoss(t)), "tokens"),
    ],
)
def test_bad_input_is_named(induction_model, call, message):
    tokens = repeated_random_tokens(induction_model, batch=1, half=6, seed=0)[:, :12]
    with pytest.raises(AnalysisError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        call(induction_model, tokens)


def test_runner_reports_the_completeness_error():
    result, headline = run_analysis("austen-bpe", "saliency", steps=32)
    assert result.method == "integrated_gradients" and result.steps == 32
    assert f"completeness error {result.completeness_error:+.3g}" in headline


def test_llmw_analyze_saliency_takes_steps_and_a_baseline(tmp_path, capsys):
    from llm_workings import cli

    assert cli.main(["analyze", "induction-2l", "saliency", "--steps", "16", "--baseline", "0", "--out", str(tmp_path)]) == 0
    assert "completeness error" in capsys.readouterr().out
    data = json.loads((tmp_path / "saliency.json").read_text())
    assert data["result_type"] == "saliency" and data["steps"] == 16 and data["baseline"] == "0"
    assert (tmp_path / "saliency.png").stat().st_size > 2000
