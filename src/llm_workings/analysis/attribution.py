"""Direct logit attribution: how much each component's write into the residual stream adds to the
logit difference, through the final norm and unembedding alone (no later layer in between).

The residual stream at the final position is a sum of writes: token (and learned position)
embeddings, every head's output, each attention output bias, each MLP's output. Once the final
norm's scale is fixed at the value the real run cached, the norm is linear (layernorm also
centres), so the logit difference splits into one term per write, plus the norm's bias and the
unembedding bias. These terms sum exactly to the logit difference of the model's own logits.

    result = direct_logit_attribution(model, tokens, answers)   # answers [batch, 2]: correct, wrong
    result.mean[result.labels.index("L1H2")]                      # one head's mean contribution
    result.head_values()                                          # [layer, head]
    result.plot("dla.png")                                        # top components as bars
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .conventions import AnalysisError, Position, check_tokens
from .metrics import logit_diff
from .results import Result, heatmap

if TYPE_CHECKING:
    from ..transformer import Transformer


@dataclass
class LogitAttribution(Result):
    """values: `[component, batch]` contributions, labelled by `labels`; mean: `[component]`.
    total: `[batch]` the logit difference (or answer logit) computed from the model's logits.
    neuron_values: `[layer, batch, d_mlp]` each MLP neuron's contribution, with `neurons=True`."""

    result_type = "logit_attribution"
    labels: list[str]
    values: torch.Tensor
    mean: torch.Tensor
    total: torch.Tensor
    answers: torch.Tensor
    n_layers: int
    n_heads: int
    neuron_values: torch.Tensor | None = None

    def head_values(self) -> torch.Tensor:
        """The mean contribution of every head as `[layer, head]`."""
        index = [self.labels.index(f"L{l}H{h}") for l in range(self.n_layers) for h in range(self.n_heads)]
        return self.mean[index].view(self.n_layers, self.n_heads)

    def draw(self, fig: Any, style: str = "bars", top: int = 20) -> None:
        """ "bars": the `top` components by mean magnitude; "heads": a layer x head heatmap."""
        what = "logit difference" if self.answers.ndim == 2 else "answer logit"
        ax = fig.add_subplot(1, 1, 1)
        if style == "heads":
            heatmap(
                ax,
                self.head_values(),
                xlabels=[f"H{h}" for h in range(self.n_heads)],
                ylabels=[f"L{l}" for l in range(self.n_layers)],
                title=f"Direct contribution of each head to the {what}",
                xlabel="head",
                ylabel="layer",
                colorbar_label=what,
            )
            return
        if style != "bars":
            raise AnalysisError(f"style is 'bars' or 'heads', got {style!r}")
        order = self.mean.abs().argsort(descending=True)[:top].flip(0)  # largest at the top
        values = self.mean[order].tolist()
        ax.barh(range(len(values)), values, color=["tab:blue" if v >= 0 else "tab:red" for v in values])
        ax.set_yticks(range(len(values)), [self.labels[i] for i in order.tolist()], fontsize=8)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_xlabel(f"mean direct contribution to the {what}")
        ax.set_title(f"Direct logit attribution (total {float(self.total.mean()):.3g})")


