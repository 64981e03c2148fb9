"""Ablation: knock a component out and see how much a metric moves.

A component is a head ("L1H2", ablated at its `hook_z`), an MLP neuron ("L0N17", at `mlp.hook_post`),
or a whole layer's attention or MLP output ("L0 attn", "L0 mlp", at `hook_attn_out` / `hook_mlp_out`,
so the output bias goes too). Its activation is replaced by
- "zero": zeros;
- "mean": its mean over the reference tokens' batch and positions (with `per_position`, the mean
  over the batch alone, one per position, which needs references as long as the tokens);
- "resample": its activation on another sequence of the reference set, the same random pick for
  every component (seeded); when the reference set is the tokens themselves, never the same row.

Sweeps score many ablated runs per forward pass: the input is stacked once per run along the batch
dimension and one hook edits each copy's own component. Runs start from the cached residual
stream at the first layer they touch (`start_at_layer`), since nothing before it changes.

    loss = ablate(model, tokens, "L1H0")                          # default metric: next-token loss
    heads = ablate_heads(model, tokens, method="mean")            # AblationResult, change [layer, head]
    neurons = ablate_neurons(model, tokens, layer=0, metric=my_metric)
    layers = ablate_layers(model, tokens)                         # change [layer, (attn, mlp)]
    heads.plot("heads.png")
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .conventions import PARTS, AnalysisError, Component, check_tokens, component
from .engine import Hooks, score_stacked_runs
from .metrics import LogitDiff, Metric, NextTokenLoss, score_runs
from .results import Result, heatmap

if TYPE_CHECKING:
    from ..transformer import Transformer

METHODS = ("zero", "mean", "resample")


Target = str | tuple | Component


class _Sources:
    """What each ablated activation is replaced with, computed once from the reference tokens."""

    def __init__(
        self,
        model: Transformer,
        tokens: torch.Tensor,
        method: str,
        reference: torch.Tensor | None,
        hooks: set[str],
        seed: int,
        per_position: bool,
    ) -> None:
        if method not in METHODS:
            raise AnalysisError(f"unknown ablation method {method!r}; expected one of {', '.join(METHODS)}")
        self.method, self.values = method, {}
        if method == "zero":
            return
        same = reference is None
        reference = tokens if same else check_tokens(model, reference, "reference tokens")
        if (method == "resample" or per_position) and reference.shape[1] != tokens.shape[1]:
            raise AnalysisError(
                f"{method} ablation{' per position' if per_position else ''} needs reference tokens as long "
                f"as the tokens ({tokens.shape[1]} positions); got {reference.shape[1]}"
            )
        _, cache = model.run_with_cache(reference, names_filter=lambda name: name in hooks)
        if method == "mean":
            self.values = {name: act.mean(0) if per_position else act.mean((0, 1)) for name, act in cache.items()}
            return
        batch, n_ref = tokens.shape[0], reference.shape[0]
        gen = torch.Generator().manual_seed(seed)
        if same:  # another row of the same batch: shift each row by 1..n-1
            if n_ref < 2:
                raise AnalysisError("resample ablation needs at least 2 sequences to take activations from another one")
            rows = (torch.arange(batch) + torch.randint(1, n_ref, (batch,), generator=gen)) % n_ref
        else:
            rows = torch.randint(0, n_ref, (batch,), generator=gen)
        self.values = {name: act[rows.to(act.device)] for name, act in cache.items()}

    def replacement(self, comp: Component) -> torch.Tensor | float:
        """The value for `comp`'s slice of its activation `[batch, pos, ...]` (broadcasts to it)."""
        if self.method == "zero":
            return 0.0
        value = self.values[comp.hook]
        return value if comp.index is None else value[..., comp.index, :] if comp.part == "head" else value[..., comp.index]


def _edit(x: torch.Tensor, comp: Component, value: torch.Tensor | float) -> None:
    if comp.part == "head":
        x[..., comp.index, :] = value
    elif comp.part == "neuron":
        x[..., comp.index] = value
    else:
        x[...] = value


