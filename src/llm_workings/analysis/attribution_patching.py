"""Attribution patching: every cell of a patching sweep from one forward and one backward pass.

Patching a cell replaces its base activation `a` by the source activation `a'`. To first order the
metric moves by `(a' - a) . dmetric/da`, the gradient taken once on the base run (Nanda 2023,
"Attribution Patching: Activation Patching At Industrial Scale"; Syed et al. 2023). That costs two
passes whatever the number of cells, but it is only a linear approximation: it is good where the
patch is small and poor where attention saturates or a norm rescales, so each estimate should be
read beside its true patching result. `compare` does both and reports their correlation.

    estimate = attribution_patch(model, clean, corrupted, metric, "resid_pre")   # [layer, pos]
    estimate = attribution_patch(model, clean, corrupted, metric, "z", ("head",))  # [layer, head]
    check = compare(model, clean, corrupted, metric, "z", ("head",))
    check.pearson                                                                  # vs true patching
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch

from ..transformer import Transformer, act_name
from .conventions import AnalysisError, Direction, check_direction, check_layers, check_pair
from .metrics import Metric
from .patching import PatchingResult, activation_patch, check_cells, token_labels
from .results import Result


def _run_with_grads(model: Transformer, tokens: torch.Tensor, names: list[str], metric: Metric):
    """The metric on one run, with the activations `names` and the metric's gradient at each."""
    saved: dict[str, torch.Tensor] = {}

    def root(x: torch.Tensor, _hook) -> torch.Tensor | None:
        # Parameters may be frozen: start the graph at the embedding so every later activation has one.
        return None if x.requires_grad else x.detach().requires_grad_(True)

    def save(x: torch.Tensor, hook) -> None:
        saved[hook.name] = x

    save.reads_only = True  # keeps fused kernels; the saved tensor is the one used downstream
    with torch.enable_grad(), model.hooks([("hook_embed", root), (names, save)]):
        logits = model(tokens)
        value = metric(logits)
        if value.ndim != 0:
            raise AnalysisError(f"the metric must return a scalar for attribution patching; got shape {list(value.shape)}")
        grads = torch.autograd.grad(value, [saved[n] for n in names], allow_unused=True)
    activations = {n: saved[n].detach() for n in names}
    gradients = {n: torch.zeros_like(activations[n]) if g is None else g for n, g in zip(names, grads)}
    return float(value.detach()), logits.detach(), activations, gradients


def attribution_patch(
    model: Transformer,
    clean: torch.Tensor,
    corrupted: torch.Tensor,
    metric: Metric,
    activation: str = "resid_pre",
    indexed: tuple[str, ...] = ("pos",),
    layers: Iterable[int] | None = None,
    direction: Direction = "denoise",
) -> PatchingResult:
    """The linear estimate of `activation_patch` with the same arguments: the same axes, and values that
    are the base run's metric plus each cell's estimated change."""
    axes = check_cells(model, activation, indexed)
    check_direction(direction)
    clean, corrupted = check_pair(model, clean, corrupted)
    layers = check_layers(model, layers)
    names = [act_name(activation, layer) for layer in layers]
    base, source = (corrupted, clean) if direction == "denoise" else (clean, corrupted)
    base_value, _, base_acts, grads = _run_with_grads(model, base, names, metric)
    with torch.no_grad():
        source_logits, source_cache = model.run_with_cache(source, names_filter=names)
        other = float(metric(source_logits))
    keep = [1 + axes.index(axis) for axis in indexed]  # batch is axis 0 of the cached tensors
    values = []
    for name in names:
        change = (source_cache[name] - base_acts[name]) * grads[name]
        summed = [d for d in range(change.ndim) if d not in keep]
        values.append(base_value + change.sum(summed).permute(*[sorted(keep).index(k) for k in keep]))
    clean_value, corrupted_value = (other, base_value) if direction == "denoise" else (base_value, other)
    labels = {"layer": [str(layer) for layer in layers]}
    labels.update({axis: token_labels(model, clean) for axis in ("pos", "dest_pos") if axis in indexed})
    return PatchingResult(
        f"{activation} (attribution)", ["layer", *indexed], torch.stack(values), clean_value, corrupted_value, direction, labels
    )


@dataclass
class AttributionCheck(Result):
    """Attribution patching beside true activation patching on the same cells."""

    estimate: PatchingResult
    actual: PatchingResult
    pearson: float
    result_type = "attribution_check"

    def draw(self, fig: Any) -> None:
        ax = fig.add_subplot()
        x, y = self.actual.normalized.flatten(), self.estimate.normalized.flatten()
        ax.scatter(x.tolist(), y.tolist(), s=12, alpha=0.7)
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([low, high], [low, high], color="grey", linewidth=0.8, linestyle="--")
        ax.set_xlabel(f"activation patching {self.actual.activation} (normalized)")
        ax.set_ylabel("attribution patching (normalized)")
        ax.set_title(f"attribution vs activation patching: r = {self.pearson:.3f}")


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    a, b = a - a.mean(), b - b.mean()
    denominator = (a.norm() * b.norm()).item()
    return float("nan") if denominator == 0 else float((a @ b).item() / denominator)


def compare(
    model: Transformer,
    clean: torch.Tensor,
    corrupted: torch.Tensor,
    metric: Metric,
    activation: str = "resid_pre",
    indexed: tuple[str, ...] = ("pos",),
    **kwargs: Any,
) -> AttributionCheck:
    """Run attribution patching and the true sweep on the same cells; report how well they agree."""
    estimate = attribution_patch(
        model, clean, corrupted, metric, activation, indexed, **{k: v for k, v in kwargs.items() if k in ("layers", "direction")}
    )
    actual = activation_patch(model, clean, corrupted, metric, activation, indexed, **kwargs)
    return AttributionCheck(estimate, actual, pearson(estimate.values, actual.values))
