"""Activation patching: which activations carry the information that separates two inputs?

Run the model on a corrupted prompt, put back one piece of the clean run's activations (one
layer's residual stream at one position, one head's output, one head's attention pattern), and
score the output with a metric. Cells whose patch restores the clean behaviour carry what the
corruption removed. This is "denoising", TransformerLens's convention; `direction="noise"` runs
the clean prompt and patches in corrupted pieces instead.

    metric = LogitDiff(answers)                                     # answers [batch, 2]
    result = patch_residual(model, clean, corrupted, metric)       # values [layer, pos]
    result.normalized                                              # 0 = corrupted, 1 = clean
    patch_heads(model, clean, corrupted, metric)                   # each head's z, all positions
    patch_heads(model, clean, corrupted, metric, by_position=True) # [layer, pos, head]
    patch_heads(model, clean, corrupted, metric, activation="pattern")

Sweeps are batched: the patched runs of one layer are stacked along the batch axis and scored
together (`metric.batched`), and each starts at that layer from the base run's cached residual
stream, since nothing before it changes. `batch_size` caps the rows of one forward pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm.auto import tqdm

from ..transformer import Transformer, act_name
from .conventions import AnalysisError, Direction, check_direction, check_layers, check_pair
from .engine import Hooks, score_stacked_runs
from .metrics import Metric, normalized, score_runs
from .results import Result, heatmap

# activation -> the per-example axes of its tensor (batch excluded), as hook shape comments give them
RESIDUAL = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
HEAD_VECTORS = ("z", "q", "k", "v", "result")
AXES = {
    **{name: ("pos", "d_model") for name in RESIDUAL},
    **{name: ("pos", "head", "d_head") for name in ("z", "q", "k", "v")},
    "result": ("pos", "head", "d_model"),
    "pattern": ("head", "dest_pos", "src_pos"),
}


class ScoredAgainstRuns(Result):
    """A result whose `values` are metric scores, read against the unpatched runs' `clean` and
    `corrupted` scores (fields of the dataclass that uses this)."""

    values: torch.Tensor
    clean: float
    corrupted: float

    @property
    def normalized(self) -> torch.Tensor:
        """0 where the patched run scores like the corrupted run, 1 where it scores like the clean one."""
        return normalized(self.values, self.clean, self.corrupted)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "normalized": self.normalized.tolist()}


@dataclass
class PatchingResult(ScoredAgainstRuns):
    """The metric after each patch, `values` shaped by `axes` (e.g. ["layer", "pos"]), with the
    unpatched clean and corrupted scores it is read against."""

    activation: str
    axes: list[str]
    values: torch.Tensor
    clean: float
    corrupted: float
    direction: str = "denoise"
    labels: dict[str, list[str]] = field(default_factory=dict)
    result_type = "activation_patching"

    def draw(self, fig: Any) -> None:
        values, rows, cols = _as_grid(self.normalized, self.axes, self.labels)
        ax = fig.add_subplot()
        heatmap(
            ax,
            values,
            cols[1],
            rows[1],
            title=f"patching {self.activation} ({self.direction})",
            xlabel=cols[0],
            ylabel=rows[0],
            colorbar_label="normalized metric (1 = clean)",
        )


def _as_grid(values: torch.Tensor, axes: list[str], labels: dict[str, list[str]]):
    """Two axes as they are; three as (first x last) rows against the middle one, e.g. layer.head x pos."""

    def names(axis: str, n: int) -> list[str]:
        return labels.get(axis) or [str(i) for i in range(n)]

    if values.ndim <= 1:
        values = values.reshape(1, -1)
        axes = ["", axes[0] if axes else ""]
    if values.ndim == 2:
        return values, (axes[0], names(axes[0], values.shape[0])), (axes[1], names(axes[1], values.shape[1]))
    first, middle, last = axes
    if middle == "head":  # [layer, head, pos]: rows are already layer.head
        grid, row_axis, col_axis = values.flatten(0, 1), (first, middle), last
    else:  # [layer, pos, head] -> [layer.head, pos]
        grid, row_axis, col_axis = values.permute(0, 2, 1).flatten(0, 1), (first, last), middle
    n0, n1 = values.shape[0], values.shape[axes.index(row_axis[1])]
    row_labels = [f"L{a}H{b}" for a in range(n0) for b in range(n1)]
    return grid, ("layer.head", row_labels), (col_axis, names(col_axis, grid.shape[1]))


# -- input checks ------------------------------------------------------------------------------------
def check_activation(model: Transformer, activation: str, allowed: tuple[str, ...]) -> None:
    if activation not in allowed:
        raise AnalysisError(f"cannot patch {activation!r} here; choose one of {', '.join(allowed)}")
    if act_name(activation, 0) not in model.hook_dict:
        raise AnalysisError(
            f"this model has no {act_name(activation, 0)!r} hook "
            f"({'attention-only' if model.cfg.attn_only else 'parallel attention and MLP'})"
        )


def check_cells(model: Transformer, activation: str, indexed: tuple[str, ...]) -> tuple[str, ...]:
    """The axes of `activation`, once it is known to exist in `model` and to have every `indexed` axis."""
    check_activation(model, activation, tuple(AXES))
    axes = AXES[activation]
    unknown = [axis for axis in indexed if axis not in axes]
    if unknown:
        raise AnalysisError(f"{activation} has axes {', '.join(axes)}; cannot index by {', '.join(unknown)}")
    return axes


def cached_runs(model: Transformer, clean: torch.Tensor, corrupted: torch.Tensor, names: list[str], direction: Direction):
    """(base tokens, base cache, source cache, clean score logits, corrupted logits): the base run is the
    one patched into, the source run the one patched from."""
    check_direction(direction)
    keep = set(names) | {f"blocks.{layer}.hook_resid_pre" for layer in range(model.cfg.n_layers)}
    with torch.no_grad():
        clean_logits, clean_cache = model.run_with_cache(clean, names_filter=lambda n: n in keep)
        corrupted_logits, corrupted_cache = model.run_with_cache(corrupted, names_filter=lambda n: n in keep)
    if direction == "denoise":
        return corrupted, corrupted_cache, clean_cache, clean_logits, corrupted_logits
    return clean, clean_cache, corrupted_cache, clean_logits, corrupted_logits


def token_labels(model: Transformer, tokens: torch.Tensor) -> list[str]:
    """The first prompt's tokens as text when the model has a tokenizer, else their positions."""
    if model.tokenizer is None:
        return [str(i) for i in range(tokens.shape[1])]
    return [f"{model.tokenizer.decode([t])!r}"[1:-1] for t in tokens[0].tolist()]


