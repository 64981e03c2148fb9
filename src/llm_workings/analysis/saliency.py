"""Input saliency: how much each input token contributes to a target (a logit, a logit difference or
the loss), by three methods that often disagree.

- gradient x input: the gradient of the target with respect to each token's embedding, dotted
  with that embedding (a first-order Taylor term; Shrikumar et al. 2016);
- integrated gradients (Sundararajan et al. 2017): the same dot product with the gradient
  averaged along the straight path from a baseline embedding to the real one, with the
  Gauss-Legendre rule Captum uses by default. Its attributions sum to the change in the target
  from the baseline to the input; the result reports how far they miss (`completeness_error`);
- attention rollout (Abnar & Zuidema 2020): a heuristic, not an attribution of the target. Each
  layer's head-averaged attention, mixed half and half with the identity for the residual path,
  multiplied through the layers; it ignores the MLPs, the values and the target altogether.

The attributed input is the token embedding `W_E[token]` (`hook_embed`); learned position
embeddings are added to it unchanged, since a position is not something the prompt chooses.

    target = LogitDiff(torch.tensor([[correct, wrong]]))          # or LogitDiff([answer]), NextTokenLoss(tokens)
    ig = integrated_gradients(model, tokens, target, steps=64)    # baseline "zero" or a token id
    ig.scores[0], ig.completeness_error, ig.relative_error
    gradient_x_input(model, tokens, target).scores
    attention_rollout(model, tokens, position=-1).scores          # heuristic=True
    ig.plot("ig.png")
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .conventions import AnalysisError, check_tokens
from .metrics import LogitDiff, Metric
from .results import Result

if TYPE_CHECKING:
    from ..transformer import Transformer

METHODS = ("gradient_x_input", "integrated_gradients", "attention_rollout")
MAX_STEPS = 1024
DEFAULT_BATCH_ROWS = 64  # prompt copies per forward pass of integrated gradients


@dataclass
class Saliency(Result):
    """scores: `[batch, pos]`, one number per input token (for attributions, summed over d_model).
    metric: the target at the input; baseline_metric, completeness_error (sum of scores minus
    (metric - baseline_metric)) and relative_error (that over |metric - baseline_metric|) for
    integrated gradients, else None. heuristic: True where the scores are not an attribution of the
    target (attention rollout)."""

    result_type = "saliency"
    method: str
    tokens: torch.Tensor
    scores: torch.Tensor
    target: str
    heuristic: bool = False
    metric: float | None = None
    baseline: str | None = None
    steps: int | None = None
    baseline_metric: float | None = None
    completeness_error: float | None = None
    relative_error: float | None = None
    position: int | None = None
    str_tokens: list[list[str]] | None = None

    def draw(self, fig: Any, prompt: int = 0) -> None:
        """The prompt's tokens as bars of their scores."""
        if not 0 <= prompt < self.tokens.shape[0]:
            raise AnalysisError(f"prompt must be in [0, {self.tokens.shape[0]}), got {prompt}")
        ax = fig.add_subplot(1, 1, 1)
        values = self.scores[prompt].tolist()
        labels = self.str_tokens[prompt] if self.str_tokens else [str(t) for t in self.tokens[prompt].tolist()]
        ax.bar(range(len(values)), values, color=["tab:red" if v >= 0 else "tab:blue" for v in values])
        ax.set_xticks(range(len(values)), [repr(x)[1:-1] for x in labels], rotation=90, fontsize=7)
        ax.axhline(0, color="black", linewidth=0.8)
        name = self.method.replace("_", " ")
        ax.set_ylabel("share of attention (heuristic)" if self.heuristic else f"attribution to the {self.target}")
        title = f"{name}: {self.target}"
        if self.completeness_error is not None:
            title += f" (completeness error {self.completeness_error:+.3g}, {self.relative_error:.2%})"
        ax.set_title(title, fontsize=9)


def _str_tokens(model: Transformer, tokens: torch.Tensor) -> list[list[str]] | None:
    if getattr(model, "tokenizer", None) is None:
        return None
    return [[model.tokenizer.decode([t]) for t in row] for row in tokens.tolist()]


def describe(metric: Metric) -> str:
    """What a metric measures, in words, for titles and the JSON."""
    answers = getattr(metric, "answers", None)
    if answers is not None:
        where = f"at position {metric.position}"
        return f"logit difference {where}" if answers.ndim == 2 else f"answer logit {where}"
    if hasattr(metric, "tokens"):
        return "next-token loss"
    return getattr(metric, "__name__", type(metric).__name__)


