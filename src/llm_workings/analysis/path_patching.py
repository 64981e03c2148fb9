"""Path patching: how much of a component's effect travels along one route?

Activation patching a head changes everything downstream of it. Path patching (Wang et al. 2022,
"Interpretability in the Wild"; Goldowsky-Dill et al. 2023) isolates one route: the sender's
patched output reaches only the chosen receivers, directly through the residual stream, while
every other component between them keeps its base-run value. The receivers' other inputs, and all
components after them, run as usual.

Because the components in between are frozen, a receiver's input is simply the base run's
residual stream plus the change in the sender's output, put through the receiver's norm. So the
whole sweep needs two cached runs and one batched forward pass (one row block per sender):

    senders: heads "L0H3", MLPs "L0 mlp"   (default: every head and MLP before the receivers)
    receivers: "L1H2.q", "L1H2.k", "L1H2.v" (one input of a head), "L1 mlp" (an MLP's input),
               "logits" (the direct path to the unembedding)

    result = path_patch(model, clean, corrupted, metric, receivers=["L1H2.k"])
    result.values          # the metric per sender, as `senders` lists them
    result.normalized      # 0 = corrupted, 1 = clean (as in activation patching)

The direction follows activation patching: "denoise" runs the corrupted prompt with the clean
sender output sent along the path; "noise" runs the clean prompt with the corrupted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..transformer import ActivationCache, Transformer
from .conventions import AnalysisError, Direction, check_pair, component
from .engine import Hooks, score_stacked_runs
from .metrics import Metric, score_runs
from .patching import ScoredAgainstRuns, cached_runs


@dataclass
class PathPatchingResult(ScoredAgainstRuns):
    """The metric with each sender's path patched, one value per sender."""

    senders: list[str]
    receivers: list[str]
    values: torch.Tensor  # [sender]
    clean: float
    corrupted: float
    direction: str = "denoise"
    result_type = "path_patching"

    def draw(self, fig: Any) -> None:
        ax = fig.add_subplot()
        effect = (self.normalized - float(self.direction == "noise")).tolist()
        ax.bar(range(len(self.senders)), effect, color=["#b2182b" if v < 0 else "#2166ac" for v in effect])
        ax.set_xticks(range(len(self.senders)))
        ax.set_xticklabels(self.senders, rotation=90, fontsize=7 if len(self.senders) > 16 else 9)
        ax.axhline(0, color="black", linewidth=0.5)
        base = "corrupted" if self.direction == "denoise" else "clean"
        ax.set_ylabel(f"normalized metric minus the {base} run's")
        ax.set_title(f"path patching ({self.direction}) into {', '.join(self.receivers)}")


# -- naming components ----------------------------------------------------------------------------
def _sender(model: Transformer, name: str) -> tuple[int, int | None]:
    """(layer, head) for "L1H2", (layer, None) for "L1 mlp"."""
    comp = component(model, name, ("head", "mlp"), role="sender")
    return comp.layer, comp.index if comp.part == "head" else None


def _receiver(model: Transformer, name: str) -> tuple[int, int | None, str]:
    """(layer, head, input) with input q/k/v for a head, "mlp" for an MLP, "logits" at layer n_layers."""
    if name == "logits":
        return model.cfg.n_layers, None, "logits"
    comp = component(model, name, ("head input", "mlp"), role="receiver", also=("'logits'",))
    return (comp.layer, comp.index, comp.input) if comp.part == "head" else (comp.layer, None, "mlp")


def _reaches(sender: tuple[int, int | None], receiver: tuple[int, int | None, str], parallel: bool) -> bool:
    """Whether the sender writes into the stream before the receiver reads it."""
    s_layer, s_head = sender
    r_layer, _, which = receiver
    if s_layer != r_layer:
        return s_layer < r_layer
    return which == "mlp" and s_head is not None and not parallel  # a head feeds its own block's MLP


def default_senders(model: Transformer, receivers: list[tuple[int, int | None, str]]) -> list[str]:
    parallel = model.cfg.parallel_residual
    names = []
    for layer in range(model.cfg.n_layers):
        candidates = [f"L{layer}H{h}" for h in range(model.cfg.n_heads)] + ([] if model.cfg.attn_only else [f"L{layer} mlp"])
        names += [n for n in candidates if all(_reaches(_sender(model, n), r, parallel) for r in receivers)]
    return names


# -- the sweep ------------------------------------------------------------------------------------
def _sender_outputs(model: Transformer, cache: ActivationCache, senders: list[tuple[int, int | None]]) -> torch.Tensor:
    """What each sender writes into the residual stream: `[sender, batch, pos, d_model]`."""
    outputs = []
    for layer, head in senders:
        if head is None:
            outputs.append(cache["mlp_out", layer])
        else:
            outputs.append(cache["z", layer][:, :, head] @ model.blocks[layer].attn.W_O[head])
    return torch.stack(outputs)


