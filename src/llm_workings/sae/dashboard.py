"""Feature dashboards as data: for one SAE latent (or one MLP neuron), where it fires and what it writes.

    d = latent_dashboard(sae, model, tokens, latent=12)       # tokens [n, pos]
    d.top_examples[0].tokens, d.top_examples[0].values        # the strongest firing, with +-context tokens
    d.quantile_examples, d.histogram, d.top_logits, d.neighbours
    n = neuron_dashboard(model, tokens, layer=1, neuron=7)    # the same, for blocks.1.mlp.hook_post[..., 7]

Both run the same machinery (`dashboard`) on a [n, pos] tensor of activations and a residual-stream direction:
- top examples: the highest-activating positions, each with `context` tokens either side (SAEDashboard's ±5);
- quantile examples: the range (0, max] cut into `quantiles` equal intervals, `per_quantile` random examples each;
- the histogram of the positive activations, with the density (fraction of tokens on which it is positive);
- logit effects: the direction written into the residual stream (W_dec[f], through W_O for hook_z or as is
  for the residual hooks; a neuron's W_out row), centred as the final LayerNorm centres, times the final
  norm's gain, times W_U: the direct effect on each token's logit, up to the norm's scale;
- neighbours: the latents (or neurons) whose decoder rows (W_out rows) have the largest cosine with this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from ..analysis.results import Result
from ..transformer.model import Transformer
from .activations import check_sae_fits, hook_reader
from .architectures import SparseAutoencoder
from .config import SAEError

_RESIDUAL_HOOKS = ("hook_resid_pre", "hook_resid_mid", "hook_resid_post", "hook_attn_out", "hook_mlp_out")


@dataclass
class Example:
    sequence: int  # row of the tokens given
    position: int  # the position that fired, in the sequence
    value: float  # its activation
    start: int  # first position of the window
    token_ids: list[int]
    tokens: list[str]  # the window's tokens as text
    values: list[float]  # the activation at each token of the window


@dataclass
class LatentDashboard(Result):
    result_type = "latent_dashboard"
    kind: str  # "sae latent" or "neuron"
    index: int
    hook_name: str
    density: float  # fraction of tokens with a positive activation
    max_activation: float
    top_examples: list[Example]
    quantile_examples: list[dict[str, Any]]  # {"low", "high", "examples": [Example]}
    histogram: dict[str, list[float]]  # {"edges", "counts"} of the positive activations
    top_logits: list[dict[str, Any]]  # {"token", "id", "value"}, largest first
    bottom_logits: list[dict[str, Any]]  # smallest first
    neighbours: list[dict[str, float]]  # {"index", "cosine"}
    tokens_seen: int = 0
    notes: list[str] = field(default_factory=list)

    def draw(self, fig: Any) -> None:
        ax = fig.add_subplot()
        h = self.histogram
        if h["counts"]:
            ax.bar(h["edges"][:-1], h["counts"], width=h["edges"][1] - h["edges"][0], align="edge")
        ax.set_xlabel("activation")
        ax.set_ylabel("tokens")
        ax.set_title(f"{self.kind} {self.index}: density {self.density:.2%}")


def _token_texts(model: Transformer, ids: list[int]) -> list[str]:
    if model.tokenizer is None:
        return [str(i) for i in ids]
    return [model.tokenizer.decode([i]) for i in ids]


def _example(model: Transformer, tokens: torch.Tensor, acts: torch.Tensor, seq: int, pos: int, context: int) -> Example:
    start, stop = max(0, pos - context), min(tokens.shape[1], pos + context + 1)
    ids = tokens[seq, start:stop].tolist()
    return Example(seq, pos, float(acts[seq, pos]), start, ids, _token_texts(model, ids), acts[seq, start:stop].tolist())


def residual_direction(
    model: Transformer, hook_name: str, direction: torch.Tensor, head_index: int | None = None
) -> torch.Tensor | None:
    """What a direction at `hook_name` adds to the residual stream, or None where that is not linear in it."""
    leaf = hook_name.rsplit(".", 1)[-1]
    if leaf in _RESIDUAL_HOOKS:
        return direction
    layer = int(hook_name.split(".")[1]) if hook_name.startswith("blocks.") else None
    if leaf == "hook_z" and layer is not None:
        W_O = model.blocks[layer].attn.W_O  # [head, d_head, d_model]
        if head_index is not None:
            return direction @ W_O[head_index]
        return direction.view(W_O.shape[0], W_O.shape[1]).unsqueeze(1).matmul(W_O).squeeze(1).sum(0)
    if leaf == "hook_post" and layer is not None and not model.cfg.attn_only:
        return direction @ model.blocks[layer].mlp.W_out
    return None


def logit_effects(model: Transformer, resid: torch.Tensor, n: int = 10) -> tuple[list[dict], list[dict]]:
    """The top and bottom n tokens of (direction, centred if the final norm is a LayerNorm) * gain @ W_U."""
    d = resid.float()
    norm = model.ln_final
    if type(norm).__name__ == "LayerNorm":
        d = d - d.mean()
    if norm.w is not None:
        d = d * norm.w
    logits = d @ model.W_U
    n = min(n, logits.numel())
    top, bottom = logits.topk(n), logits.topk(n, largest=False)

    def rows(values: torch.Tensor, ids: torch.Tensor) -> list[dict]:
        return [{"token": _token_texts(model, [i])[0], "id": i, "value": v} for v, i in zip(values.tolist(), ids.tolist())]

    return rows(top.values, top.indices), rows(bottom.values, bottom.indices)


def nearest_by_cosine(rows: torch.Tensor, index: int, n: int = 10) -> list[dict[str, float]]:
    unit = torch.nn.functional.normalize(rows.float(), dim=1)
    cos = unit @ unit[index]
    cos[index] = -torch.inf
    best = cos.topk(min(n, len(rows) - 1))
    return [{"index": i, "cosine": c} for c, i in zip(best.values.tolist(), best.indices.tolist())]


@torch.no_grad()
def dashboard(
    model: Transformer,
    tokens: torch.Tensor,
    acts: torch.Tensor,
    kind: str,
    index: int,
    hook_name: str,
    resid: torch.Tensor | None,
    rows_for_neighbours: torch.Tensor,
    context: int = 5,
    n_top: int = 20,
    quantiles: int = 10,
    per_quantile: int = 5,
    bins: int = 30,
    seed: int = 0,
) -> LatentDashboard:
    """The shared machinery: `acts` [n, pos] are one latent's (or neuron's) activations on `tokens` [n, pos]."""
    flat = acts.flatten()
    active = flat > 0  # a GELU neuron is slightly negative almost everywhere: firing means positive
    order = flat.argsort(descending=True)[: min(n_top, int(active.sum()))]
    pos = tokens.shape[1]
    top = [_example(model, tokens, acts, int(i) // pos, int(i) % pos, context) for i in order]
    peak = float(flat.max()) if flat.numel() else 0.0
    groups = []
    if peak > 0:
        rng = np.random.default_rng(seed)
        edges = np.linspace(0.0, peak, quantiles + 1)
        for low, high in zip(edges[:-1], edges[1:]):
            inside = ((flat > low) & (flat <= high)).nonzero().squeeze(1).numpy()
            chosen = rng.choice(inside, size=min(per_quantile, len(inside)), replace=False) if len(inside) else []
            examples = [_example(model, tokens, acts, int(i) // pos, int(i) % pos, context) for i in sorted(chosen)]
            groups.append({"low": float(low), "high": float(high), "count": len(inside), "examples": examples})
    values = flat[active].double()
    if len(values):
        lo, hi = float(values.min()), float(values.max())
        hi = hi if hi > lo else lo + 1.0
        histogram = {"edges": torch.linspace(lo, hi, bins + 1).tolist(), "counts": torch.histc(values, bins, lo, hi).tolist()}
    else:
        histogram = {"edges": [], "counts": []}
    notes = []
    if resid is None:
        top_logits = bottom_logits = []
        notes.append(f"no logit effects: what {hook_name} adds to the residual stream is not a fixed direction")
    else:
        top_logits, bottom_logits = logit_effects(model, resid)
    return LatentDashboard(
        kind=kind,
        index=index,
        hook_name=hook_name,
        density=float(active.double().mean()) if flat.numel() else 0.0,
        max_activation=peak,
        top_examples=top,
        quantile_examples=groups,
        histogram=histogram,
        top_logits=top_logits,
        bottom_logits=bottom_logits,
        neighbours=nearest_by_cosine(rows_for_neighbours, index),
        tokens_seen=flat.numel(),
        notes=notes,
    )


def _check_index(index: int, size: int, what: str) -> None:
    if not isinstance(index, int) or not 0 <= index < size:
        raise SAEError(f"{what} must be an integer in [0, {size}), got {index!r}")


@torch.no_grad()
def latent_activations(sae: SparseAutoencoder, model: Transformer, tokens: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Every latent's activation on every token: [n, pos, d_sae]."""
    check_sae_fits(sae, model)
    read = hook_reader(model, sae.cfg.hook_name, sae.cfg.hook_head_index)
    return torch.cat([sae.encode(read(tokens[i : i + batch_size].long())) for i in range(0, len(tokens), batch_size)])


