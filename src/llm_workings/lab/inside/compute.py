"""The "Inside a transformer" page's engine side: one forward pass, cached at the hooks one
position, one layer and one head pass through, and cut into the stages the page walks.

    walk = run_walk(model, ids, position=5, layer=1, head=2)
    walk.cache["blocks.1.attn.hook_pattern"]      # the engine's own tensors, batch of one
    walk.logits                                   # [1, pos, d_vocab]
    stages(walk, ...)                             # stages.py: what each stage shows

Every tensor comes from `model.run_with_cache`, with a `names_filter` that keeps only the hooks
the walk reads, so the page prints the cache itself. Which hooks exist is the model's config
(`hook_names`): attention-only models have no MLP, parallel-residual blocks no `resid_mid`,
rotary models no `hook_pos_embed` but `hook_rot_q`/`hook_rot_k`, gated MLPs `hook_pre_linear`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ApiError


@dataclass(frozen=True)
class Wiring:
    """What one model's block is made of, read from its config (the page draws this, not a family name)."""

    norm: str  # "layernorm" or "rmsnorm"
    positions: str  # "learned", "rotary" or "none"
    rotary_dim: int  # dimensions of each head that rotate (0 without rotary)
    act: str
    gated_mlp: bool
    parallel_residual: bool
    attn_only: bool
    n_heads: int
    n_kv_heads: int
    d_model: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_layers: int
    n_ctx: int

    @classmethod
    def of(cls, cfg: Any) -> Wiring:
        return cls(
            norm=cfg.norm,
            positions=cfg.positions,
            rotary_dim=cfg.rotary_dim if cfg.positions == "rotary" else 0,
            act=cfg.act,
            gated_mlp=bool(cfg.gated_mlp),
            parallel_residual=bool(cfg.parallel_residual),
            attn_only=bool(cfg.attn_only),
            n_heads=cfg.n_heads,
            n_kv_heads=cfg.n_kv_heads,
            d_model=cfg.d_model,
            d_head=cfg.d_head,
            d_mlp=0 if cfg.attn_only else cfg.d_mlp,
            d_vocab=cfg.d_vocab,
            n_layers=cfg.n_layers,
            n_ctx=cfg.n_ctx,
        )

    @property
    def has_mlp(self) -> bool:
        return not self.attn_only

    @property
    def has_resid_mid(self) -> bool:
        return not (self.attn_only or self.parallel_residual)


def hook_names(w: Wiring, layer: int) -> list[str]:
    """The hooks the walk of `layer` reads, for this wiring: the embeddings, the chosen block, the final norm."""
    b = f"blocks.{layer}"
    names = ["hook_embed"] + (["hook_pos_embed"] if w.positions == "learned" else [])
    names += ["blocks.0.hook_resid_pre", f"{b}.hook_resid_pre", f"{b}.ln1.hook_scale", f"{b}.ln1.hook_normalized"]
    names += [f"{b}.attn.hook_{n}" for n in ("q", "k", "v")]
    if w.positions == "rotary":
        names += [f"{b}.attn.hook_rot_q", f"{b}.attn.hook_rot_k"]
    names += [f"{b}.attn.hook_{n}" for n in ("attn_scores", "pattern", "z", "result")]
    names.append(f"{b}.hook_attn_out")
    if w.has_resid_mid:
        names.append(f"{b}.hook_resid_mid")
    if w.has_mlp:
        names += [f"{b}.ln2.hook_scale", f"{b}.ln2.hook_normalized", f"{b}.mlp.hook_pre"]
        names += [f"{b}.mlp.hook_pre_linear"] if w.gated_mlp else []
        names += [f"{b}.mlp.hook_post", f"{b}.hook_mlp_out"]
    names.append(f"{b}.hook_resid_post")
    names += [f"blocks.{w.n_layers - 1}.hook_resid_post", "ln_final.hook_scale", "ln_final.hook_normalized"]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Walk:
    ids: list[int]
    position: int
    layer: int
    head: int
    wiring: Wiring
    cache: dict[str, Any]  # hook name -> the cached tensor (batch of one), float32 on the CPU
    logits: Any  # [1, pos, d_vocab] float32

    @property
    def kv_head(self) -> int:
        """The key/value head the chosen query head reads (grouped-query attention shares them)."""
        return self.head // (self.wiring.n_heads // self.wiring.n_kv_heads)


def check_choice(w: Wiring, name: str, n_tokens: int, position: int | None, layer: int, head: int) -> int:
    """The position to show (None: the last token), or an ApiError naming the limit that was broken."""
    if not 0 <= layer < w.n_layers:
        raise ApiError(f"layer {layer} is out of range: {name} has layers 0 to {w.n_layers - 1}", status=422, field="layer")
    if not 0 <= head < w.n_heads:
        raise ApiError(
            f"head {head} is out of range: {name} has heads 0 to {w.n_heads - 1} in each layer", status=422, field="head"
        )
    if position is None:
        return n_tokens - 1
    if not 0 <= position < n_tokens:
        raise ApiError(
            f"position {position} is out of range: the prompt has {n_tokens} tokens, positions 0 to {n_tokens - 1}",
            status=422,
            field="position",
        )
    return position


# Hooks whose being read changes how the model computes (the explicit attention path, the per-head
# results, the norms' scale kernel): read in every layer, so the walk's numbers are bit for bit those
# of the snippets' plain `model.run_with_cache(tokens)`, which reads every hook.
SAME_PATH = ("hook_pattern", "hook_result", "hook_scale")


def run_walk(model: Any, ids: list[int], position: int, layer: int, head: int) -> Walk:
    """One forward pass of `ids`, keeping the hooks `hook_names` lists (float32, CPU)."""
    import torch

    w = Wiring.of(model.cfg)
    tokens = torch.tensor([ids], dtype=torch.long, device=model.W_E.device)
    shown = set(hook_names(w, layer))
    with torch.no_grad():
        logits, cache = model.run_with_cache(tokens, names_filter=lambda name: name in shown or name.endswith(SAME_PATH))
    tensors = {name: cache[name].float().cpu() for name in shown}
    return Walk(list(ids), position, layer, head, w, tensors, logits.float().cpu())


def top_neurons(post: Any, k: int) -> list[int]:
    """The `k` neurons with the largest |post| at one position, largest first."""
    k = min(k, post.shape[-1])
    return post.abs().topk(k).indices.tolist()


def sharpened_pattern(scores: Any, factor: float) -> Any:
    """softmax(factor * scores) over the keys, as if the scores were scaled by `factor` (a
    temperature of 1/factor): masked keys (-inf) stay at exactly 0."""
    return (scores * factor).softmax(-1)
