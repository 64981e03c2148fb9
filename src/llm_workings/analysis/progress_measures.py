"""Progress measures for grokking (Nanda et al. 2023, "Progress measures for grokking via mechanistic
interpretability"): numbers that move steadily while test accuracy still sits at its plateau.

A model that has grokked a + b mod p computes its logits as waves cos(w(a + b - c)) for a few key
frequencies w. Written over the inputs (a, b), the logit of each answer c is then a combination of
cos(w(a + b)) and sin(w(a + b)) for those w. Two measures follow:

- **restricted loss**: keep only those directions of the logits (and each answer's constant), and
  score the result on all p² pairs. It falls as the circuit forms, long before test accuracy rises.
- **excluded loss**: remove only those directions, and score on the training pairs. It rises as the
  memorised answers come to depend on the circuit.

The key frequencies are those of the final model (found from its embedding, as `fourier.py` does);
the measures are then computed for every snapshot with the same frequencies, as the paper does.

    measures = progress_measures(snapshots, p=113, key_freqs=[14, 35, 41, 52], train_x=x, train_y=y)
    measures.restricted_loss, measures.excluded_loss     # one per snapshot
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from .conventions import AnalysisError
from .fourier import _n_freqs, all_pairs
from .results import Result

if TYPE_CHECKING:
    from ..transformer import Transformer


def sum_directions(p: int, freqs: Sequence[int]) -> torch.Tensor:
    """Orthonormal rows `[2 * len(freqs), p * p]` over the pairs (a, b), a-major: cos(2πw(a+b)/p) and
    sin(2πw(a+b)/p) for each frequency w, each scaled to unit norm."""
    n = _n_freqs(p)
    bad = [w for w in freqs if isinstance(w, bool) or not isinstance(w, int) or not 1 <= w < n or 2 * w == p]
    if bad:
        raise AnalysisError(f"key frequencies must be integers in 1..{(p - 1) // 2} for p={p}; got {bad}")
    a, b = torch.meshgrid(torch.arange(p, dtype=torch.float64), torch.arange(p, dtype=torch.float64), indexing="ij")
    total = (a + b).flatten()
    rows = []
    for w in sorted(set(freqs)):
        angle = 2 * math.pi * w * total / p
        rows += [torch.cos(angle), torch.sin(angle)]
    directions = torch.stack(rows)
    return directions / directions.norm(dim=1, keepdim=True)


@torch.no_grad()
def answer_logits(model: Transformer, p: int) -> torch.Tensor:
    """The logits over the p answers on every pair, `[p * p, p]` float64, a-major (as `all_pairs`)."""
    tokens, _ = all_pairs(p, model.W_E.device)
    return model(tokens)[:, -1, :p].double().cpu()


def split_logits(logits: torch.Tensor, p: int, freqs: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(restricted, excluded) logits `[p * p, p]`: for each answer, the part along the key frequencies'
    cos/sin(w(a + b)) directions plus its mean over the pairs, and the rest."""
    directions = sum_directions(p, freqs)  # [2K, p²]
    along = directions.T @ (directions @ logits)  # projection of each answer's column onto the key directions
    mean = logits.mean(0, keepdim=True)  # a constant per answer: the 2D constant term the paper keeps
    return along + mean, logits - along


@dataclass
class ProgressMeasures(Result):
    """Per snapshot: the restricted loss (all pairs) and the excluded loss (training pairs), with the
    full model's losses on the same pairs to compare."""

    steps: list[int]
    key_freqs: list[int]
    restricted_loss: list[float]
    excluded_loss: list[float]
    train_loss: list[float]
    test_loss: list[float]
    p: int
    result_type = "progress_measures"
    notes: dict[str, str] = field(
        default_factory=lambda: {
            "restricted_loss": "the logits kept to the key frequencies' cos/sin(w(a+b)) directions and each answer's mean, on all pairs",
            "excluded_loss": "the logits with those directions removed, on the training pairs",
        }
    )

    def draw(self, fig: Any) -> None:
        ax = fig.add_subplot()
        for name, values in (
            ("train loss", self.train_loss),
            ("test loss", self.test_loss),
            ("restricted loss", self.restricted_loss),
            ("excluded loss", self.excluded_loss),
        ):
            ax.plot(self.steps, values, label=name)
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("loss (nats)")
        ax.set_title(f"progress measures, p={self.p}, key frequencies {self.key_freqs}", fontsize=9)
        ax.legend(fontsize=8)


def snapshot_measures(
    model: Transformer, p: int, key_freqs: Sequence[int], train_x: torch.Tensor, train_y: torch.Tensor
) -> dict[str, float]:
    """One snapshot's measures: restricted and excluded loss, and the model's own train and test loss
    and accuracy, all from one pass over the p² pairs."""
    return measures_from_logits(answer_logits(model, p), p, key_freqs, train_x, train_y)


def measures_from_logits(
    logits: torch.Tensor, p: int, key_freqs: Sequence[int], train_x: torch.Tensor, train_y: torch.Tensor
) -> dict[str, float]:
    """`snapshot_measures` from the logits `[p * p, p]` of `answer_logits`."""
    restricted, excluded = split_logits(logits, p, key_freqs)
    _, answers = all_pairs(p)
    train_rows = (train_x[:, 0] * p + train_x[:, 1]).long().cpu()
    if not torch.equal(answers[train_rows], train_y.long().cpu()):
        raise AnalysisError("train_y is not (a + b) mod p of train_x; pass the task's own training pairs")
    is_test = torch.ones(p * p, dtype=torch.bool)
    is_test[train_rows] = False

    def loss(values: torch.Tensor, rows: torch.Tensor) -> float:
        return F.cross_entropy(values[rows], answers[rows]).item()

    def accuracy(rows: torch.Tensor) -> float:
        return (logits[rows].argmax(-1) == answers[rows]).double().mean().item()

    return {
        "restricted_loss": F.cross_entropy(restricted, answers).item(),
        "excluded_loss": loss(excluded, train_rows),
        "train_loss": loss(logits, train_rows),
        "test_loss": loss(logits, is_test),
        "train_accuracy": accuracy(train_rows),
        "test_accuracy": accuracy(is_test),
    }


def progress_measures(
    models: Sequence[tuple[int, Transformer]],
    p: int,
    key_freqs: Sequence[int],
    train_x: torch.Tensor,
    train_y: torch.Tensor,
) -> ProgressMeasures:
    """The progress measures of each (step, model) snapshot, with the same key frequencies for all
    (those of the final model, e.g. `fourier.key_frequencies(embedding_spectrum(final, p))`).
    `train_x` `[n, 3]` and `train_y` `[n]` are the training pairs (a, b, '=') and their answers."""
    if not models:
        raise AnalysisError("progress_measures needs at least one (step, model) snapshot")
    if not key_freqs:
        raise AnalysisError("progress_measures needs at least one key frequency")
    rows = [snapshot_measures(model, p, key_freqs, train_x, train_y) for _, model in models]
    return ProgressMeasures(
        steps=[step for step, _ in models],
        key_freqs=sorted(set(key_freqs)),
        restricted_loss=[r["restricted_loss"] for r in rows],
        excluded_loss=[r["excluded_loss"] for r in rows],
        train_loss=[r["train_loss"] for r in rows],
        test_loss=[r["test_loss"] for r in rows],
        p=p,
    )