# -- the batched sweep -------------------------------------------------------------------------------
def cell_masks(shape: tuple[int, ...], axes: tuple[str, ...], indexed: tuple[str, ...]) -> torch.Tensor:
    """One boolean mask per cell, `[cells, *shape]` with size 1 on the axes a cell does not index;
    cells run in row-major order of `indexed`, so the scores reshape to `[*sizes of indexed]`."""
    sizes = [shape[axes.index(axis)] for axis in indexed]
    grids = torch.meshgrid(*[torch.arange(n) for n in sizes], indexing="ij")
    cells = torch.stack([g.reshape(-1) for g in grids], dim=1)  # [cells, len(indexed)]
    mask_shape = [shape[i] if axis in indexed else 1 for i, axis in enumerate(axes)]
    masks = torch.zeros(len(cells), *mask_shape, dtype=torch.bool)
    index = [torch.arange(len(cells))]
    for axis in axes:
        index.append(cells[:, indexed.index(axis)] if axis in indexed else torch.zeros(len(cells), dtype=torch.long))
    masks[tuple(index)] = True
    return masks


def _patch_where(name: str, source: torch.Tensor, masks: torch.Tensor) -> Callable[[range], Hooks]:
    """The patch setter of every sweep here: copy i of a forward pass takes `source` at hook `name`
    wherever mask i is True, and keeps its own activation elsewhere."""

    def hooks_for(runs: range) -> Hooks:
        chunk = masks[runs.start : runs.stop].to(source.device)

        def patch(act: torch.Tensor, _hook: Any) -> torch.Tensor:
            copies = act.view(len(chunk), -1, *act.shape[1:])
            return torch.where(chunk[:, None], source[None].to(act.dtype), copies).view_as(act)

        return [(name, patch)]

    return hooks_for