@torch.no_grad()
def latent_dashboard(
    sae: SparseAutoencoder,
    model: Transformer,
    tokens: torch.Tensor,
    latent: int,
    acts: torch.Tensor | None = None,
    **options: Any,
) -> LatentDashboard:
    """One latent's dashboard; pass `acts` from `latent_activations` to draw many without re-running the model."""
    _check_index(latent, sae.cfg.d_sae, "latent")
    acts = latent_activations(sae, model, tokens) if acts is None else acts
    resid = residual_direction(model, sae.cfg.hook_name, sae.W_dec[latent], sae.cfg.hook_head_index)
    return dashboard(
        model, tokens.long(), acts[..., latent], "sae latent", latent, sae.cfg.hook_name, resid, sae.W_dec, **options
    )


@torch.no_grad()
def neuron_dashboard(model: Transformer, tokens: torch.Tensor, layer: int, neuron: int, **options: Any) -> LatentDashboard:
    """An MLP neuron's dashboard (blocks.{layer}.mlp.hook_post), to compare with an SAE latent's."""
    if model.cfg.attn_only:
        raise SAEError(f"{model.cfg.name or 'this model'} is attention-only: it has no MLP neurons")
    _check_index(layer, model.cfg.n_layers, "layer")
    _check_index(neuron, model.cfg.d_mlp, "neuron")
    hook = f"blocks.{layer}.mlp.hook_post"
    read = hook_reader(model, hook)
    acts = torch.cat([read(tokens[i : i + 32].long())[..., neuron] for i in range(0, len(tokens), 32)])
    W_out = model.blocks[layer].mlp.W_out
    return dashboard(model, tokens.long(), acts, "neuron", neuron, hook, W_out[neuron], W_out, **options)
