"""How each Hugging Face model family maps onto `Transformer`: one small declarative table each.

A family is (1) a function from the checkpoint's config.json to a `TransformerConfig`, and (2) a
table from each of our parameters to the checkpoint tensor(s) it is made of. Nothing about a
family leaks into the model code. `{l}` stands for the layer, `{p}` for the base-model prefix
(e.g. "transformer." in GPT2LMHeadModel files, "" in GPT2Model files), and "a|b" lists names a
tensor goes by in different versions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from .config import ConfigError, TransformerConfig

Shape = tuple[int, ...]


# -- how tensors are transformed on the way in -------------------------------------------------
@dataclass(frozen=True)
class Same:
    name: str

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name,)

    def shapes(self, target: Shape, cfg: TransformerConfig) -> list[Shape]:
        return [target]

    def convert(self, tensors: list[torch.Tensor], cfg: TransformerConfig) -> torch.Tensor:
        return tensors[0]


@dataclass(frozen=True)
class Transposed(Same):
    """GPT-2's Conv1D stores [in, out]; `F.linear` wants [out, in]."""

    def shapes(self, target: Shape, cfg: TransformerConfig) -> list[Shape]:
        return [target[::-1]]

    def convert(self, tensors: list[torch.Tensor], cfg: TransformerConfig) -> torch.Tensor:
        return tensors[0].T


@dataclass(frozen=True)
class Stacked:
    """Separate projections (q, k, v; or gate, up) stacked into one fused weight along dim 0."""

    parts: tuple[str, ...]
    sizes: Callable[[TransformerConfig], tuple[int, ...]]

    @property
    def names(self) -> tuple[str, ...]:
        return self.parts

    def shapes(self, target: Shape, cfg: TransformerConfig) -> list[Shape]:
        return [(size, *target[1:]) for size in self.sizes(cfg)]

    def convert(self, tensors: list[torch.Tensor], cfg: TransformerConfig) -> torch.Tensor:
        return torch.cat(tensors, dim=0)


@dataclass(frozen=True)
class HeadInterleavedQKV(Same):
    """GPT-NeoX fuses q, k, v per head ([head, 3, d_head] on the output axis); we keep [3, head, d_head]."""

    def convert(self, tensors: list[torch.Tensor], cfg: TransformerConfig) -> torch.Tensor:
        t = tensors[0]
        return t.reshape(cfg.n_heads, 3, cfg.d_head, *t.shape[1:]).transpose(0, 1).reshape(t.shape)


def _qkv_sizes(cfg: TransformerConfig) -> tuple[int, ...]:
    return (cfg.n_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head, cfg.n_kv_heads * cfg.d_head)


def _gate_up_sizes(cfg: TransformerConfig) -> tuple[int, ...]:
    return (cfg.d_mlp, cfg.d_mlp)


@dataclass(frozen=True)
class Family:
    name: str
    architectures: tuple[str, ...]
    config: Callable[[dict[str, Any]], TransformerConfig]
    prefixes: tuple[str, ...]  # candidates for {p}, tried in order against the embedding's name
    weights: dict[str, Any]  # our parameter name -> Same / Transposed / Stacked / HeadInterleavedQKV


# -- reading config.json -----------------------------------------------------------------------
HF_ACTIVATIONS = {
    "gelu_new": "gelu_tanh",
    "gelu_pytorch_tanh": "gelu_tanh",
    "gelu_fast": "gelu_tanh",
    "gelu": "gelu",
    "relu": "relu",
    "silu": "silu",
    "swish": "silu",
}


def _activation(c: dict[str, Any], key: str, default: str) -> str:
    name = c.get(key, default)  # the default is what transformers assumes when config.json omits it
    if name not in HF_ACTIVATIONS:
        raise ConfigError(f"activation {name!r} is not supported; expected one of {', '.join(HF_ACTIVATIONS)}")
    return HF_ACTIVATIONS[name]


def _refuse(c: dict[str, Any], **supported: Any) -> None:
    for key, value in supported.items():
        if c.get(key, value) != value:
            raise ConfigError(f"config has {key}={c[key]!r}; only {key}={value!r} is supported")


def _rotary(c: dict[str, Any], default_pct: float) -> dict[str, Any]:
    """Rotary settings from either the older flat keys or transformers 5's `rope_parameters`."""
    rope = {**(c.get("rope_scaling") or {}), **(c.get("rope_parameters") or {})}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type not in ("default", "llama3", "linear"):
        raise ConfigError(f"rope type {rope_type!r} is not supported; expected 'default', 'llama3' or 'linear'")
    keys = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")
    needed = keys if rope_type == "llama3" else ("factor",) if rope_type == "linear" else ()
    missing = [k for k in needed if k not in rope]
    if missing:
        raise ConfigError(f"rope type {rope_type!r} needs {', '.join(missing)} in rope_scaling / rope_parameters")
    return dict(
        positions="rotary",
        rotary_base=float(rope.get("rope_theta", c.get("rope_theta", c.get("rotary_emb_base", 10000.0)))),
        rotary_pct=float(rope.get("partial_rotary_factor", c.get("partial_rotary_factor", c.get("rotary_pct", default_pct)))),
        rope_scaling=None if rope_type == "default" else rope_type,
        rope_scaling_args=None if rope_type == "default" else {k: float(rope[k]) for k in keys if k in rope},
    )