def _hooks(runs: list[list[Component]], batch: int, sources: _Sources) -> Hooks:
    """One hook per hook point: run r (rows r*batch .. r*batch + batch) gets its own components ablated."""
    by_hook: dict[str, list[tuple[int, Component]]] = {}
    for r, comps in enumerate(runs):
        for comp in comps:
            by_hook.setdefault(comp.hook, []).append((r, comp))

    def make(edits: list[tuple[int, Component]]) -> Callable:
        def hook(x: torch.Tensor, _hook: Any) -> torch.Tensor:
            copies = x.view(len(runs), batch, *x.shape[1:])
            for r, comp in edits:
                _edit(copies[r], comp, sources.replacement(comp))
            return x

        return hook

    return [(name, make(edits)) for name, edits in by_hook.items()]


def _targets(model: Transformer, targets: Target | Sequence[Target]) -> list[Component]:
    if isinstance(targets, (str, Component)) or (isinstance(targets, tuple) and targets and targets[0] in PARTS):
        targets = [targets]
    return [component(model, t) for t in targets]


@torch.no_grad()
def ablate(
    model: Transformer,
    tokens: torch.Tensor,
    targets: Target | Sequence[Target],
    method: str = "zero",
    metric: Metric | None = None,
    reference: torch.Tensor | None = None,
    seed: int = 0,
    per_position: bool = False,
) -> float:
    """The metric (default: next-token loss on `tokens`) with `targets` ablated together, in one
    ordinary forward pass from the tokens."""
    tokens = check_tokens(model, tokens)
    comps = _targets(model, targets)
    metric = NextTokenLoss(tokens) if metric is None else metric
    sources = _Sources(model, tokens, method, reference, {c.hook for c in comps}, seed, per_position)
    with model.hooks(_hooks([comps], tokens.shape[0], sources)):
        logits = model(tokens)
    return float(score_runs(metric, logits[None])[0])


@dataclass
class AblationResult(Result):
    """values: the metric with each component ablated, shaped `[len(rows)]` or `[len(rows), len(cols)]`;
    change = values - baseline (the unablated metric); labels: each entry's component, row-major;
    dims: what the axes are, e.g. ["layer", "head"]."""

    result_type = "ablation"
    method: str
    baseline: float
    values: torch.Tensor
    change: torch.Tensor
    labels: list[str]
    rows: list[str]
    cols: list[str] | None = None
    dims: list[str] | None = None
    metric_name: str = "metric"

    def draw(self, fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        title = f"{self.method.capitalize()} ablation: change in {self.metric_name} (baseline {self.baseline:.3g})"
        if self.cols is not None:
            ylabel, xlabel = self.dims or ("", "")
            heatmap(
                ax,
                self.change,
                xlabels=self.cols,
                ylabels=self.rows,
                title=title,
                xlabel=xlabel,
                ylabel=ylabel,
                colorbar_label=f"change in {self.metric_name}",
            )
            return
        change = self.change.tolist()
        ax.bar(range(len(change)), change, color=["tab:red" if v >= 0 else "tab:blue" for v in change], width=1.0)
        if len(change) <= 40:
            ax.set_xticks(range(len(change)), self.rows, rotation=90, fontsize=7)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xlabel(self.dims[0] if self.dims else "component")
        ax.set_ylabel(f"change in {self.metric_name}")
        ax.set_title(title)


@torch.no_grad()
def _sweep(
    model: Transformer,
    tokens: torch.Tensor,
    comps: list[Component],
    method: str,
    metric: Metric | None,
    reference: torch.Tensor | None,
    seed: int,
    per_position: bool,
    batch_size: int,
) -> tuple[float, torch.Tensor]:
    """The baseline metric and the metric with each component ablated alone, `[len(comps)]`."""
    tokens = check_tokens(model, tokens)
    batch = tokens.shape[0]
    if not comps:
        raise AnalysisError("nothing to ablate: the sweep has no components")
    if batch_size < 1:
        raise AnalysisError(f"batch_size (rows per forward pass) must be positive, got {batch_size}")
    metric = NextTokenLoss(tokens) if metric is None else metric
    sources = _Sources(model, tokens, method, reference, {c.hook for c in comps}, seed, per_position)
    first = min(c.layer for c in comps)
    names = {f"blocks.{layer}.hook_resid_pre" for layer in range(first, model.cfg.n_layers)}
    logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in names)
    baseline = float(score_runs(metric, logits[None])[0])
    values = torch.empty(len(comps))
    for layer in sorted({c.layer for c in comps}):  # runs that start at the same layer share passes
        todo = [i for i, c in enumerate(comps) if c.layer == layer]

        def hooks_for(runs: range, todo: list[int] = todo) -> Hooks:
            return _hooks([[comps[todo[i]]] for i in runs], batch, sources)

        values[todo] = score_stacked_runs(model, cache["resid_pre", layer], layer, len(todo), hooks_for, metric, batch_size).cpu()
    return baseline, values


