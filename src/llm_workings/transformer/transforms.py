"""Weight transforms that leave the model's output distribution unchanged but make weights easier
to read, as in TransformerLens's weight processing (Elhage et al., 2021; Nanda's notes).

- `fold_layer_norm`: a norm's gain w and bias b are affine, so they fold into the linear map that
  reads the normed stream: (x̂ w + b) W = x̂ (diag(w) W) + b W. Afterwards norms only normalise.
- `center_writing_weights`: LayerNorm subtracts the mean of the residual stream, so the mean of
  anything written into it is discarded anyway; remove it from the writing weights.
- `center_unembed`: softmax ignores a constant added to every logit; remove each position's mean.

All three are opt-in and mutate the model in place; each returns the model.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from .model import Transformer


def _reconfigure(model: Transformer, **changes: Any) -> None:
    """Give the model a new config that describes what it has become, so `Transformer(model.cfg)`
    builds the same architecture. A copy: other models built from the old config keep theirs."""
    cfg = dataclasses.replace(model.cfg, **changes)
    for module in model.modules():
        if hasattr(module, "cfg"):
            module.cfg = cfg


def _untie(model: Transformer) -> None:
    """Give the unembedding its own copy of W_E, so transforms of one leave the other alone."""
    if model.cfg.tie_embeddings:
        model.unembed.weight = nn.Parameter(model.embed.W_E.detach().clone())
        _reconfigure(model, tie_embeddings=False)


def _bias(module: nn.Module, name: str, size: int, like: torch.Tensor) -> torch.Tensor:
    """The module's bias `name`, created as zeros when the model was built without it."""
    if getattr(module, name) is None:
        setattr(module, name, nn.Parameter(torch.zeros(size, dtype=like.dtype, device=like.device)))
    return getattr(module, name)


def _fold(norm: nn.Module, reader: nn.Module, weight: str, bias: str, center: bool) -> None:
    """Fold `norm`'s gain and bias into `reader.<weight>` ([out, d_model]) and `reader.<bias>` ([out])."""
    w = getattr(reader, weight)
    if norm.b is not None:
        b = _bias(reader, bias, w.shape[0], w)
        b += w @ norm.b
    if norm.w is not None:
        w *= norm.w
    if center:  # the normed stream has zero mean over d_model, so this direction is never read
        w -= w.mean(dim=1, keepdim=True)


@torch.no_grad()
def fold_layer_norm(model: Transformer, center_reading_weights: bool = True) -> Transformer:
    """Fold every norm's gain and bias into the weights that read its output. With LayerNorm,
    `center_reading_weights` also removes the (unread) mean direction of those weights."""
    center = center_reading_weights and model.cfg.norm == "layernorm"
    for block in model.blocks:
        _fold(block.ln1, block.attn, "w_qkv", "b_qkv", center)
        block.ln1.w = block.ln1.b = None
        if not model.cfg.attn_only:
            mlp = block.mlp
            weight, bias = ("w_gate_in", "b_gate_in") if model.cfg.gated_mlp else ("w_in", "b_in")
            _fold(block.ln2, mlp, weight, bias, center)
            block.ln2.w = block.ln2.b = None
    _untie(model)
    _fold(model.ln_final, model.unembed, "weight", "b_U", center)
    model.ln_final.w = model.ln_final.b = None
    bias_mlp = model.cfg.bias_mlp
    if not model.cfg.attn_only and not bias_mlp and _has_input_bias(model.blocks[0].mlp):
        for block in model.blocks:  # the config has one switch for MLP biases: give b_out too
            block.mlp.b_out = nn.Parameter(torch.zeros_like(block.mlp.w_out[:, 0]))
        bias_mlp = True
    _reconfigure(
        model,
        norm_affine=False,
        bias_qkv=model.blocks[0].attn.b_qkv is not None,
        bias_mlp=bias_mlp,
        bias_unembed=model.unembed.b_U is not None,
    )
    return model


def _has_input_bias(mlp: nn.Module) -> bool:
    return getattr(mlp, "b_gate_in", getattr(mlp, "b_in", None)) is not None


@torch.no_grad()
def center_writing_weights(model: Transformer) -> Transformer:
    """Remove the mean over d_model from everything that writes into the residual stream: W_E,
    W_pos, W_O and W_out with their biases. Valid only where LayerNorm reads the stream."""
    if model.cfg.norm != "layernorm":
        raise ValueError(
            f"center_writing_weights needs LayerNorm, which subtracts the mean; this model uses "
            f"{model.cfg.norm}, so centering would change its output"
        )
    _untie(model)
    writers: list[tuple[torch.Tensor, int]] = [(model.embed.W_E, -1)]  # (weight, its d_model axis)
    if model.cfg.positions == "learned":
        writers.append((model.pos_embed.W_pos, -1))
    for block in model.blocks:
        writers += [(block.attn.w_o, 0), (block.attn.b_O, 0)]
        if not model.cfg.attn_only:
            writers += [(block.mlp.w_out, 0), (block.mlp.b_out, 0)]
    for weight, axis in writers:
        if weight is not None:
            weight -= weight.mean(dim=axis, keepdim=True)
    return model


@torch.no_grad()
def center_unembed(model: Transformer) -> Transformer:
    """Subtract from each unembedding direction the mean over the vocabulary, so every logit
    vector has zero mean. Log-probabilities are unchanged."""
    _untie(model)
    model.unembed.weight -= model.unembed.weight.mean(dim=0, keepdim=True)
    if model.unembed.b_U is not None:
        model.unembed.b_U -= model.unembed.b_U.mean()
    return model
