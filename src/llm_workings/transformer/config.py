"""The one config that describes every decoder-only model this package runs.

Names follow the field's conventions (d_model, d_head, n_heads, d_mlp, d_vocab, n_ctx), so a
config reads like the shape comments in the model code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

POSITIONS = ("learned", "rotary", "none")
NORMS = ("layernorm", "rmsnorm")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu")
ROPE_SCALINGS = (None, "llama3", "linear")


class ConfigError(ValueError):
    """A config field has a value the model cannot be built from."""


@dataclass
class TransformerConfig:
    d_model: int
    n_layers: int
    n_heads: int
    d_vocab: int
    n_ctx: int
    d_head: int | None = None  # default d_model // n_heads
    d_mlp: int | None = None  # default 4 * d_model; ignored when attn_only
    n_kv_heads: int | None = None  # grouped-query attention; default n_heads (plain multi-head)
    positions: str = "learned"
    rotary_pct: float = 1.0  # share of each head's dimensions that rotate (Pythia rotates 25%)
    rotary_base: float = 10000.0
    rope_scaling: str | None = None
    rope_scaling_args: dict[str, float] | None = None  # e.g. factor, low_freq_factor, ... for "llama3"
    norm: str = "layernorm"
    norm_eps: float = 1e-5
    norm_affine: bool = True  # False once fold_layer_norm has moved the norms' gain and bias into the next layer
    act: str = "gelu_tanh"
    gated_mlp: bool = False  # SwiGLU-style: act(x W_gate) * (x W_in)
    parallel_residual: bool = False  # GPT-NeoX: attention and MLP both read resid_pre
    attn_only: bool = False  # no MLPs at all, as in the interpretability models of Elhage et al. (2021)
    bias_qkv: bool = True
    bias_attn_out: bool = True
    bias_mlp: bool = True
    bias_unembed: bool = False
    tie_embeddings: bool = False
    sliding_window: int | None = None  # each query sees at most this many keys (Mistral)
    default_prepend_bos: bool = True
    name: str = ""

    def __post_init__(self) -> None:
        if self.d_head is None:
            if self.d_model % self.n_heads:
                raise ConfigError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; give d_head explicitly")
            self.d_head = self.d_model // self.n_heads
        if self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        for field, value in (
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("d_vocab", self.d_vocab),
            ("n_ctx", self.n_ctx),
            ("d_head", self.d_head),
            ("n_kv_heads", self.n_kv_heads),
        ):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{field} must be a positive integer, got {value!r}")
        if self.n_heads % self.n_kv_heads:
            raise ConfigError(f"n_heads={self.n_heads} must be a multiple of n_kv_heads={self.n_kv_heads}")
        for field, value, allowed in (
            ("positions", self.positions, POSITIONS),
            ("norm", self.norm, NORMS),
            ("act", self.act, ACTIVATIONS),
            ("rope_scaling", self.rope_scaling, ROPE_SCALINGS),
        ):
            if value not in allowed:
                raise ConfigError(f"{field}={value!r} is not supported; expected one of {', '.join(map(repr, allowed))}")
        if not 0.0 < self.rotary_pct <= 1.0:
            raise ConfigError(f"rotary_pct must be in (0, 1], got {self.rotary_pct}")
        if self.positions == "rotary" and self.rotary_dim % 2:
            raise ConfigError(
                f"rotary_pct={self.rotary_pct} of d_head={self.d_head} gives an odd rotary dimension {self.rotary_dim}"
            )
        if self.sliding_window is not None and self.sliding_window < 1:
            raise ConfigError(f"sliding_window must be a positive integer or None, got {self.sliding_window}")

    @property
    def rotary_dim(self) -> int:
        return int(self.d_head * self.rotary_pct)

    @property
    def group_size(self) -> int:
        """How many query heads share one key/value head."""
        return self.n_heads // self.n_kv_heads

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TransformerConfig:
        return from_known_fields(cls, data, ConfigError, "config field")


def from_known_fields(cls: type, data: dict[str, Any], error: type[Exception], what: str) -> Any:
    """`cls(**data)` for a config dataclass, refusing names it does not have with `error`, listing them."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise error(f"unknown {what}(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}")
    return cls(**data)