def gpt2_config(c: dict[str, Any]) -> TransformerConfig:
    _refuse(c, scale_attn_by_inverse_layer_idx=False, scale_attn_weights=True, add_cross_attention=False)
    return TransformerConfig(
        d_model=c["n_embd"],
        n_layers=c["n_layer"],
        n_heads=c["n_head"],
        d_mlp=c.get("n_inner") or 4 * c["n_embd"],
        d_vocab=c["vocab_size"],
        n_ctx=c["n_positions"],
        positions="learned",
        norm="layernorm",
        norm_eps=c.get("layer_norm_epsilon", 1e-5),
        act=_activation(c, "activation_function", "gelu_new"),
        tie_embeddings=c.get("tie_word_embeddings", True),
        name=c.get("_name_or_path", ""),
    )


def neox_config(c: dict[str, Any]) -> TransformerConfig:
    bias = c.get("attention_bias", True)
    return TransformerConfig(
        d_model=c["hidden_size"],
        n_layers=c["num_hidden_layers"],
        n_heads=c["num_attention_heads"],
        d_mlp=c["intermediate_size"],
        d_vocab=c["vocab_size"],
        n_ctx=c["max_position_embeddings"],
        **_rotary(c, default_pct=0.25),
        norm="layernorm",
        norm_eps=c.get("layer_norm_eps", 1e-5),
        act=_activation(c, "hidden_act", "gelu"),
        parallel_residual=c.get("use_parallel_residual", True),
        bias_qkv=bias,
        bias_attn_out=bias,
        tie_embeddings=c.get("tie_word_embeddings", False),
        name=c.get("_name_or_path", ""),
    )


def llama_config(c: dict[str, Any]) -> TransformerConfig:
    """Llama, and Mistral and Qwen2, which differ only in a few config flags."""
    _refuse(c, use_sliding_window=False)
    n_heads = c["num_attention_heads"]
    qwen2 = c.get("model_type") == "qwen2"
    attention_bias = c.get("attention_bias", False)
    return TransformerConfig(
        d_model=c["hidden_size"],
        n_layers=c["num_hidden_layers"],
        n_heads=n_heads,
        n_kv_heads=c.get("num_key_value_heads") or n_heads,
        d_head=c.get("head_dim") or c["hidden_size"] // n_heads,
        d_mlp=c["intermediate_size"],
        d_vocab=c["vocab_size"],
        n_ctx=c["max_position_embeddings"],
        **_rotary(c, default_pct=1.0),
        norm="rmsnorm",
        norm_eps=c.get("rms_norm_eps", 1e-6),
        act=_activation(c, "hidden_act", "silu"),
        gated_mlp=True,
        bias_qkv=qwen2 or attention_bias,
        bias_attn_out=attention_bias and not qwen2,
        bias_mlp=c.get("mlp_bias", False),
        tie_embeddings=c.get("tie_word_embeddings", False),
        sliding_window=c.get("sliding_window", 4096) if c.get("model_type") == "mistral" else None,
        default_prepend_bos=c.get("bos_token_id") is not None,
        name=c.get("_name_or_path", ""),
    )


# -- the tables --------------------------------------------------------------------------------
GPT2 = Family(
    name="gpt2",
    architectures=("GPT2LMHeadModel", "GPT2Model"),
    config=gpt2_config,
    prefixes=("transformer.", ""),
    weights={
        "embed.W_E": Same("{p}wte.weight"),
        "pos_embed.W_pos": Same("{p}wpe.weight"),
        "blocks.{l}.ln1.w": Same("{p}h.{l}.ln_1.weight"),
        "blocks.{l}.ln1.b": Same("{p}h.{l}.ln_1.bias"),
        "blocks.{l}.attn.w_qkv": Transposed("{p}h.{l}.attn.c_attn.weight"),
        "blocks.{l}.attn.b_qkv": Same("{p}h.{l}.attn.c_attn.bias"),
        "blocks.{l}.attn.w_o": Transposed("{p}h.{l}.attn.c_proj.weight"),
        "blocks.{l}.attn.b_O": Same("{p}h.{l}.attn.c_proj.bias"),
        "blocks.{l}.ln2.w": Same("{p}h.{l}.ln_2.weight"),
        "blocks.{l}.ln2.b": Same("{p}h.{l}.ln_2.bias"),
        "blocks.{l}.mlp.w_in": Transposed("{p}h.{l}.mlp.c_fc.weight"),
        "blocks.{l}.mlp.b_in": Same("{p}h.{l}.mlp.c_fc.bias"),
        "blocks.{l}.mlp.w_out": Transposed("{p}h.{l}.mlp.c_proj.weight"),
        "blocks.{l}.mlp.b_out": Same("{p}h.{l}.mlp.c_proj.bias"),
        "ln_final.w": Same("{p}ln_f.weight"),
        "ln_final.b": Same("{p}ln_f.bias"),
        "unembed.weight": Same("lm_head.weight"),
    },
)

