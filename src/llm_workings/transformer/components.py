"""The parts of a decoder-only transformer, one idea per class.

Weights are stored the way the fast kernels want them (fused QKV, `F.linear`'s [out, in]), and
read the way interpretability work wants them: `W_Q[head, d_model, d_head]`, `W_O[head, d_head,
d_model]`, `W_in[d_model, d_mlp]`, `W_out[d_mlp, d_model]`. Those names are views that share
storage, so editing one edits the model.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .config import TransformerConfig
from .hooks import HookPoint
from .rotary import Rotary


class WeightView:
    """A named, reshaped view of stored weights; assigning to it copies into the storage."""

    def __init__(self, get: Callable[[nn.Module], torch.Tensor | None], doc: str) -> None:
        self.get = get
        self.__doc__ = doc

    def __get__(self, module: nn.Module | None, owner: type) -> torch.Tensor | None:
        return self if module is None else self.get(module)

    def __set__(self, module: nn.Module, value: torch.Tensor) -> None:
        view = self.get(module)
        if view is None:
            raise AttributeError("this model was built without that bias")
        if tuple(value.shape) != tuple(view.shape):
            raise ValueError(f"expected shape {list(view.shape)}, got {list(value.shape)}")
        with torch.no_grad():
            view.copy_(value)


def _param(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.empty(*shape))


class Projections(nn.Module):
    """A component whose linear maps can carry updates on top of their stored weights.

    `updates[weight]` lists functions `(x, out) -> out` run after `F.linear(x, weight, bias)`, in
    order; llm_workings.finetune attaches its LoRA adapters here. An empty dict costs one lookup.
    """

    def __init__(self) -> None:
        super().__init__()
        self.updates: dict[str, list[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = {}

    def project(self, x: torch.Tensor, weight: str, bias: torch.Tensor | None) -> torch.Tensor:
        return self.updated(x, weight, F.linear(x, getattr(self, weight), bias))

    def updated(self, x: torch.Tensor, weight: str, out: torch.Tensor) -> torch.Tensor:
        for update in self.updates.get(weight, ()):
            out = update(x, out)
        return out


class Embed(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.W_E = _param(cfg.d_vocab, cfg.d_model)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:  # [batch, pos] -> [batch, pos, d_model]
        return F.embedding(tokens, self.W_E)


class PosEmbed(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.W_pos = _param(cfg.n_ctx, cfg.d_model)

    def forward(self, start: int, n: int) -> torch.Tensor:  # -> [1, pos, d_model] for positions start..start+n-1
        if start + n > self.W_pos.shape[0]:
            raise ValueError(f"position {start + n - 1} is beyond n_ctx={self.W_pos.shape[0]}, the positions this model learned")
        return self.W_pos[start : start + n][None]


class Unembed(nn.Module):
    """Residual stream to logits. Stores [d_vocab, d_model]; `W_U` reads it as [d_model, d_vocab]."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.weight = _param(cfg.d_vocab, cfg.d_model)
        self.b_U = _param(cfg.d_vocab) if cfg.bias_unembed else None

    W_U = WeightView(lambda m: m.weight.T, "[d_model, d_vocab]")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [batch, pos, d_model] -> [batch, pos, d_vocab]
        return F.linear(x, self.weight, self.b_U)


