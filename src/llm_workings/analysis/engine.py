"""The engine under activation patching, ablation and path patching: many edited copies of one
run, stacked along the batch axis and scored together.

    scores = score_stacked_runs(model, resid, layer, n_runs, hooks_for, metric, batch_size)

Every copy starts at `layer` from the base run's cached residual stream there (`start_at_layer`),
since nothing before the first edit changes. `hooks_for(runs)` gives the hooks that edit the
copies of one forward pass: copy `i` of `runs` owns rows `i * batch .. (i + 1) * batch` of every
activation, so a hook reads its copies as `act.view(len(runs), batch, ...)`. The techniques differ
only in those hooks (TransformerLens's patching.py has the same shape: one generic sweep, with a
patch setter per named sweep).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from .metrics import Metric, score_runs

if TYPE_CHECKING:
    from ..transformer import Transformer

Hooks = list[tuple[str, Callable[[torch.Tensor, Any], torch.Tensor | None]]]


@torch.no_grad()
def score_stacked_runs(
    model: Transformer,
    resid: torch.Tensor,
    layer: int,
    n_runs: int,
    hooks_for: Callable[[range], Hooks],
    metric: Metric,
    batch_size: int,
) -> torch.Tensor:
    """The metric of `n_runs` edited copies of a run, `[n_runs]`. `resid` `[batch, pos, d_model]` is
    the base run's residual stream entering `layer` (at `layer = n_layers`, the one ln_final reads);
    `batch_size` caps the rows (copies x prompts) of one forward pass. The hooks are built before
    they are attached, so they may run the model's own modules to compute what they write."""
    batch = resid.shape[0]
    per_forward = max(1, batch_size // batch)
    scores = []
    for start in range(0, n_runs, per_forward):
        runs = range(start, min(start + per_forward, n_runs))
        with model.hooks(hooks_for(runs)):
            logits = model(resid.repeat(len(runs), 1, 1), start_at_layer=layer)
        scores.append(score_runs(metric, logits.view(len(runs), batch, *logits.shape[1:])))
    return torch.cat(scores)