NEOX = Family(
    name="gpt-neox",
    architectures=("GPTNeoXForCausalLM", "GPTNeoXModel"),
    config=neox_config,
    prefixes=("gpt_neox.", ""),
    weights={
        "embed.W_E": Same("{p}embed_in.weight"),
        "blocks.{l}.ln1.w": Same("{p}layers.{l}.input_layernorm.weight"),
        "blocks.{l}.ln1.b": Same("{p}layers.{l}.input_layernorm.bias"),
        "blocks.{l}.attn.w_qkv": HeadInterleavedQKV("{p}layers.{l}.attention.query_key_value.weight"),
        "blocks.{l}.attn.b_qkv": HeadInterleavedQKV("{p}layers.{l}.attention.query_key_value.bias"),
        "blocks.{l}.attn.w_o": Same("{p}layers.{l}.attention.dense.weight"),
        "blocks.{l}.attn.b_O": Same("{p}layers.{l}.attention.dense.bias"),
        "blocks.{l}.ln2.w": Same("{p}layers.{l}.post_attention_layernorm.weight"),
        "blocks.{l}.ln2.b": Same("{p}layers.{l}.post_attention_layernorm.bias"),
        "blocks.{l}.mlp.w_in": Same("{p}layers.{l}.mlp.dense_h_to_4h.weight"),
        "blocks.{l}.mlp.b_in": Same("{p}layers.{l}.mlp.dense_h_to_4h.bias"),
        "blocks.{l}.mlp.w_out": Same("{p}layers.{l}.mlp.dense_4h_to_h.weight"),
        "blocks.{l}.mlp.b_out": Same("{p}layers.{l}.mlp.dense_4h_to_h.bias"),
        "ln_final.w": Same("{p}final_layer_norm.weight"),
        "ln_final.b": Same("{p}final_layer_norm.bias"),
        "unembed.weight": Same("embed_out.weight|lm_head.weight"),
    },
)

_ATTN = "{p}layers.{l}.self_attn."
LLAMA = Family(
    name="llama",
    config=llama_config,
    prefixes=("model.", ""),
    architectures=("LlamaForCausalLM", "LlamaModel", "MistralForCausalLM", "MistralModel", "Qwen2ForCausalLM", "Qwen2Model"),
    weights={
        "embed.W_E": Same("{p}embed_tokens.weight"),
        "blocks.{l}.ln1.w": Same("{p}layers.{l}.input_layernorm.weight"),
        "blocks.{l}.attn.w_qkv": Stacked((_ATTN + "q_proj.weight", _ATTN + "k_proj.weight", _ATTN + "v_proj.weight"), _qkv_sizes),
        "blocks.{l}.attn.b_qkv": Stacked((_ATTN + "q_proj.bias", _ATTN + "k_proj.bias", _ATTN + "v_proj.bias"), _qkv_sizes),
        "blocks.{l}.attn.w_o": Same(_ATTN + "o_proj.weight"),
        "blocks.{l}.attn.b_O": Same(_ATTN + "o_proj.bias"),
        "blocks.{l}.ln2.w": Same("{p}layers.{l}.post_attention_layernorm.weight"),
        "blocks.{l}.mlp.w_gate_in": Stacked(
            ("{p}layers.{l}.mlp.gate_proj.weight", "{p}layers.{l}.mlp.up_proj.weight"), _gate_up_sizes
        ),
        "blocks.{l}.mlp.b_gate_in": Stacked(
            ("{p}layers.{l}.mlp.gate_proj.bias", "{p}layers.{l}.mlp.up_proj.bias"), _gate_up_sizes
        ),
        "blocks.{l}.mlp.w_out": Same("{p}layers.{l}.mlp.down_proj.weight"),
        "blocks.{l}.mlp.b_out": Same("{p}layers.{l}.mlp.down_proj.bias"),
        "ln_final.w": Same("{p}norm.weight"),
        "unembed.weight": Same("lm_head.weight"),
    },
)

FAMILIES = (GPT2, NEOX, LLAMA)
BY_ARCHITECTURE = {arch: family for family in FAMILIES for arch in family.architectures}