def _stream_read(model: Transformer, cache: ActivationCache, layer: int, which: str) -> torch.Tensor:
    """The residual stream the receiver reads in the base run."""
    if which == "logits":
        return cache["resid_post", model.cfg.n_layers - 1]
    if which == "mlp" and not model.cfg.parallel_residual:
        return cache["resid_mid", layer]
    return cache["resid_pre", layer]


def _receiver_input(model: Transformer, layer: int, head: int | None, which: str, stream: torch.Tensor) -> torch.Tensor:
    """The receiver's input computed from a residual stream `[..., pos, d_model]`: a head's q/k/v
    (before rotary, as hook_q/k/v hold it), the MLP's normed input, or the final norm's output."""
    if which == "logits":
        return model.ln_final(stream)
    block = model.blocks[layer]
    if which == "mlp":
        return block.ln2(stream)
    attn = block.attn
    weight, bias = {"q": (attn.W_Q, attn.b_Q), "k": (attn.W_K, attn.b_K), "v": (attn.W_V, attn.b_V)}[which]
    out = block.ln1(stream) @ weight[head]
    return out if bias is None else out + bias[head]


@torch.no_grad()
def path_patch(
    model: Transformer,
    clean: torch.Tensor,
    corrupted: torch.Tensor,
    metric: Metric,
    receivers: list[str],
    senders: list[str] | None = None,
    direction: Direction = "denoise",
    batch_size: int = 64,
) -> PathPatchingResult:
    """The metric when each sender's patched output reaches only the receivers, one score per sender."""
    clean, corrupted = check_pair(model, clean, corrupted)
    if not receivers:
        raise AnalysisError("give at least one receiver, e.g. ['logits'] or ['L1H2.k']")
    if "logits" in receivers and len(receivers) > 1:
        raise AnalysisError("'logits' is a receiver on its own: it takes the whole final residual stream")
    parsed_receivers = [_receiver(model, r) for r in receivers]
    sender_names = default_senders(model, parsed_receivers) if senders is None else list(senders)
    parsed_senders = [_sender(model, s) for s in sender_names]
    for name, sender in zip(sender_names, parsed_senders):
        late = [r for r, p in zip(receivers, parsed_receivers) if not _reaches(sender, p, model.cfg.parallel_residual)]
        if late:
            raise AnalysisError(f"sender {name!r} writes into the residual stream after receiver {late[0]!r} reads it")
    if not sender_names:
        raise AnalysisError(f"no component writes into the stream before {', '.join(receivers)}")

    names = set()
    for layer, head in parsed_senders:
        names.add(f"blocks.{layer}.{'attn.hook_z' if head is not None else 'hook_mlp_out'}")
    names |= {f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"}
    names |= {
        f"blocks.{layer}.hook_resid_mid"
        for layer, _, which in parsed_receivers
        if which == "mlp" and not model.cfg.parallel_residual
    }
    _, base_cache, source_cache, clean_logits, corrupted_logits = cached_runs(model, clean, corrupted, sorted(names), direction)
    delta = _sender_outputs(model, source_cache, parsed_senders) - _sender_outputs(model, base_cache, parsed_senders)

    def hooks_for(runs: range) -> Hooks:
        d = delta[runs.start : runs.stop]  # [n, batch, pos, d_model]
        return [
            (_receiver_hook(layer, which), _replacer(_receiver_input(model, layer, head, which, stream[None] + d), head))
            for (layer, head, which), stream in zip(parsed_receivers, streams)
        ]

    streams = [_stream_read(model, base_cache, layer, which) for layer, _, which in parsed_receivers]
    first = min(layer for layer, _, _ in parsed_receivers)  # nothing before the receivers changes
    # the direct path to the logits starts after the last block, from the stream ln_final reads
    start = base_cache["resid_pre", first] if first < model.cfg.n_layers else streams[0]
    scores = score_stacked_runs(model, start, first, len(sender_names), hooks_for, metric, batch_size)
    return PathPatchingResult(
        sender_names,
        list(receivers),
        scores,
        float(score_runs(metric, clean_logits[None])),
        float(score_runs(metric, corrupted_logits[None])),
        direction,
    )


def _receiver_hook(layer: int, which: str) -> str:
    """Where the receiver's input is written: its head's hook_q/k/v, or the output of the norm before it."""
    if which == "logits":
        return "ln_final.hook_normalized"
    return f"blocks.{layer}.ln2.hook_normalized" if which == "mlp" else f"blocks.{layer}.attn.hook_{which}"


def _replacer(patched: torch.Tensor, head: int | None):
    """A hook writing `patched` `[n, batch, pos, (d_head | d_model)]` into each block of runs: into one
    head's slice of `hook_q/k/v` `[n * batch, pos, head, d_head]`, or over a whole normed MLP input."""

    def hook(act: torch.Tensor, _hook) -> torch.Tensor:
        if head is None:
            return patched.reshape(act.shape).to(act.dtype)
        act = act.clone()
        act[:, :, head] = patched.reshape(act.shape[0], act.shape[1], -1).to(act.dtype)
        return act

    return hook