def embedding_forward(model: Transformer, n_pos: int, stop_at_layer: int | None = None) -> Any:
    """The model as a function of token embeddings `[rows, pos, d_model]` -> logits (or, with
    `stop_at_layer`, the stream entering that block): what the saliency methods differentiate, and
    what the Captum check wraps. Learned positions are added as the model adds them."""

    def forward(embeddings: torch.Tensor) -> torch.Tensor:
        residual = embeddings
        if model.cfg.positions == "learned":
            residual = residual + model.pos_embed(0, n_pos)
        return model(residual, start_at_layer=0, stop_at_layer=stop_at_layer)

    return forward


def _scores_of_runs(metric: Metric, logits: torch.Tensor, batch: int) -> torch.Tensor:
    """The metric of each run of `[runs * batch, pos, d_vocab]` logits, with the graph kept: `[runs]`."""
    logits = logits.view(-1, batch, *logits.shape[1:])
    if hasattr(metric, "batched"):
        return metric.batched(logits).reshape(-1)
    return torch.stack([torch.as_tensor(metric(run)).reshape(()) for run in logits])


def path_scores(model: Transformer, metric: Metric, tokens: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The metric of each run of embeddings `[runs * batch, pos, d_model]`, `[runs]`, graph kept.

    A logit (difference) at one position reads only that position's stream, in the direction of
    its answers' unembedding columns. So the stream is computed only up to that position (later
    ones cannot reach it: attention is causal), and only those columns are unembedded: the same
    function, without the `[rows, pos, d_vocab]` logits, which dominate a small model's cost on a
    large vocabulary. Any other metric gets the full logits."""
    batch, n_pos = tokens.shape
    answers, position = getattr(metric, "answers", None), getattr(metric, "position", None)
    if not isinstance(metric, LogitDiff) or isinstance(position, torch.Tensor):
        forward = embedding_forward(model, n_pos)
        return lambda points: _scores_of_runs(metric, forward(points), batch)
    if answers.shape[0] != batch:
        raise AnalysisError(f"the target's answers are for {answers.shape[0]} prompts; tokens have {batch}")
    last = position % n_pos
    forward = embedding_forward(model, last + 1, stop_at_layer=model.cfg.n_layers)
    answers = answers.to(model.W_E.device)
    W_U, b_U = model.W_U, model.unembed.b_U
    pick = (lambda x: x[:, 0] - x[:, 1]) if answers.ndim == 2 else (lambda x: x)
    direction = pick(W_U.T[answers])  # [batch, d_model]
    bias = 0.0 if b_U is None else pick(b_U[answers])  # [batch]

    def scores(points: torch.Tensor) -> torch.Tensor:
        final = model.ln_final(forward(points[:, : last + 1])[:, last])  # [runs * batch, d_model]
        per_prompt = (final.view(-1, batch, final.shape[-1]) * direction).sum(-1) + bias  # [runs, batch]
        return per_prompt.mean(1)  # LogitDiff's mean over prompts

    return scores


def _value(score_path: Callable[[torch.Tensor], torch.Tensor], embeddings: torch.Tensor) -> float:
    """The target at one set of embeddings, or an AnalysisError when it cannot be read from this model's logits."""
    with torch.no_grad():
        try:
            value = score_path(embeddings)
        except (IndexError, RuntimeError) as e:
            raise AnalysisError(
                f"the target cannot be read from this model's logits for tokens {list(embeddings.shape[:2])}: {e}"
            ) from e
    if value.numel() != 1:
        raise AnalysisError(f"the target must be one number per run; got {value.numel()}")
    return float(value)


def baseline_embedding(model: Transformer, tokens: torch.Tensor, baseline: str | int) -> torch.Tensor:
    """The path's start `[batch, pos, d_model]`: "zero", or a token id (a pad or mask token) at every position."""
    if baseline == "zero":
        return torch.zeros(*tokens.shape, model.cfg.d_model, device=tokens.device, dtype=model.W_E.dtype)
    if isinstance(baseline, bool) or not isinstance(baseline, int) or not 0 <= baseline < model.cfg.d_vocab:
        raise AnalysisError(f"baseline is 'zero' or a token id in [0, {model.cfg.d_vocab}); got {baseline!r}")
    return model.embed(torch.full_like(tokens, baseline)).detach()


def gauss_legendre(steps: int) -> tuple[list[float], list[float]]:
    """Points in [0, 1] along the path and their weights (summing to 1), as Captum's "gausslegendre"."""
    import numpy as np

    if not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise AnalysisError(f"steps must be an integer from 1 to {MAX_STEPS}; got {steps!r}")
    points, weights = np.polynomial.legendre.leggauss(steps)
    return (0.5 * (points + 1)).tolist(), (0.5 * weights).tolist()


