"""What fine-tuning changed in the weights, module by module: ΔW's size, its spectrum and rank, and
whether the fine-tuned weight grew new directions of its own (intruder dimensions).

    changes = weight_changes(base, tuned)          # tuned may carry LoRA adapters, merged or not
    changes.modules[0].relative_norm, .rank, .effective_rank, .intruders
    changes.plot("changes.png")

For each linear map W (the stored [d_out, d_in] rows of q, k, v, o, the MLP's in/gate and out):
- relative_norm = ||ΔW||_F / ||W_0||_F;
- the singular values of ΔW; its `rank`, those above a noise floor (float32 rounding of W_0 + ΔW,
  so the floor scales with ||W_0||, not ||ΔW||), and its `effective_rank`, exp of the entropy of the
  normalised singular values (Roy & Vetterli 2007), which counts how spread the change is;
- top_cosines[i] = |cos(u_i, u0_i)|, the i-th left singular vectors (output directions) of W_0 + ΔW
  and of W_0;
- intruders: the i < k whose u_i has |cos| < threshold with *every* left singular vector of W_0
  (Shuttleworth et al. 2024, "LoRA vs Full Fine-tuning: An Illusion of Equivalence"; they examine
  the top singular vectors of the fine-tuned matrix; here k = 10 and threshold = 0.5 by default).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ..analysis.results import Result
from ..transformer.model import Transformer
from .lora import LoRAError, rows_of, targets_of

TOP_K, THRESHOLD = 10, 0.5


def analysed_maps(model: Transformer) -> list[str]:
    """Each block's separate linear maps (fused weights split into their projections)."""
    available = targets_of(model)
    fused = {"attn.qkv", "mlp.gate_in"}
    return [f"blocks.{layer}.{t}" for layer in range(model.cfg.n_layers) for t in available if t not in fused]


@torch.no_grad()
def effective_weight(model: Transformer, key: str) -> torch.Tensor:
    """The [d_out, d_in] weight a map computes with: the stored rows plus every enabled, unmerged adapter's ΔW."""
    _, layer, target = key.split(".", 2)
    spec = targets_of(model)[target]
    component = getattr(model.blocks[int(layer)], spec.component)
    full = getattr(component, spec.weight).detach().clone()
    for update in component.updates.get(spec.weight, ()):
        if getattr(update, "enabled", False) and not update.merged:
            full[slice(*update.rows)] += update.delta_weight().to(full.dtype)
    return full[slice(*rows_of(component, spec))]


@dataclass
class ModuleChange:
    name: str  # e.g. "blocks.0.attn.q"
    relative_norm: float
    singular_values: list[float]  # of ΔW, largest first
    rank: int
    effective_rank: float
    top_cosines: list[float]  # |cos| between the i-th left singular vectors of W_0 + ΔW and of W_0
    intruders: list[int]  # indices i < k of W_0 + ΔW's singular vectors unlike all of W_0's


@dataclass
class WeightChanges(Result):
    result_type = "weight_changes"
    modules: list[ModuleChange] = field(default_factory=list)
    top_k: int = TOP_K
    threshold: float = THRESHOLD

    def draw(self, fig) -> None:
        spectra, bars = fig.subplots(1, 2)
        for m in self.modules:
            s = torch.tensor(m.singular_values)
            if len(s) and s[0] > 0:
                spectra.semilogy(range(1, len(s) + 1), (s / s[0]).clamp_min(1e-8), alpha=0.6, lw=1)
        spectra.set(xlabel="index i", ylabel="σ_i(ΔW) / σ_1(ΔW)", title="spectrum of ΔW, per module")
        names = [m.name.removeprefix("blocks.") for m in self.modules]
        bars.barh(names, [len(m.intruders) for m in self.modules], color="tab:red")
        bars.set(xlabel=f"intruders among the top {self.top_k} (|cos| < {self.threshold})", title="intruder dimensions")
        bars.tick_params(axis="y", labelsize=6)
        bars.invert_yaxis()


def _noise_floor(base: torch.Tensor, s0_max: float, dtype: torch.dtype) -> float:
    return max(base.shape) * torch.finfo(dtype).eps * s0_max


def change_of(
    name: str, base: torch.Tensor, tuned: torch.Tensor, top_k: int = TOP_K, threshold: float = THRESHOLD
) -> ModuleChange:
    """The weight-change figures of one map from its base and fine-tuned [d_out, d_in] weights."""
    w0, w1 = base.double(), tuned.double()
    delta = w1 - w0
    s = torch.linalg.svdvals(delta)
    u0, s0, _ = torch.linalg.svd(w0, full_matrices=False)
    u1, _, _ = torch.linalg.svd(w1, full_matrices=False)
    floor = _noise_floor(base, s0[0].item(), base.dtype)
    kept = s[s > floor]
    p = kept / kept.sum() if len(kept) else kept
    k = min(top_k, u1.shape[1])
    cosines = (u1[:, :k].T @ u0).abs()  # [k, every base direction]
    return ModuleChange(
        name=name,
        relative_norm=(delta.norm() / w0.norm()).item(),
        singular_values=s.tolist(),
        rank=len(kept),
        effective_rank=math.exp(-(p * p.log()).sum().item()) if len(kept) else 0.0,
        top_cosines=cosines.diagonal()[:k].tolist(),
        intruders=[i for i in range(k) if cosines[i].max().item() < threshold],
    )


def weight_changes(base: Transformer, tuned: Transformer, top_k: int = TOP_K, threshold: float = THRESHOLD) -> WeightChanges:
    """Per map: how much, in how many directions, and in which new directions `tuned` differs from `base`."""
    if base.cfg.to_dict() | {"name": ""} != tuned.cfg.to_dict() | {"name": ""}:
        diff = [k for k, v in base.cfg.to_dict().items() if k != "name" and tuned.cfg.to_dict()[k] != v]
        raise LoRAError(f"the models differ in {', '.join(diff)}; a weight change needs two models of one shape")
    if not 1 <= top_k or not 0 < threshold < 1:
        raise LoRAError(f"top_k must be positive and threshold in (0, 1); got {top_k}, {threshold}")
    modules = [
        change_of(key, effective_weight(base, key), effective_weight(tuned, key), top_k, threshold) for key in analysed_maps(base)
    ]
    return WeightChanges(modules, top_k, threshold)