class LayerNorm(nn.Module):
    """x -> (x - mean) / scale * w + b, with scale = sqrt(var + eps). `w`/`b` are None once folded away
    (`cfg.norm_affine` False). Statistics are computed in float32, as the fused kernel does."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.eps = cfg.norm_eps
        self.w: nn.Parameter | None = _param(cfg.d_model) if cfg.norm_affine else None
        self.b: nn.Parameter | None = _param(cfg.d_model) if cfg.norm_affine else None
        self.hook_scale = HookPoint()  # [batch, pos, 1]
        self.hook_normalized = HookPoint()  # [batch, pos, d_model], after w and b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hook_scale.may_edit:  # the scale a hook returns must be the one used
            centred = x.float() - x.float().mean(-1, keepdim=True)
            scale = self.hook_scale((centred.pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
            x = (centred / scale).to(x.dtype)
            return self.hook_normalized(x if self.w is None else torch.addcmul(self.b, x, self.w))
        if self.hook_scale.active:  # only read: the fused kernel returns 1/scale as a by-product
            out, _, rstd = torch.native_layer_norm(x, x.shape[-1:], self.w, self.b, self.eps)
            self.hook_scale(rstd.reciprocal())
            return self.hook_normalized(out)
        return self.hook_normalized(F.layer_norm(x, x.shape[-1:], self.w, self.b, self.eps))


class RMSNorm(nn.Module):
    """x -> x / scale * w, with scale = sqrt(mean(x^2) + eps), computed in float32 as Llama does."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.eps = cfg.norm_eps
        self.w: nn.Parameter | None = _param(cfg.d_model) if cfg.norm_affine else None
        self.b = None
        self.hook_scale = HookPoint()
        self.hook_normalized = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.hook_scale.may_edit:
            scale = self.hook_scale((x.float().pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
            normed = (x.float() / scale).to(x.dtype)
        else:
            if self.hook_scale.active:
                self.hook_scale((x.float().pow(2).mean(-1, keepdim=True) + self.eps).sqrt())
            if x.dtype == torch.float32:
                return self.hook_normalized(F.rms_norm(x, x.shape[-1:], self.w, self.eps))
            normed = F.rms_norm(x.float(), x.shape[-1:], None, self.eps).to(x.dtype)
        return self.hook_normalized(normed if self.w is None else normed * self.w)


NORMS = {"layernorm": LayerNorm, "rmsnorm": RMSNorm}

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
}


class Attention(Projections):
    """Causal self-attention, multi-head or grouped-query.

    Fast path: `F.scaled_dot_product_attention`. When scores or pattern are hooked, the same
    attention is computed step by step so they exist to be read or replaced.
    """

    def __init__(self, cfg: TransformerConfig, layer: int, rotary: Rotary | None) -> None:
        super().__init__()
        self.cfg, self.layer = cfg, layer
        h, kv, dh = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
        self.split = (h * dh, kv * dh, kv * dh)
        self.w_qkv = _param(sum(self.split), cfg.d_model)
        self.b_qkv = _param(sum(self.split)) if cfg.bias_qkv else None
        self.w_o = _param(cfg.d_model, h * dh)
        self.b_O = _param(cfg.d_model) if cfg.bias_attn_out else None
        self.rotary = rotary
        self.scale = 1.0 / math.sqrt(dh)
        self.hook_q = HookPoint()  # [batch, pos, head, d_head]
        self.hook_k = HookPoint()  # [batch, pos, kv_head, d_head]
        self.hook_v = HookPoint()  # [batch, pos, kv_head, d_head]
        if rotary is not None:
            self.hook_rot_q = HookPoint()  # [batch, pos, head, d_head], after rotation
            self.hook_rot_k = HookPoint()  # [batch, pos, kv_head, d_head]
        self.hook_attn_scores = HookPoint()  # [batch, head, query_pos, key_pos], masked with -inf
        self.hook_pattern = HookPoint()  # [batch, head, query_pos, key_pos]
        self.hook_z = HookPoint()  # [batch, pos, head, d_head]
        self.hook_result = HookPoint()  # [batch, pos, head, d_model], each head's write to the stream

    def _qkv_view(self, which: int, n: int) -> torch.Tensor:  # -> [n, d_model, d_head]
        start = sum(self.split[:which])
        return self.w_qkv[start : start + self.split[which]].view(n, self.cfg.d_head, self.cfg.d_model).transpose(1, 2)

    def _bias_view(self, which: int, n: int) -> torch.Tensor | None:
        if self.b_qkv is None:
            return None
        start = sum(self.split[:which])
        return self.b_qkv[start : start + self.split[which]].view(n, self.cfg.d_head)

    W_Q = WeightView(lambda m: m._qkv_view(0, m.cfg.n_heads), "[head, d_model, d_head]")
    W_K = WeightView(lambda m: m._qkv_view(1, m.cfg.n_kv_heads), "[kv_head, d_model, d_head]")
    W_V = WeightView(lambda m: m._qkv_view(2, m.cfg.n_kv_heads), "[kv_head, d_model, d_head]")
    W_O = WeightView(lambda m: m.w_o.view(m.cfg.d_model, m.cfg.n_heads, m.cfg.d_head).permute(1, 2, 0), "[head, d_head, d_model]")
    b_Q = WeightView(lambda m: m._bias_view(0, m.cfg.n_heads), "[head, d_head]")
    b_K = WeightView(lambda m: m._bias_view(1, m.cfg.n_kv_heads), "[kv_head, d_head]")
    b_V = WeightView(lambda m: m._bias_view(2, m.cfg.n_kv_heads), "[kv_head, d_head]")

    @property
    def explicit(self) -> bool:
        """Whether scores and pattern must be materialised, because something reads them."""
        return self.hook_attn_scores.active or self.hook_pattern.active

    def forward(self, x: torch.Tensor, start: int, kv_cache=None) -> torch.Tensor:
        """x: [batch, pos, d_model], the normed stream at positions start, start + 1, ..."""
        batch, pos, _ = x.shape
        cfg = self.cfg
        # calculate q, k, v: one matmul for all three
        q, k, v = self.project(x, "w_qkv", self.b_qkv).split(self.split, dim=-1)
        q = self.hook_q(q.view(batch, pos, cfg.n_heads, cfg.d_head))
        k = self.hook_k(k.view(batch, pos, cfg.n_kv_heads, cfg.d_head))
        v = self.hook_v(v.view(batch, pos, cfg.n_kv_heads, cfg.d_head))
        if self.rotary is not None:
            q = self.hook_rot_q(self.rotary(q, start))
            k = self.hook_rot_k(self.rotary(k, start))
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [batch, head, pos, d_head]
        if kv_cache is not None:
            k, v = kv_cache.extend(self.layer, k, v)
        if self.explicit:
            z = self._attend_explicitly(q, k, v)
        else:
            z = self._attend_fused(q, k, v, causal_mask(pos, k.shape[2], cfg.sliding_window, x.device))
        z = self.hook_z(z.transpose(1, 2))  # [batch, pos, head, d_head]
        if self.hook_result.active:  # each head's write into the stream, then their sum
            result = self.hook_result(torch.einsum("bphd,hdm->bphm", z, self.W_O))  # [batch, pos, head, d_model]
            out = result.sum(2)
            out = out if self.b_O is None else out + self.b_O
            return self.updated(z.reshape(batch, pos, -1), "w_o", out)  # an update on w_o is not split by head
        return self.project(z.reshape(batch, pos, -1), "w_o", self.b_O)

    def _attend_fused(self, q, k, v, mask):
        gqa = self.cfg.group_size > 1
        if mask is None:  # plain causal from position 0: the flash kernel's fast case
            return F.scaled_dot_product_attention(q, k, v, is_causal=q.shape[2] > 1, enable_gqa=gqa)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=gqa)

    def _attend_explicitly(self, q, k, v):
        if self.cfg.group_size > 1:  # each key/value head serves a group of query heads
            k = k.repeat_interleave(self.cfg.group_size, dim=1)
            v = v.repeat_interleave(self.cfg.group_size, dim=1)
        scores = (q * self.scale) @ k.transpose(-1, -2)  # [batch, head, query_pos, key_pos]
        blocked = blocked_positions(q.shape[2], k.shape[2], self.cfg.sliding_window, q.device)
        scores = self.hook_attn_scores(scores.masked_fill_(blocked, float("-inf")))
        pattern = self.hook_pattern(scores.softmax(-1, dtype=torch.float32).to(q.dtype))
        return pattern @ v


