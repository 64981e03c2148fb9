"""The Residual stream page's engine side: three views of one forward pass, each from the toolkit.

- the logit lens (`analysis.logit_lens`): every residual stream read through `ln_final`, its scale
  recomputed for that stream, as TransformerLens 3.9's `accumulated_resid(apply_ln=True)`;
- direct logit attribution (`analysis.direct_logit_attribution`): each component's write through
  `ln_final` with the scale of the real final stream, so the parts add up to the logit difference;
- the size of each write (`ActivationCache.decompose_resid`): the L2 norm, no norm applied.

    view = lens(model, tokens, target=None, layer=-1, position=-1, k=5)
    bars = decompose(model, tokens, answer, wrong, position=-1, split="layers")
    sizes = write_norms(model, tokens)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Lens:
    labels: list[str]  # the streams, "0_pre" ... "final_post"
    target: list[int]  # [pos]: the token followed at each position, -1 where none
    top_ids: Any  # [layer, pos] int: each stream's top prediction
    top_probs: Any  # [layer, pos] float32
    target_prob: Any  # [layer, pos] float32, NaN where no target
    target_rank: Any  # [layer, pos] int, -1 where no target
    cell_ids: list[int]  # the selected cell's top k
    cell_probs: list[float]


def lens(model: Any, tokens: Any, target: int | None, layer: int, position: int, k: int) -> Lens:
    """The lens of a `[1, pos]` prompt; `target` a token id followed at every position (None: the next
    token); the top `k` of the cell (`layer`, `position`), both already checked."""
    import torch

    from ...analysis import logit_lens

    follow = None if target is None else torch.full_like(tokens, target)
    result = logit_lens(model, tokens, target=follow, top_k=k, keep_logits=False)
    return Lens(
        labels=result.labels,
        target=result.target[0].tolist(),
        top_ids=result.top_tokens[:, 0, :, 0],
        top_probs=result.top_probs[:, 0, :, 0],
        target_prob=result.target_prob[:, 0],
        target_rank=result.target_rank[:, 0],
        cell_ids=result.top_tokens[layer, 0, position].tolist(),
        cell_probs=result.top_probs[layer, 0, position].tolist(),
    )


def stream_count(model: Any) -> int:
    """Rows of the lens table: the stream entering each block, and the final one."""
    return model.cfg.n_layers + 1


@dataclass(frozen=True)
class Decomposition:
    labels: list[str]
    values: list[float]  # each component's direct contribution, in the order of labels
    total: float  # the logit difference of the model's own logits


def decompose(model: Any, tokens: Any, answer: int, wrong: int, position: int, split: str) -> Decomposition:
    """Direct logit attribution of logit[answer] - logit[wrong] at `position`: per head and attention
    bias with `split="heads"`, else each layer's attention as one bar (its heads and bias summed)."""
    import torch

    from ...analysis import direct_logit_attribution

    result = direct_logit_attribution(model, tokens, torch.tensor([[answer, wrong]]), position=position)
    values = result.values[:, 0].tolist()
    if split == "heads":
        return Decomposition(result.labels, values, float(result.total[0]))
    labels, grouped = [], []
    for label, value in zip(result.labels, values, strict=True):
        layer_attn = label.startswith("L") and ("H" in label or label.endswith("attn bias"))
        name = f"{label.split('H')[0].split(' ')[0]} attn" if layer_attn else label
        if labels and labels[-1] == name:
            grouped[-1] += value
        else:
            labels.append(name)
            grouped.append(value)
    return Decomposition(labels, grouped, float(result.total[0]))


@dataclass(frozen=True)
class WriteNorms:
    labels: list[str]  # "embed", "pos_embed", "L0 attn", "L0 mlp", ...
    norms: Any  # [component, pos] float32


def write_norms(model: Any, tokens: Any) -> WriteNorms:
    """The L2 norm of what each component adds to the residual stream, at each position."""
    import torch

    wanted = ("hook_embed", "hook_pos_embed", "hook_attn_out", "hook_mlp_out")
    with torch.no_grad():
        _, cache = model.run_with_cache(tokens, names_filter=lambda name: name.endswith(wanted))
    parts, labels = cache.decompose_resid(return_labels=True)  # [component, batch, pos, d_model]
    names = [label if "_" not in label[:2] else f"L{label.split('_')[0]} {label.split('_')[1]}" for label in labels]
    return WriteNorms(names, parts[:, 0].float().norm(dim=-1))


def answers_at(model: Any, tokens: Any, position: int) -> tuple[int, int]:
    """The model's two likeliest next tokens at `position`: the default answer and wrong answer."""
    import torch

    with torch.no_grad():
        top = model(tokens)[0, position].topk(2).indices.tolist()
    return top[0], top[1]