def _answer_direction(model: Transformer, answers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The unembedding direction `[batch, d_model]` the attribution projects on, and its bias `[batch]`."""
    W_U, b_U = model.W_U, model.unembed.b_U
    if answers.ndim == 2:
        answer_direction = W_U[:, answers[:, 0]] - W_U[:, answers[:, 1]]
        bias = None if b_U is None else b_U[answers[:, 0]] - b_U[answers[:, 1]]
    else:
        answer_direction, bias = W_U[:, answers], None if b_U is None else b_U[answers]
    return answer_direction.T, bias


def _check(model: Transformer, tokens: torch.Tensor, answers: torch.Tensor, position: Position) -> tuple[torch.Tensor, Position]:
    batch, n_pos = tokens.shape
    answers = torch.as_tensor(answers)
    if answers.is_floating_point() or answers.shape not in ((batch,), (batch, 2)):
        raise AnalysisError(
            f"answers must be token ids [batch={batch}, 2] (correct, wrong) or [batch]; got {answers.dtype} {list(answers.shape)}"
        )
    if ((answers < 0) | (answers >= model.cfg.d_vocab)).any():
        raise AnalysisError(f"answer ids must lie in [0, {model.cfg.d_vocab})")
    if isinstance(position, int):
        if not -n_pos <= position < n_pos:
            raise AnalysisError(f"position {position} is outside the {n_pos} positions of tokens")
    else:
        position = torch.as_tensor(position).long()
        if position.shape != (batch,) or ((position < -n_pos) | (position >= n_pos)).any():
            raise AnalysisError(f"position must be an int or one per prompt [batch={batch}] in [-{n_pos}, {n_pos})")
    return answers.long().to(model.W_E.device), position


@torch.no_grad()
def direct_logit_attribution(
    model: Transformer, tokens: torch.Tensor, answers: torch.Tensor, position: Position = -1, neurons: bool = False
) -> LogitAttribution:
    """Split the logit difference `answers[:, 0] - answers[:, 1]` at `position` (or the logit of a
    single answer, answers `[batch]`) into each component's direct contribution. Components:
    "embed", "pos_embed" (learned positions), every head "L{l}H{h}", "L{l} attn bias" (with b_O),
    "L{l} mlp" (with its b_out), "ln_final bias" (layernorm with a bias) and "unembed bias" (with
    b_U). With `neurons`, also each MLP neuron's part of "L{l} mlp" (which also holds b_out)."""
    tokens = check_tokens(model, tokens)
    answers, position = _check(model, tokens, answers, position)
    cfg = model.cfg
    batch = tokens.shape[0]
    has_mlp = not cfg.attn_only
    if neurons and not has_mlp:
        raise AnalysisError("neurons=True needs MLPs; this model is attention-only")
    wanted = {"hook_embed", "hook_pos_embed", "ln_final.hook_scale"}
    for layer in range(cfg.n_layers):
        wanted |= {f"blocks.{layer}.attn.hook_z", f"blocks.{layer}.hook_mlp_out"}
        wanted |= {f"blocks.{layer}.mlp.hook_post"} if neurons else set()
    logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in wanted)

    rows = torch.arange(batch, device=tokens.device)
    at = (lambda x: x[:, position]) if isinstance(position, int) else (lambda x: x[rows, position.to(x.device)])
    labels, parts = ["embed"], [at(cache["hook_embed"])]  # each part: [batch, d_model]
    if cfg.positions == "learned":
        labels.append("pos_embed")
        parts.append(at(cache["hook_pos_embed"]))
    for layer, block in enumerate(model.blocks):
        z = at(cache["z", layer])  # [batch, head, d_head]
        parts += torch.einsum("bhd,hdm->hbm", z, block.attn.W_O).unbind(0)
        labels += [f"L{layer}H{h}" for h in range(cfg.n_heads)]
        if block.attn.b_O is not None:
            parts.append(block.attn.b_O.expand(batch, -1))
            labels.append(f"L{layer} attn bias")
        if has_mlp:
            parts.append(at(cache["mlp_out", layer]))
            labels.append(f"L{layer} mlp")

    # The final norm with the scale the real run cached is linear in the stream (centre for layernorm,
    # divide by the scale, apply the gain), so it can be applied to each part on its own.
    norm = model.ln_final
    # Float32 throughout, so that a half-precision model's parts still add up.
    scale = at(cache["ln_final.hook_scale"])[:, 0].float()  # [batch]

    def centre_and_gain(x: torch.Tensor) -> torch.Tensor:  # the norm but for its scale
        x = x.float()
        if cfg.norm == "layernorm":
            x = x - x.mean(-1, keepdim=True)
        return x if norm.w is None else x * norm.w.float()

    answer_direction, unembed_bias = (x if x is None else x.float() for x in _answer_direction(model, answers))
    values = [(centre_and_gain(part) * answer_direction).sum(-1) / scale for part in parts]
    if getattr(norm, "b", None) is not None:
        values.append(answer_direction @ norm.b.float())
        labels.append("ln_final bias")
    if unembed_bias is not None:
        values.append(unembed_bias)
        labels.append("unembed bias")
    values = torch.stack(values)  # [component, batch]
    neuron_values = None
    if neurons:  # neuron n writes post[n] * W_out[n]: project the rows of W_out once, not per prompt
        neuron_values = torch.stack(
            [
                at(cache["post", layer]).float() * (centre_and_gain(block.mlp.W_out) @ answer_direction.T).T / scale[:, None]
                for layer, block in enumerate(model.blocks)
            ]
        )  # [layer, batch, d_mlp]
    total = logit_diff(
        logits, answers, position if isinstance(position, int) else position.to(logits.device), per_prompt=True
    ).float()
    return LogitAttribution(
        labels=labels,
        values=values,
        mean=values.mean(1),
        total=total,
        answers=answers,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        neuron_values=neuron_values,
    )