def causal_mask(n_queries: int, n_keys: int, window: int | None, device: torch.device) -> torch.Tensor | None:
    """The mask SDPA needs: None in the plain causal case (`is_causal`) and when one query sees
    every key; otherwise `allowed_positions`."""
    if (window is None or window >= n_keys) and (n_queries == n_keys or n_queries == 1):
        return None
    return allowed_positions(n_queries, n_keys, window, device)


@functools.lru_cache(maxsize=32)
def allowed_positions(n_queries: int, n_keys: int, window: int | None, device: torch.device) -> torch.Tensor:
    """[query_pos, key_pos] booleans, True where a query may attend. The queries are the last
    `n_queries` of the keys (earlier keys come from a KV cache); with a window, a query sees only
    the `window` most recent keys, itself included."""
    key_pos = torch.arange(n_keys, device=device)
    query_pos = torch.arange(n_keys - n_queries, n_keys, device=device)[:, None]
    allowed = key_pos <= query_pos
    if window is not None:
        allowed &= key_pos > query_pos - window
    return allowed


@functools.lru_cache(maxsize=32)
def blocked_positions(n_queries: int, n_keys: int, window: int | None, device: torch.device) -> torch.Tensor:
    return ~allowed_positions(n_queries, n_keys, window, device)


class BlockMLP(Projections):
    """A block's MLP: x -> act(x W_in + b_in) W_out + b_out. (`nn.MLP` is the NumPy engine's whole network.)"""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.w_in = _param(cfg.d_mlp, cfg.d_model)
        self.b_in = _param(cfg.d_mlp) if cfg.bias_mlp else None
        self.w_out = _param(cfg.d_model, cfg.d_mlp)
        self.b_out = _param(cfg.d_model) if cfg.bias_mlp else None
        self.act = ACTIVATIONS[cfg.act]
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp]
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    W_in = WeightView(lambda m: m.w_in.T, "[d_model, d_mlp]")
    W_out = WeightView(lambda m: m.w_out.T, "[d_mlp, d_model]")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.hook_pre(self.project(x, "w_in", self.b_in))
        return self.project(self.hook_post(self.act(pre)), "w_out", self.b_out)


