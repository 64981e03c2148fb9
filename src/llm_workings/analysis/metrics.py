"""Metrics that patching, ablation and attribution score runs with.

A metric is called TransformerLens-style on the logits of one run, `[batch, pos, d_vocab]`, and
returns a scalar. The metrics here also score many runs at once: `metric.batched(logits)` takes
`[runs, batch, pos, d_vocab]` and returns `[runs]`, so a patching sweep scores every patched run of
one forward pass together. Any plain function `logits -> scalar` works too; a sweep then calls it
once per run.

    metric = LogitDiff(answers)           # answers [batch, 2]: (correct, wrong) token ids
    metric(clean_logits)                  # mean over prompts of logit[correct] - logit[wrong]
    normalized(value, clean, corrupted)   # 0 = the corrupted run's value, 1 = the clean run's
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from .conventions import AnalysisError, Position

Metric = Callable[[torch.Tensor], torch.Tensor]


def _check_logits(logits: torch.Tensor, batch: int, what: str) -> None:
    if logits.ndim < 3 or logits.shape[-3] != batch:
        raise AnalysisError(f"{what} expects logits [..., batch={batch}, pos, d_vocab]; got {list(logits.shape)}")


def answer_logits(logits: torch.Tensor, answers: torch.Tensor, position: Position = -1) -> torch.Tensor:
    """The logits of `answers` at `position`: logits `[..., batch, pos, d_vocab]`, answers `[batch]`
    or `[batch, k]` token ids, position an int or one per prompt `[batch]` -> `[..., batch(, k)]`."""
    batch = answers.shape[0]
    _check_logits(logits, batch, "answer_logits")
    if isinstance(position, int):
        at = logits[..., position, :]  # [..., batch, d_vocab]
    else:
        position = torch.as_tensor(position, device=logits.device)
        if position.shape != (batch,):
            raise AnalysisError(f"position must be an int or one per prompt [batch={batch}]; got {list(position.shape)}")
        at = logits[..., torch.arange(batch, device=logits.device), position, :]
    index = answers.to(logits.device)
    index = index if index.ndim == 2 else index[:, None]
    picked = at.gather(-1, index.expand(*at.shape[:-2], *index.shape))
    return picked if answers.ndim == 2 else picked[..., 0]


def logit_diff(logits: torch.Tensor, answers: torch.Tensor, position: Position = -1, per_prompt: bool = False) -> torch.Tensor:
    """logit[correct] - logit[wrong] at `position` for answers `[batch, 2]` (a single answer
    `[batch]` gives its logit alone); the mean over prompts unless `per_prompt`."""
    if answers.ndim == 2 and answers.shape[1] != 2:
        raise AnalysisError(f"answers are [batch, 2] (correct, wrong) token ids or [batch]; got {list(answers.shape)}")
    picked = answer_logits(logits, answers, position)
    diff = picked[..., 0] - picked[..., 1] if answers.ndim == 2 else picked
    return diff if per_prompt else diff.mean(-1)


def normalized(value: torch.Tensor | float, clean: float, corrupted: float) -> torch.Tensor | float:
    """Rescale a metric so the corrupted run scores 0 and the clean run scores 1."""
    if clean == corrupted:
        raise AnalysisError(f"the clean and corrupted runs score the same ({clean:.4g}); nothing to normalize by")
    return (value - corrupted) / (clean - corrupted)


class LogitDiff:
    """The logit difference between the correct and the wrong answer, averaged over prompts."""

    def __init__(self, answers: torch.Tensor, position: Position = -1) -> None:
        answers = torch.as_tensor(answers)
        if (
            answers.dtype not in (torch.int64, torch.int32)
            or answers.ndim not in (1, 2)
            or (answers.ndim == 2 and answers.shape[1] != 2)
        ):
            raise AnalysisError(
                f"answers are token ids [batch, 2] (correct, wrong) or [batch]; got {answers.dtype} {list(answers.shape)}"
            )
        self.answers, self.position = answers.long(), position

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return logit_diff(logits, self.answers, self.position)

    def batched(self, logits: torch.Tensor) -> torch.Tensor:
        return logit_diff(logits, self.answers, self.position)

    def __repr__(self) -> str:
        return f"LogitDiff({self.answers.shape[0]} prompts, position={self.position})"


class NextTokenLoss:
    """Mean next-token cross-entropy of `tokens`, optionally only at the predicting positions `mask`
    `[batch, pos - 1]` (True where the prediction counts, e.g. the repeated half of a sequence)."""

    def __init__(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        if tokens.ndim != 2 or tokens.shape[1] < 2:
            raise AnalysisError(f"NextTokenLoss needs tokens [batch, pos >= 2]; got {list(tokens.shape)}")
        if mask is not None and mask.shape != (tokens.shape[0], tokens.shape[1] - 1):
            raise AnalysisError(
                f"mask must be [batch, pos - 1] = {[tokens.shape[0], tokens.shape[1] - 1]}; got {list(mask.shape)}"
            )
        self.tokens, self.mask = tokens, mask

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return self.batched(logits[None])[0]

    def batched(self, logits: torch.Tensor) -> torch.Tensor:
        _check_logits(logits, self.tokens.shape[0], "NextTokenLoss")
        runs = logits.shape[0]
        targets = self.tokens[:, 1:].to(logits.device).expand(runs, -1, -1)
        losses = F.cross_entropy(logits[..., :-1, :].flatten(0, 2).float(), targets.flatten(), reduction="none")
        losses = losses.view(runs, *targets.shape[1:])
        if self.mask is None:
            return losses.mean((1, 2))
        mask = self.mask.to(losses.device)
        return (losses * mask).sum((1, 2)) / mask.sum()


def score_runs(metric: Metric, logits: torch.Tensor) -> torch.Tensor:
    """Score `[runs, batch, pos, d_vocab]` with `metric.batched` when it has one, else run by run."""
    if hasattr(metric, "batched"):
        return metric.batched(logits).detach().float().reshape(-1)
    return torch.stack([torch.as_tensor(metric(run)).detach().float().reshape(()) for run in logits])