def _sizes(source: torch.Tensor, axes: tuple[str, ...], indexed: tuple[str, ...]) -> list[int]:
    """The lengths of the `indexed` axes of a cached activation `[batch, *axes]`."""
    return [source.shape[1 + axes.index(axis)] for axis in indexed]


def activation_patch(
    model: Transformer,
    clean: torch.Tensor,
    corrupted: torch.Tensor,
    metric: Metric,
    activation: str,
    indexed: tuple[str, ...],
    layers: Iterable[int] | None = None,
    direction: Direction = "denoise",
    batch_size: int = 64,
    progress: bool = True,
    on_layer: Callable[[int, torch.Tensor], None] | None = None,
) -> PatchingResult:
    """The general sweep: patch `activation` in each layer, one cell per index along the `indexed` axes
    (e.g. ("pos",) for the residual stream, ("head",) or ("pos", "head") for head vectors).

    `on_layer(layer, scores)` is called after each layer with that layer's scores, shaped like one
    row of the result; a caller may draw a partial result with it, or raise to stop the sweep."""
    axes = check_cells(model, activation, indexed)
    clean, corrupted = check_pair(model, clean, corrupted)
    layers = check_layers(model, layers)
    if batch_size < 1:
        raise AnalysisError(f"batch_size is the most rows in one forward pass, at least 1; got {batch_size}")
    names = [act_name(activation, layer) for layer in layers]
    _, base_cache, source_cache, clean_logits, corrupted_logits = cached_runs(model, clean, corrupted, names, direction)
    values = []
    for layer, name in zip(tqdm(layers, desc=f"patching {activation}", disable=not progress, leave=False), names):
        source = source_cache[name]
        masks = cell_masks(tuple(source.shape[1:]), axes, indexed)
        patch = _patch_where(name, source, masks)
        values.append(score_stacked_runs(model, base_cache["resid_pre", layer], layer, len(masks), patch, metric, batch_size))
        if on_layer is not None:
            on_layer(layer, values[-1].view(*_sizes(source, axes, indexed)))
    sizes = _sizes(source_cache[names[0]], axes, indexed)
    labels = {"layer": [str(layer) for layer in layers]}
    for axis in ("pos", "dest_pos"):
        if axis in indexed:
            labels[axis] = token_labels(model, clean)
    return PatchingResult(
        activation,
        ["layer", *indexed],
        torch.stack(values).view(len(layers), *sizes),
        float(score_runs(metric, clean_logits[None])),
        float(score_runs(metric, corrupted_logits[None])),
        direction,
        labels,
    )


def patch_residual(
    model: Transformer, clean: torch.Tensor, corrupted: torch.Tensor, metric: Metric, activation: str = "resid_pre", **kwargs: Any
) -> PatchingResult:
    """Patch one position of a residual-stream activation (`resid_pre`, `resid_mid`, `resid_post`) or a
    block's `attn_out` / `mlp_out`, for every layer x position: values `[layer, pos]`."""
    if activation not in RESIDUAL:
        raise AnalysisError(f"patch_residual patches {', '.join(RESIDUAL)}; got {activation!r} (heads: patch_heads)")
    return activation_patch(model, clean, corrupted, metric, activation, ("pos",), **kwargs)


def patch_heads(
    model: Transformer,
    clean: torch.Tensor,
    corrupted: torch.Tensor,
    metric: Metric,
    activation: str = "z",
    by_position: bool = False,
    **kwargs: Any,
) -> PatchingResult:
    """Patch each head's `z` (its output before W_O; or `q`, `k`, `v`, `result`) at every position,
    values `[layer, head]`, or one position at a time, `[layer, pos, head]`. `activation="pattern"`
    patches each head's attention pattern: `[layer, head]`, or by query position `[layer, head, dest_pos]`.
    With grouped-query attention, `k` and `v` cells are the key/value heads."""
    if activation == "pattern":
        indexed = ("head", "dest_pos") if by_position else ("head",)
    elif activation in HEAD_VECTORS:
        indexed = ("pos", "head") if by_position else ("head",)
    else:
        raise AnalysisError(
            f"patch_heads patches {', '.join(HEAD_VECTORS)} or pattern; got {activation!r} (the residual stream: patch_residual)"
        )
    return activation_patch(model, clean, corrupted, metric, activation, indexed, **kwargs)
