"""The Patching page's engine side: every number it shows comes from the analysis toolkit, called here.

    before = runs(model, pair)                              # the clean and corrupted scores, and what each predicts
    estimate = preview(model, pair, "resid_pre", "all")    # attribution patching: one forward, one backward
    result = sweep(model, pair, "resid_pre", "all", on_layer=...)   # activation patching, layer by layer
    grid(result)                                            # the values as the page's 2-d heatmap
    disagreements(estimate, result)                         # where the gradient's map and the real one differ most
    path(model, pair, "L0H2")                               # that head path-patched into each later head's q, k, v
    ablated(model, pair, ["L1H0", "L0N17"], "mean")         # the clean run's metric with those knocked out

The toolkit's checks raise `AnalysisError` naming the problem; the routes pass its words on.
torch is imported inside the functions, so importing the lab stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .pair import Pair
from .settings import RESIDUAL

TOP_K = 8  # next-token alternatives shown for picking the answers
FLOPS_PER_SECOND = 1e10  # about what one CPU thread did here on small models: a sweep estimated above a second runs as a job
MAX_NOW_SECONDS = 1.0
QKV = ("q", "k", "v")
MAX_HEAD_ROWS = 48  # beyond this many later heads, path patching shows each later layer's heads together only


def indexed(activation: str, positions: str) -> tuple[str, ...]:
    """The axes a sweep of `activation` patches one cell per index of, as the toolkit's wrappers choose them."""
    if activation in RESIDUAL:
        return ("pos",)
    if activation == "pattern":
        return ("head", "dest_pos") if positions == "each" else ("head",)
    return ("pos", "head") if positions == "each" else ("head",)


def check(model: Any, activation: str, positions: str) -> None:
    """The toolkit's own check that `model` has `activation` (an MLP on an attention-only model has not)."""
    from ...analysis.patching import check_cells

    check_cells(model, activation, indexed(activation, positions))


@dataclass(frozen=True)
class Runs:
    clean: float
    corrupted: float
    clean_top: list[tuple[int, float]]  # (id, probability) of the likeliest next tokens
    corrupted_top: list[tuple[int, float]]


def runs(model: Any, pair: Pair) -> Runs:
    import torch

    from ...analysis.metrics import score_runs

    with torch.no_grad():
        logits = model(torch.cat([pair.clean, pair.corrupted]))
    clean, corrupted = (float(score_runs(pair.metric, row[None, None])[0]) for row in logits)
    top = logits[:, -1].float().softmax(-1).topk(min(TOP_K, logits.shape[-1]))
    rows = [list(zip(i.tolist(), v.tolist())) for i, v in zip(top.indices, top.values)]
    return Runs(clean, corrupted, rows[0], rows[1])


def sweep(
    model: Any, pair: Pair, activation: str, positions: str, direction: str, on_layer: Callable[[int, Any], None] | None = None
) -> Any:
    """Activation patching as a PatchingResult: "denoise" runs the corrupted prompt with one clean piece put
    back, "noise" the clean prompt with one corrupted piece put in."""
    from ...analysis.patching import patch_heads, patch_residual

    if activation in RESIDUAL:
        return patch_residual(
            model, pair.clean, pair.corrupted, pair.metric, activation, direction=direction, progress=False, on_layer=on_layer
        )
    return patch_heads(
        model,
        pair.clean,
        pair.corrupted,
        pair.metric,
        activation,
        by_position=positions == "each",
        progress=False,
        on_layer=on_layer,
    )


def preview(model: Any, pair: Pair, activation: str, positions: str, direction: str) -> Any:
    """Attribution patching on the same cells: the sweep's linear estimate from one forward and one backward."""
    from ...analysis.attribution_patching import attribution_patch

    return attribution_patch(
        model, pair.clean, pair.corrupted, pair.metric, activation, indexed(activation, positions), direction=direction
    )


@dataclass(frozen=True)
class Grid:
    values: Any  # [rows, cols] float32 tensor
    rows: list[str]
    cols: list[str]
    row_axis: str
    col_axis: str
    rows_per_layer: int


