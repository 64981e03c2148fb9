"""What an SAE is and how it is trained, as two dataclasses with every setting documented where it is declared.

    cfg = SAEConfig("topk", d_in=128, d_sae=1024, k=16, hook_name="blocks.2.hook_resid_pre")
    train = SAETrainConfig(steps=2000, batch_size=4096, lr=4e-4)

Both are validated on creation, so a d_sae of 0 or a k larger than d_sae is refused before any file
is written.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ..analysis.conventions import AnalysisError

ARCHITECTURES = ("standard", "topk", "batchtopk", "jumprelu")


class SAEError(AnalysisError):
    """Bad SAE input (settings, files, hooks); the message names the problem and what was expected."""


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise SAEError(f"{name} must be a positive integer, got {value!r}")


@dataclass
class SAEConfig:
    architecture: str  # "standard" (ReLU + L1), "topk", "batchtopk" or "jumprelu"
    d_in: int  # width of the activation it reads (for hook_z: n_heads * d_head)
    d_sae: int  # number of latents
    k: int | None = None  # active latents per token (topk), or on average over a batch (batchtopk)
    hook_name: str = ""  # where it reads, e.g. "blocks.2.hook_resid_pre"
    hook_head_index: int | None = None  # for a per-head hook (hook_z): one head only; None reads all heads
    model_name: str = ""  # the model it was trained on (a zoo name or a path)
    context_size: int | None = None  # tokens per sequence it was trained on
    prepend_bos: bool = False  # whether its training sequences started with BOS
    dataset_path: str = ""  # what the training tokens were (a corpus or task name)

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise SAEError(f"unknown SAE architecture {self.architecture!r}; expected one of {', '.join(ARCHITECTURES)}")
        _positive_int("d_in", self.d_in)
        _positive_int("d_sae", self.d_sae)
        if self.architecture in ("topk", "batchtopk"):
            if self.k is None:
                raise SAEError(f"a {self.architecture} SAE needs k, the number of active latents per token")
            _positive_int("k", self.k)
            if self.k > self.d_sae:
                raise SAEError(
                    f"k={self.k} is larger than d_sae={self.d_sae}; a token cannot have more active latents than exist"
                )
        elif self.k is not None:
            raise SAEError(f"k is a setting of topk and batchtopk SAEs, not of {self.architecture}")

    @property
    def reads_heads(self) -> bool:
        """Whether the hook has a head axis (hook_z and the q/k/v hooks) that is flattened into d_in."""
        return self.hook_name.rsplit(".", 1)[-1] in ("hook_z", "hook_q", "hook_k", "hook_v")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAEConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})


@dataclass
class SAETrainConfig:
    steps: int = 2000  # optimizer updates
    batch_size: int = 4096  # activations (tokens) per update, summed over every rank
    lr: float = 4e-4  # Adam's learning rate
    lr_warmup_steps: int = 0  # linear warm-up from 0
    lr_decay_steps: int = 0  # linear decay to 0 over the last lr_decay_steps updates
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0  # max global gradient norm, as SAELens clips
    l1_coefficient: float = 5.0  # standard: weight of sum_i f_i * |W_dec[i]|
    l1_warmup_steps: int = 0  # standard: the L1 (or JumpReLU L0) coefficient rises linearly from 0 over these updates
    l0_coefficient: float = 1.0  # jumprelu: weight of the number of active latents (straight-through estimate)
    jumprelu_bandwidth: float = 0.05  # jumprelu: width of the rectangle kernel of the straight-through estimator
    jumprelu_init_threshold: float = 0.01  # jumprelu: every latent's starting threshold
    batchtopk_threshold_lr: float = 0.01  # batchtopk: EMA rate of the inference threshold (smallest kept activation)
    aux_k_coefficient: float = 1 / 32  # topk, batchtopk: weight of the auxiliary loss that revives dead latents
    dead_after_tokens: int = 100_000  # a latent that has not fired on this many training tokens in a row is dead
    resample_every: int = (
        0  # standard: resample dead latents (Anthropic's recipe, from that step's batch) every N updates; 0 never
    )
    normalize: str = "expected_norm"  # "none", or scale inputs so E|x| = sqrt(d_in); folded into the weights on save
    b_dec_init: str = "geometric_median"  # "geometric_median" or "zero"
    decoder_norm: str = "auto"  # "unit" (rows kept at norm 1), "free", or "auto": unit for topk/batchtopk, free otherwise
    decoder_init_norm: float = 0.1  # starting norm of each decoder row when decoder_norm is free (Anthropic's init)
    init_batches: int = 4  # batches read to estimate the normalisation and the geometric median
    buffer_tokens: int = 65_536  # activations held (per rank) in the shuffling buffer: the memory bound
    harvest_batch: int = 32  # sequences per forward pass of the model while refilling the buffer
    checkpoint_every: int = 500
    seed: int = 0

    def __post_init__(self) -> None:
        for name in (
            "steps",
            "batch_size",
            "checkpoint_every",
            "buffer_tokens",
            "harvest_batch",
            "init_batches",
            "dead_after_tokens",
        ):
            _positive_int(name, getattr(self, name))
        for name in ("lr_warmup_steps", "lr_decay_steps", "l1_warmup_steps", "resample_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise SAEError(f"{name} must be an integer >= 0, got {value!r}")
        if not self.lr > 0:
            raise SAEError(f"lr must be positive, got {self.lr}")
        if self.normalize not in ("none", "expected_norm"):
            raise SAEError(f"normalize must be 'none' or 'expected_norm', got {self.normalize!r}")
        if self.b_dec_init not in ("geometric_median", "zero"):
            raise SAEError(f"b_dec_init must be 'geometric_median' or 'zero', got {self.b_dec_init!r}")
        if self.decoder_norm not in ("auto", "unit", "free"):
            raise SAEError(f"decoder_norm must be 'auto', 'unit' or 'free', got {self.decoder_norm!r}")
        if self.buffer_tokens < self.batch_size:
            raise SAEError(f"buffer_tokens ({self.buffer_tokens}) must hold at least one batch (batch_size={self.batch_size})")

    def unit_decoder(self, architecture: str) -> bool:
        if self.decoder_norm == "auto":
            return architecture in ("topk", "batchtopk")
        return self.decoder_norm == "unit"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SAETrainConfig:
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})
