"""ActivationCache: the activations of one run, by hook name, with the residual-stream views
interpretability work reaches for (accumulated, decomposed, per head, and through the final norm).

Stacks are `[component, batch, pos, d_model]` (an int `pos_slice` drops `pos`), and `apply_ln`
follows TransformerLens 3.9's convention, so its recipes carry over; docs/transformer.md states it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .model import Transformer

Key = str | tuple
PosSlice = int | slice | None


def _slice_pos(x: torch.Tensor, pos_slice: PosSlice) -> torch.Tensor:
    """Select positions on the pos axis, the second to last of `[..., batch, pos, d_model]`. An int
    drops the axis, as Python indexing does (and TransformerLens's `Slice`); a slice keeps it."""
    if pos_slice is None:
        return x
    if isinstance(pos_slice, int):
        return x.select(-2, pos_slice)
    return x[..., pos_slice, :]


class ActivationCache:
    def __init__(self, cache: dict[str, torch.Tensor], model: Transformer) -> None:
        self.cache = cache
        self.model = model

    # -- dictionary access ------------------------------------------------------------------------
    def _name(self, key: Key) -> str:
        from .hooks import act_name

        return act_name(key) if isinstance(key, str) else act_name(*key)

    def __getitem__(self, key: Key) -> torch.Tensor:
        name = self._name(key)
        if name not in self.cache:
            if name in self.model.hook_dict:
                raise KeyError(f"{name!r} was not cached; widen names_filter to include it")
            raise KeyError(f"{name!r} is not a hook name of this model; see model.hook_dict")
        return self.cache[name]

    def __contains__(self, key: Key) -> bool:
        try:
            return self._name(key) in self.cache
        except KeyError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self.cache)

    def __len__(self) -> int:
        return len(self.cache)

    def keys(self):
        return self.cache.keys()

    def items(self):
        return self.cache.items()

    def values(self):
        return self.cache.values()

    def to(self, device: str | torch.device) -> ActivationCache:
        return ActivationCache({k: v.to(device) for k, v in self.cache.items()}, self.model)

    def __repr__(self) -> str:
        return f"ActivationCache with {len(self.cache)} activations: {', '.join(list(self.cache)[:4])}{', …' if len(self) > 4 else ''}"

    # -- residual stream views --------------------------------------------------------------------
    def _layer(self, layer: int | None) -> int:
        """None and -1 mean "after the last block", as in TransformerLens."""
        n_layers = self.model.cfg.n_layers
        layer = n_layers if layer is None or layer == -1 else layer
        if not 0 <= layer <= n_layers:
            raise ValueError(f"layer must be in [0, {n_layers}] (or None / -1 for the end), got {layer}")
        return layer

    def _stack(self, names: list[str], pos_slice: PosSlice) -> torch.Tensor:
        """`[component, batch, pos, d_model]`; with no components, an empty stack of that shape."""
        if not names:
            like = next((t for t in self.cache.values() if t.ndim == 3 and t.shape[-1] == self.model.cfg.d_model), None)
            if like is None:
                raise ValueError("the stack is empty and nothing cached gives its [batch, pos, d_model] shape")
            return _slice_pos(like.new_zeros(0, *like.shape), pos_slice)
        return _slice_pos(torch.stack([self[name] for name in names]), pos_slice)

    def _mlp_input(self, layer: int, mlp_input: bool) -> bool:
        if mlp_input and layer == self.model.cfg.n_layers:
            raise ValueError("mlp_input needs a block's layer in [0, n_layers - 1]; the final norm has no MLP after it")
        return mlp_input

    def _view(
        self,
        stack: torch.Tensor,
        labels: list[str],
        layer: int,
        apply_ln: bool,
        pos_slice: PosSlice,
        return_labels: bool,
        mlp_input: bool = False,
        recompute_ln: bool = False,
    ):
        if apply_ln:
            stack = self.apply_ln_to_stack(stack, layer, mlp_input=mlp_input, pos_slice=pos_slice, recompute_ln=recompute_ln)
        return (stack, labels) if return_labels else stack

    def accumulated_resid(
        self,
        layer: int | None = None,
        incl_mid: bool = False,
        apply_ln: bool = False,
        pos_slice: PosSlice = None,
        mlp_input: bool = False,
        return_labels: bool = False,
    ):
        """The residual stream entering each block 0..`layer`, where `layer` = n_layers (the default)
        means the final stream: `[component, batch, pos, d_model]`, labels like "0_pre", "0_mid",
        "final_post". With `mlp_input`, the streams entering block `layer`'s MLP (its "_mid" last).

        `apply_ln` follows TransformerLens 3.9: into the final norm (`layer` = n_layers) each stream
        goes through `ln_final` itself, with its own scale and the norm's gain and bias, so
        `accumulated_resid(apply_ln=True) @ W_U + b_U` is the logit lens. Into a block, every stream is
        centred (LayerNorm) and divided by the scale cached for that block's norm, without its gain
        or bias (see `apply_ln_to_stack`)."""
        n_layers = self.model.cfg.n_layers
        layer = self._layer(layer)
        mlp_input = self._mlp_input(layer, mlp_input)
        has_mid = not self.model.cfg.parallel_residual  # a parallel block's MLP reads resid_pre
        names, labels = [], []
        for lay in range(layer + 1):
            if lay == n_layers:
                names.append(f"blocks.{n_layers - 1}.hook_resid_post")
                labels.append("final_post")
                break
            names.append(f"blocks.{lay}.hook_resid_pre")
            labels.append(f"{lay}_pre")
            if has_mid and ((incl_mid and lay < layer) or (mlp_input and lay == layer)):
                names.append(f"blocks.{lay}.hook_resid_mid")
                labels.append(f"{lay}_mid")
        stack = self._stack(names, pos_slice)
        return self._view(stack, labels, layer, apply_ln, pos_slice, return_labels, mlp_input, layer == n_layers)

    def decompose_resid(
        self,
        layer: int | None = None,
        incl_embeds: bool = True,
        apply_ln: bool = False,
        pos_slice: PosSlice = None,
        mlp_input: bool = False,
        return_labels: bool = False,
    ):
        """What each component wrote into the residual stream before `layer`: embeddings, then each
        block's attention and MLP output (with `mlp_input`, also block `layer`'s attention output, which
        its MLP reads). The stack sums to the residual stream at that point. `apply_ln` centres
        (LayerNorm) and divides every part by the scale cached for the norm that reads that stream,
        without its gain or bias, as TransformerLens 3.9 does; the parts still sum to the normed stream."""
        cfg = self.model.cfg
        layer = self._layer(layer)
        mlp_input = self._mlp_input(layer, mlp_input)
        names, labels = [], []
        if incl_embeds:
            names.append("hook_embed")
            labels.append("embed")
            if cfg.positions == "learned":
                names.append("hook_pos_embed")
                labels.append("pos_embed")
        for lay in range(layer):
            names.append(f"blocks.{lay}.hook_attn_out")
            labels.append(f"{lay}_attn_out")
            if not cfg.attn_only:
                names.append(f"blocks.{lay}.hook_mlp_out")
                labels.append(f"{lay}_mlp_out")
        if mlp_input and not cfg.parallel_residual:  # a parallel block's MLP does not read its own attention
            names.append(f"blocks.{layer}.hook_attn_out")
            labels.append(f"{layer}_attn_out")
        return self._view(self._stack(names, pos_slice), labels, layer, apply_ln, pos_slice, return_labels, mlp_input)

    def stack_head_results(
        self, layer: int | None = None, apply_ln: bool = False, pos_slice: PosSlice = None, return_labels: bool = False
    ):
        """Each head's output into the residual stream, for blocks before `layer` (all when None):
        `[layer * head, batch, pos, d_model]`, labels like "L0H3". Taken from `hook_result` when cached,
        else computed from `hook_z` and W_O. Attention output biases are not included. `apply_ln`
        centres (LayerNorm) and divides by the scale cached for the norm at `layer`, without its gain or
        bias, as TransformerLens 3.9 does."""
        cfg = self.model.cfg
        layer = self._layer(layer)
        parts, labels = [], []
        for lay in range(layer):
            name = f"blocks.{lay}.attn.hook_result"
            if name in self.cache:
                result = self.cache[name]
            else:
                z = self[("z", lay)]  # [batch, pos, head, d_head]
                result = torch.einsum("bphd,hdm->bphm", z, self.model.blocks[lay].attn.W_O.to(z.dtype))
            parts.append(result.permute(2, 0, 1, 3))  # [head, batch, pos, d_model]
            labels += [f"L{lay}H{h}" for h in range(cfg.n_heads)]
        stack = _slice_pos(torch.cat(parts), pos_slice) if parts else self._stack([], pos_slice)
        return self._view(stack, labels, layer, apply_ln, pos_slice, return_labels)

    def apply_ln_to_stack(
        self,
        stack: torch.Tensor,
        layer: int | None = None,
        mlp_input: bool = False,
        pos_slice: PosSlice = None,
        recompute_ln: bool = False,
    ) -> torch.Tensor:
        """Put each component of `stack` through the norm the model applies at `layer` (the final norm
        when None or n_layers; `ln2` with `mlp_input`), as TransformerLens 3.9 does.

        By default each component is centred (LayerNorm only) and divided by the scale cached for the
        whole stream. The norm is linear once that scale is fixed, so the results still sum to the
        normed stream. The norm's gain and bias are not applied (fold them into the next layer with
        `fold_layer_norm`, after which the sum is exactly the norm's output).

        With `recompute_ln` and the final norm, each component instead goes through `ln_final` as if it
        were the whole stream: its own scale, then the gain and bias. That is the logit lens, and what
        `accumulated_resid(apply_ln=True)` does for the final stream. `stack` is
        `[component, batch, pos, d_model]`, already cut by `pos_slice` (which here only cuts the scale)."""
        layer = self._layer(layer)
        mlp_input = self._mlp_input(layer, mlp_input)
        if layer == self.model.cfg.n_layers:
            if recompute_ln:
                return self.model.ln_final(stack)
            name = "ln_final.hook_scale"
        else:
            name = f"blocks.{layer}.{'ln2' if mlp_input else 'ln1'}.hook_scale"
        scale = _slice_pos(self[name], pos_slice)  # [batch, pos, 1], or [batch, 1] for an int position
        if self.model.cfg.norm == "layernorm":
            stack = stack - stack.mean(-1, keepdim=True)
        return stack / scale
