"""The logit lens: read the residual stream after every layer as if it were the last one.

Each residual stream the model builds up ("0_pre", "1_pre", ..., "final_post", and with
`incl_mid` the "_mid" streams between attention and MLP) is put through the model's own final
norm and unembedding. This is nostalgebraist's logit lens (2020): the final norm recomputes its
scale for each residual it reads, exactly as it would if the model stopped there, so the last
layer's logits equal the model's logits exactly. It gives the same streams as TransformerLens 3.9's
`cache.accumulated_resid(apply_ln=True)`; `cache.apply_ln_to_stack` with one cached scale for every
stream linearises the norm for attribution instead (see docs/transformer.md's cache section).

    lens = logit_lens(model, tokens)           # target: the actual next token
    lens.target_rank[:, 0]                     # [layer, pos]: rank of the next token per layer
    lens.top_tokens[-1, 0, :, 0]               # the model's own top-1 prediction per position
    lens.plot("lens.png")                      # layer x position heatmap of the target's probability
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from .conventions import AnalysisError, check_tokens
from .results import Result, heatmap

if TYPE_CHECKING:
    from ..transformer import Transformer

# Keep full [layer, batch, pos, d_vocab] logits by default only up to this many numbers (64 MB).
KEEP_LOGITS_LIMIT = 2**24


@dataclass
class LogitLens(Result):
    """What each layer's residual stream predicts. `layer` indexes `labels` ("0_pre", ..., "final_post").

    top_tokens, top_probs: `[layer, batch, pos, top_k]`, the most likely tokens and their probabilities.
    target: `[batch, pos]` the token followed at each position, -1 where there is none (the last
    position, by default). target_rank (0 = top-1; -1 where no target), target_prob, target_log_prob:
    `[layer, batch, pos]` (NaN where no target). logits: `[layer, batch, pos, d_vocab]` when kept.
    top_strs: the top-1 token as text, `[layer][batch][pos]`, when the model has a tokenizer.
    """

    result_type = "logit_lens"
    labels: list[str]
    tokens: torch.Tensor
    target: torch.Tensor
    top_tokens: torch.Tensor
    top_probs: torch.Tensor
    target_rank: torch.Tensor
    target_prob: torch.Tensor
    target_log_prob: torch.Tensor
    logits: torch.Tensor | None = None
    str_tokens: list[list[str]] | None = None
    top_strs: list[list[list[str]]] | None = None

    def draw(self, fig: Any, prompt: int = 0) -> None:
        """Layer x position heatmap of the target's probability for one prompt, each cell labelled
        with the layer's top-1 token (as text when the model has a tokenizer, else its id)."""
        if not 0 <= prompt < self.tokens.shape[0]:
            raise AnalysisError(f"prompt must be in [0, {self.tokens.shape[0]}), got {prompt}")
        ax = fig.add_subplot(1, 1, 1)
        probs = self.target_prob[:, prompt]  # [layer, pos]
        xlabels = self.str_tokens[prompt] if self.str_tokens else [str(t) for t in self.tokens[prompt].tolist()]
        heatmap(
            ax,
            probs,
            xlabels=[repr(x)[1:-1] for x in xlabels],
            ylabels=self.labels,
            centered=False,
            title="Logit lens: probability of the next token",
            xlabel="position (input token)",
            ylabel="residual stream",
            colorbar_label="p(target)",
        )
        ax.invert_yaxis()  # the embedding at the bottom, the output on top, like the model's stack
        n_layers, n_pos = probs.shape
        finite = probs[probs.isfinite()]
        middle = float(finite.min() + finite.max()) / 2 if finite.numel() else 0.5
        if n_layers * n_pos <= 600:  # readable cell labels only on small grids
            top1 = self.top_tokens[:, prompt, :, 0].tolist()
            for layer in range(n_layers):
                for pos in range(n_pos):
                    text = self.top_strs[layer][prompt][pos] if self.top_strs else str(top1[layer][pos])
                    dark = not probs[layer, pos] > middle  # viridis runs from dark to yellow
                    ax.text(
                        pos, layer, repr(text)[1:-1][:6], ha="center", va="center", fontsize=6, color="white" if dark else "black"
                    )