class GatedBlockMLP(Projections):
    """A block's gated MLP, SwiGLU: x -> (act(x W_gate) * (x W_in)) W_out. Gate and input projections share one matmul."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.d_mlp = cfg.d_mlp
        self.w_gate_in = _param(2 * cfg.d_mlp, cfg.d_model)  # rows: gate, then in
        self.b_gate_in = _param(2 * cfg.d_mlp) if cfg.bias_mlp else None
        self.w_out = _param(cfg.d_model, cfg.d_mlp)
        self.b_out = _param(cfg.d_model) if cfg.bias_mlp else None
        self.act = ACTIVATIONS[cfg.act]
        self.hook_pre = HookPoint()  # [batch, pos, d_mlp], x W_gate: the activation's input
        self.hook_pre_linear = HookPoint()  # [batch, pos, d_mlp], x W_in
        self.hook_post = HookPoint()  # [batch, pos, d_mlp]

    W_gate = WeightView(lambda m: m.w_gate_in[: m.d_mlp].T, "[d_model, d_mlp]")
    W_in = WeightView(lambda m: m.w_gate_in[m.d_mlp :].T, "[d_model, d_mlp]")
    W_out = WeightView(lambda m: m.w_out.T, "[d_mlp, d_model]")
    b_gate = WeightView(lambda m: None if m.b_gate_in is None else m.b_gate_in[: m.d_mlp], "[d_mlp]")
    b_in = WeightView(lambda m: None if m.b_gate_in is None else m.b_gate_in[m.d_mlp :], "[d_mlp]")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, linear = self.project(x, "w_gate_in", self.b_gate_in).chunk(2, dim=-1)
        post = self.act(self.hook_pre(gate)) * self.hook_pre_linear(linear)
        return self.project(self.hook_post(post), "w_out", self.b_out)


class Block(nn.Module):
    """One layer: attention then MLP, each reading a normed copy of the residual stream and adding
    its output back. In parallel mode (GPT-NeoX) both read the same stream."""

    def __init__(self, cfg: TransformerConfig, layer: int, rotary: Rotary | None) -> None:
        super().__init__()
        self.cfg = cfg
        self.ln1 = NORMS[cfg.norm](cfg)
        self.attn = Attention(cfg, layer, rotary)
        if not cfg.attn_only:
            self.ln2 = NORMS[cfg.norm](cfg)
            self.mlp = (GatedBlockMLP if cfg.gated_mlp else BlockMLP)(cfg)
            self.hook_mlp_out = HookPoint()  # [batch, pos, d_model]
        self.hook_resid_pre = HookPoint()  # [batch, pos, d_model]
        self.hook_attn_out = HookPoint()  # [batch, pos, d_model]
        if not (cfg.attn_only or cfg.parallel_residual):
            self.hook_resid_mid = HookPoint()  # [batch, pos, d_model]
        self.hook_resid_post = HookPoint()  # [batch, pos, d_model]

    def forward(self, resid_pre: torch.Tensor, start: int, kv_cache=None) -> torch.Tensor:
        resid_pre = self.hook_resid_pre(resid_pre)
        attn_out = self.hook_attn_out(self.attn(self.ln1(resid_pre), start, kv_cache))
        if self.cfg.attn_only:
            return self.hook_resid_post(resid_pre + attn_out)
        if self.cfg.parallel_residual:
            mlp_out = self.hook_mlp_out(self.mlp(self.ln2(resid_pre)))
            return self.hook_resid_post(resid_pre + attn_out + mlp_out)
        resid_mid = self.hook_resid_mid(resid_pre + attn_out)
        mlp_out = self.hook_mlp_out(self.mlp(self.ln2(resid_mid)))
        return self.hook_resid_post(resid_mid + mlp_out)