def integrated_gradients(
    model: Transformer,
    tokens: torch.Tensor,
    metric: Metric,
    baseline: str | int = "zero",
    steps: int = 64,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> Saliency:
    """Integrated gradients of `metric` (a function of the logits `[batch, pos, d_vocab]`, such as
    LogitDiff or NextTokenLoss) with respect to the token embeddings, from `baseline` ("zero", or a
    token id whose embedding fills every position) in `steps` points, `batch_rows` path points x
    prompts per forward pass."""
    tokens = check_tokens(model, tokens)
    batch, n_pos = tokens.shape
    if not isinstance(batch_rows, int) or batch_rows < 1:
        raise AnalysisError(f"batch_rows must be a positive integer; got {batch_rows!r}")
    alphas, weights = gauss_legendre(steps)
    score_path = path_scores(model, metric, tokens)
    inputs = model.embed(tokens).detach()
    metric_value = _value(score_path, inputs)
    start = baseline_embedding(model, tokens, baseline)
    delta = inputs - start
    total_grad = torch.zeros_like(inputs, dtype=torch.float32)
    per_forward = max(1, batch_rows // batch)
    for first in range(0, steps, per_forward):
        alpha = torch.tensor(alphas[first : first + per_forward], device=inputs.device, dtype=inputs.dtype)
        weight = torch.tensor(weights[first : first + per_forward], device=inputs.device, dtype=torch.float32)
        points = (start[None] + alpha[:, None, None, None] * delta[None]).flatten(0, 1).requires_grad_(True)
        scores = score_path(points)  # [runs]
        (grad,) = torch.autograd.grad(scores.sum(), points)  # the runs are independent: one backward
        total_grad += (grad.view(len(alpha), batch, n_pos, -1).float() * weight[:, None, None, None]).sum(0)
    scores = (delta.float() * total_grad).sum(-1)
    baseline_value = _value(score_path, start)
    change = metric_value - baseline_value
    error = float(scores.sum()) - change
    return Saliency(
        method="integrated_gradients",
        tokens=tokens,
        scores=scores.detach(),
        target=describe(metric),
        metric=metric_value,
        baseline=str(baseline),
        steps=steps,
        baseline_metric=baseline_value,
        completeness_error=error,
        relative_error=abs(error) / abs(change) if change else float("inf"),
        str_tokens=_str_tokens(model, tokens),
    )


def gradient_x_input(model: Transformer, tokens: torch.Tensor, metric: Metric) -> Saliency:
    """The gradient of `metric` at each token embedding, dotted with that embedding: `[batch, pos]`."""
    tokens = check_tokens(model, tokens)
    score_path = path_scores(model, metric, tokens)
    inputs = model.embed(tokens).detach()
    metric_value = _value(score_path, inputs)
    inputs.requires_grad_(True)
    score = score_path(inputs)[0]
    (grad,) = torch.autograd.grad(score, inputs)
    return Saliency(
        method="gradient_x_input",
        tokens=tokens,
        scores=(grad.float() * inputs.detach().float()).sum(-1),
        target=describe(metric),
        metric=metric_value,
        str_tokens=_str_tokens(model, tokens),
    )


@torch.no_grad()
def attention_rollout(model: Transformer, tokens: torch.Tensor, position: int = -1) -> Saliency:
    """Attention rollout at `position` (a heuristic): each layer's attention averaged over heads,
    mixed half and half with the identity (the residual path), rows renormalised, multiplied from the
    first layer to the last; the row at `position`, `[batch, pos]`, sums to 1."""
    tokens = check_tokens(model, tokens)
    n_pos = tokens.shape[1]
    if isinstance(position, bool) or not isinstance(position, int) or not -n_pos <= position < n_pos:
        raise AnalysisError(f"position must be an integer in [-{n_pos}, {n_pos}); got {position!r}")
    _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith("attn.hook_pattern"))
    eye = torch.eye(n_pos, device=tokens.device)
    rollout = eye.expand(tokens.shape[0], -1, -1)
    for layer in range(model.cfg.n_layers):
        mixed = 0.5 * cache["pattern", layer].float().mean(1) + 0.5 * eye  # [batch, query, key]
        rollout = (mixed / mixed.sum(-1, keepdim=True)) @ rollout
    return Saliency(
        method="attention_rollout",
        tokens=tokens,
        scores=rollout[:, position],
        target=f"attention flow into position {position}",
        heuristic=True,
        position=position if position >= 0 else n_pos + position,
        str_tokens=_str_tokens(model, tokens),
    )