@torch.no_grad()
def logit_lens(
    model: Transformer,
    tokens: torch.Tensor,
    incl_mid: bool = False,
    target: torch.Tensor | None = None,
    top_k: int = 5,
    keep_logits: bool | None = None,
) -> LogitLens:
    """Logits of every residual stream read through the final norm (its scale recomputed per
    stream) and the unembedding (with its bias), for tokens `[batch, pos]`.

    target: token ids `[batch, pos]` to follow across layers (-1 for none); by default the actual
    next token, so the last position has none. keep_logits: keep the full `[layer, batch, pos,
    d_vocab]` logits; by default only when they fit in `KEEP_LOGITS_LIMIT` numbers.
    """
    tokens = check_tokens(model, tokens)
    batch, n_pos = tokens.shape
    d_vocab = model.cfg.d_vocab
    if not 1 <= top_k <= d_vocab:
        raise AnalysisError(f"top_k must be in [1, d_vocab={d_vocab}], got {top_k}")
    if target is None:
        target = torch.full_like(tokens, -1)
        target[:, :-1] = tokens[:, 1:]
    else:
        target = torch.as_tensor(target, device=tokens.device).long()
        if target.shape != tokens.shape:
            raise AnalysisError(f"target must be token ids [batch, pos] = {list(tokens.shape)}; got {list(target.shape)}")
        if ((target < -1) | (target >= d_vocab)).any():
            raise AnalysisError(f"target ids must lie in [0, {d_vocab}) (or -1 for none)")

    _, cache = model.run_with_cache(
        tokens, names_filter=lambda name: name.endswith(("hook_resid_pre", "hook_resid_mid", "hook_resid_post"))
    )
    resid, labels = cache.accumulated_resid(incl_mid=incl_mid, return_labels=True)  # [layer, batch, pos, d_model]
    n_layers = len(labels)
    if keep_logits is None:
        keep_logits = n_layers * batch * n_pos * d_vocab <= KEEP_LOGITS_LIMIT

    has_target = target >= 0
    safe_target = target.clamp(min=0)[..., None]
    kept, top_tokens, top_probs, ranks, log_probs = [], [], [], [], []
    for stream in resid:  # one layer at a time: only [batch, pos, d_vocab] is ever alive
        logits = model.unembed(model.ln_final(stream))
        if keep_logits:
            kept.append(logits)
        logp = logits.float().log_softmax(-1)
        top = logp.topk(top_k, dim=-1)
        top_tokens.append(top.indices)
        top_probs.append(top.values.exp())
        target_logit = logits.gather(-1, safe_target)
        ranks.append((logits > target_logit).sum(-1).masked_fill(~has_target, -1))
        log_probs.append(logp.gather(-1, safe_target)[..., 0].masked_fill(~has_target, float("nan")))

    target_log_prob = torch.stack(log_probs)
    str_tokens = top_strs = None
    if getattr(model, "tokenizer", None) is not None:
        decode = model.tokenizer.decode
        str_tokens = [[decode([t]) for t in row] for row in tokens.tolist()]
        top_strs = [[[decode([t]) for t in row] for row in layer[..., 0].tolist()] for layer in top_tokens]
    return LogitLens(
        labels=labels,
        tokens=tokens,
        target=target,
        top_tokens=torch.stack(top_tokens),
        top_probs=torch.stack(top_probs),
        target_rank=torch.stack(ranks),
        target_prob=target_log_prob.exp(),
        target_log_prob=target_log_prob,
        logits=torch.stack(kept) if keep_logits else None,
        str_tokens=str_tokens,
        top_strs=top_strs,
    )