def grid(result: Any, n_heads: int) -> Grid:
    """A result's values as rows x columns: [layer, pos] and [layer, head] as they are; [layer, pos, head]
    and [layer, head, dest_pos] as layer.head rows against positions (the toolkit's figure layout)."""
    from ...analysis.patching import _as_grid

    axes = result.axes
    n_layers = result.values.shape[0]
    labels = {"layer": [f"L{layer}" for layer in range(n_layers)], "head": [f"H{h}" for h in range(n_heads)]}
    for axis in ("pos", "dest_pos"):
        if axis in axes:
            labels[axis] = [str(i) for i in range(result.values.shape[axes.index(axis)])]
    values, (row_axis, rows), (col_axis, cols) = _as_grid(result.values, axes, labels)
    return Grid(values.float(), rows, cols, row_axis, col_axis, len(rows) // n_layers)


def layer_rows(scores: Any, axes: tuple[str, ...]) -> list[list[float]]:
    """One layer's scores (from the sweep's `on_layer`) as that layer's rows of the grid."""
    if scores.ndim == 1:
        return [scores.float().tolist()]
    if axes[0] == "pos":  # [pos, head] -> a row per head
        return scores.T.float().tolist()
    return scores.float().tolist()  # [head, dest_pos]


@dataclass(frozen=True)
class Disagreement:
    row: int
    col: int
    estimate: float  # both normalized: 0 = corrupted, 1 = clean
    actual: float


def disagreements(estimate: Any, actual: Any, n_heads: int, k: int = 3) -> tuple[float, list[Disagreement]]:
    """The Pearson correlation of the two maps (the toolkit's), and the `k` cells where their normalized
    values differ most (both normalized by the real runs' clean and corrupted scores)."""
    from ...analysis.attribution_patching import pearson
    from ...analysis.metrics import normalized

    est = normalized(grid(estimate, n_heads).values, actual.clean, actual.corrupted).flatten()
    real = normalized(grid(actual, n_heads).values, actual.clean, actual.corrupted)
    cols = real.shape[1]
    real = real.flatten()
    order = (est - real).abs().argsort(descending=True)[:k].tolist()
    cells = [Disagreement(i // cols, i % cols, float(est[i]), float(real[i])) for i in order]
    return pearson(estimate.values, actual.values), cells


def seconds(model: Any, activation: str, positions: str, n_pos: int) -> float:
    """A rough time for the sweep at FLOPS_PER_SECOND: each layer's patched runs go through the blocks
    from that layer on, about 24 d_model^2 flops per token and block (attention and a 4x MLP)."""
    cfg = model.cfg
    cells = {"pos": n_pos, "head": cfg.n_heads, "dest_pos": n_pos}
    per_layer = 1
    for axis in indexed(activation, positions):
        per_layer *= cells[axis]
    block_passes = per_layer * sum(cfg.n_layers - layer for layer in range(cfg.n_layers))
    unembed = per_layer * cfg.n_layers * 2 * cfg.d_model * cfg.d_vocab
    return (block_passes * n_pos * 24 * cfg.d_model**2 + unembed * n_pos) / FLOPS_PER_SECOND


@dataclass(frozen=True)
class PathGrid:
    values: Any  # [receiver head, 3]: the metric with the sender reaching only that input
    normalized: Any
    rows: list[str]
    clean: float
    corrupted: float


def path(model: Any, pair: Pair, sender: str, direction: str) -> PathGrid:
    """`sender` (a head "L0H2") path-patched into the query, key and value of each later layer's heads
    together ("L1 heads"), and of each later head alone (up to MAX_HEAD_ROWS of them), one input at a time."""
    import torch

    from ...analysis.conventions import AnalysisError, component
    from ...analysis.path_patching import path_patch

    comp = component(model, sender, ("head",), role="sender")
    cfg = model.cfg
    if comp.layer == cfg.n_layers - 1:
        earlier = f"pick a head of layers 0 to {cfg.n_layers - 2}" if cfg.n_layers > 1 else "this model has a single layer"
        raise AnalysisError(f"{comp.label} is in the last layer: no later head reads what it writes; {earlier}")
    rows, receivers = [], []
    each_head = (cfg.n_layers - 1 - comp.layer) * cfg.n_heads <= MAX_HEAD_ROWS
    for layer in range(comp.layer + 1, cfg.n_layers):
        rows.append(f"L{layer} heads")
        receivers.append([(layer, h) for h in range(cfg.n_heads)])
        for h in range(cfg.n_heads if each_head else 0):
            rows.append(f"L{layer}H{h}")
            receivers.append([(layer, h)])
    values, normalized = torch.full((len(rows), len(QKV)), float("nan")), torch.full((len(rows), len(QKV)), float("nan"))
    for i, heads in enumerate(receivers):
        for j, which in enumerate(QKV):
            # grouped-query attention has fewer key/value heads: "L1H3.k" names key/value head 3
            names = [f"L{layer}H{h}.{which}" for layer, h in heads if which == "q" or h < cfg.n_kv_heads]
            if not names:
                continue
            result = path_patch(
                model, pair.clean, pair.corrupted, pair.metric, receivers=names, senders=[comp.label], direction=direction
            )
            values[i, j], normalized[i, j] = result.values[0], result.normalized[0]
    return PathGrid(values, normalized, rows, result.clean, result.corrupted)


def ablated(model: Any, pair: Pair, components: list[str], method: str) -> float:
    """The clean run's metric with every component (heads "L1H0", neurons "L0N17") ablated together."""
    from ...analysis.ablation import ablate
    from ...analysis.conventions import component

    comps = [component(model, c, ("head", "neuron"), role="component to ablate") for c in components]
    return ablate(model, pair.clean, comps, method, pair.metric)