def _metric_name(metric: Metric | None) -> str:
    if metric is None or isinstance(metric, NextTokenLoss):
        return "next-token loss"
    if isinstance(metric, LogitDiff):
        return "logit difference"
    return getattr(metric, "__name__", type(metric).__name__)


def ablate_heads(
    model: Transformer,
    tokens: torch.Tensor,
    method: str = "zero",
    metric: Metric | None = None,
    reference: torch.Tensor | None = None,
    seed: int = 0,
    per_position: bool = False,
    batch_size: int = 256,
) -> AblationResult:
    """Ablate every head on its own: values and change `[layer, head]`. `batch_size` caps the rows
    (runs x prompts) of one forward pass."""
    cfg = model.cfg
    comps = [Component("head", layer, head) for layer in range(cfg.n_layers) for head in range(cfg.n_heads)]
    baseline, values = _sweep(model, tokens, comps, method, metric, reference, seed, per_position, batch_size)
    values = values.view(cfg.n_layers, cfg.n_heads)
    return AblationResult(
        method,
        baseline,
        values,
        values - baseline,
        [c.label for c in comps],
        [f"L{layer}" for layer in range(cfg.n_layers)],
        [f"H{h}" for h in range(cfg.n_heads)],
        ["layer", "head"],
        _metric_name(metric),
    )


def ablate_neurons(
    model: Transformer,
    tokens: torch.Tensor,
    layer: int,
    method: str = "zero",
    metric: Metric | None = None,
    reference: torch.Tensor | None = None,
    seed: int = 0,
    per_position: bool = False,
    batch_size: int = 256,
    neurons: Sequence[int] | None = None,
) -> AblationResult:
    """Ablate each MLP neuron of `layer` (all, or those listed in `neurons`) on its own: `[neuron]`."""
    neurons = range(model.cfg.d_mlp) if neurons is None else neurons
    comps = [component(model, ("neuron", layer, int(n))) for n in neurons]
    baseline, values = _sweep(model, tokens, comps, method, metric, reference, seed, per_position, batch_size)
    labels = [c.label for c in comps]
    return AblationResult(method, baseline, values, values - baseline, labels, labels, None, ["neuron"], _metric_name(metric))


def ablate_layers(
    model: Transformer,
    tokens: torch.Tensor,
    method: str = "zero",
    metric: Metric | None = None,
    reference: torch.Tensor | None = None,
    seed: int = 0,
    per_position: bool = False,
    batch_size: int = 256,
) -> AblationResult:
    """Ablate each layer's whole attention output, and MLP output, on its own: `[layer, (attn, mlp)]`
    (`[layer, (attn,)]` for attention-only models)."""
    cfg = model.cfg
    outputs = ["attn"] if cfg.attn_only else ["attn", "mlp"]
    comps = [Component(output, layer) for layer in range(cfg.n_layers) for output in outputs]
    baseline, values = _sweep(model, tokens, comps, method, metric, reference, seed, per_position, batch_size)
    values = values.view(cfg.n_layers, len(outputs))
    return AblationResult(
        method,
        baseline,
        values,
        values - baseline,
        [c.label for c in comps],
        [f"L{layer}" for layer in range(cfg.n_layers)],
        outputs,
        ["layer", "output"],
        _metric_name(metric),
    )
