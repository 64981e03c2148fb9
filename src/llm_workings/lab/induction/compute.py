"""What the Induction page shows at each snapshot, from the analysis toolkit.

    tokens = repeated_random_tokens(model, batch=SEQUENCES, half=24, seed=0)   # [BOS, r, r]
    view = snapshot_view(model, tokens)        # scores, K-composition, losses, patterns

Every number is the toolkit's, from one forward pass per snapshot: the patterns as
`analysis.attention_patterns` gives them, the head scores as `analysis.head_scores` computes them
from those patterns (ARENA's previous-token and induction scores), the K-composition from
`analysis.composition_scores` (TransformerLens's all_composition_scores), and the loss at each
position from the model's own per-token loss.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

SEQUENCES = 16  # repeated sequences the scores and losses are averaged over; the patterns show the first


@dataclass(frozen=True)
class SnapshotView:
    previous_token: np.ndarray  # [layer, head] float32
    induction: np.ndarray  # [layer, head] float32
    k_composition: np.ndarray  # [head in layer 0, head in layer 1]: how much L0's output feeds L1's keys
    composition_baseline: float  # the mean score of random matrices of the same shapes
    loss_by_position: np.ndarray  # [pos - 1] mean over the sequences: entry t predicts token t + 1
    patterns: np.ndarray  # [layer, head, query, key] on the first sequence, float32


def snapshot_view(model: Any, tokens: Any) -> SnapshotView:
    import torch

    from ...analysis import composition_scores
    from ...analysis.heads import head_kind_score

    with torch.no_grad():  # one pass gives the losses and every pattern; the scores are read off the patterns
        losses, cache = model.run_with_cache(
            tokens, return_type="loss", loss_per_token=True, names_filter=lambda name: name.endswith("attn.hook_pattern")
        )
    pattern = torch.stack([cache["pattern", layer] for layer in range(model.cfg.n_layers)])  # [layer, batch, head, q, k]
    # The random baseline depends only on the shapes: drawn once per shape, not at every snapshot.
    k_comp = composition_scores(model, "K", baseline_samples=2).scores[0, :, 1, :].numpy()
    return SnapshotView(
        previous_token=head_kind_score(pattern, tokens, "previous_token").float().numpy(),
        induction=head_kind_score(pattern, tokens, "induction").float().numpy(),
        k_composition=np.asarray(k_comp, np.float32),
        composition_baseline=_baseline(model.cfg.d_model, model.cfg.d_head),
        loss_by_position=losses.mean(0).float().numpy(),
        patterns=pattern[:, 0].float().numpy(),
    )


@functools.lru_cache(maxsize=16)
def _baseline(d_model: int, d_head: int) -> float:
    from ...analysis.circuits import composition_baseline

    return composition_baseline((d_model, d_head))[0]


def copy_losses(view: SnapshotView, half: int) -> tuple[float, float]:
    """Mean loss on the first copy and on the second, as InductionTask.evaluate splits them: entry t
    predicts token t + 1; the copies occupy positions 1..half and half+1..2*half; the first token of
    each copy is unpredictable (it follows BOS, or the end of the first copy) and is left out."""
    losses = view.loss_by_position
    return float(losses[1:half].mean()), float(losses[half + 1 :].mean())


def featured_heads(last: SnapshotView, n_induction: int = 2) -> tuple[int, list[int]]:
    """The heads the page features, chosen at the last snapshot so they stay the same while scrubbing:
    the layer-0 head with the highest previous-token score, and the `n_induction` layer-1 heads with
    the highest induction scores."""
    previous = int(np.argmax(last.previous_token[0]))
    order = np.argsort(-last.induction[1], kind="stable") if last.induction.shape[0] > 1 else np.array([], int)
    return previous, [int(h) for h in order[:n_induction]]
