"""Task arithmetic (Ilharco et al. 2023, "Editing Models with Task Arithmetic"): a fine-tuning run as a
vector τ = θ_ft − θ_base, and models edited by adding and negating such vectors.

    tau = TaskVector.between(base, tuned)          # tuned may carry LoRA adapters: they are merged in
    edited = (0.5 * tau_a + 0.5 * tau_b).apply_to(base)    # a new model; base is not modified
    forgetful = (-1.0 * tau_a).apply_to(base)

Only floating-point tensors are task vectors' entries (integer buffers are skipped); a tied
unembedding is the embedding under a second name, so it is counted, and moved, once.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from ..transformer.model import Transformer
from ..transformer.saving import tied_names
from .lora import LoRAError, adapters


def merged_copy(model: Transformer) -> Transformer:
    """A copy of `model` with every adapter folded into its weights and removed (the model is left alone)."""
    copied = copy.deepcopy(model)
    for adapter in adapters(copied).values():
        adapter.remove(merge=True)
    return copied


def _weights(model: Transformer) -> dict[str, torch.Tensor]:
    if adapters(model):
        model = merged_copy(model)
    tied = tied_names(model)
    return {k: t.detach() for k, t in model.state_dict().items() if k not in tied and t.is_floating_point()}


@dataclass(frozen=True)
class TaskVector:
    deltas: dict[str, torch.Tensor]  # parameter name -> θ_ft − θ_base

    @classmethod
    def between(cls, base: Transformer, tuned: Transformer) -> TaskVector:
        if base.cfg.to_dict() | {"name": ""} != tuned.cfg.to_dict() | {"name": ""}:
            raise LoRAError("the two models have different configs; a task vector needs a fine-tuned copy of the base")
        before, after = _weights(base), _weights(tuned)
        return cls({k: after[k] - before[k] for k in before})

    def __add__(self, other: TaskVector) -> TaskVector:
        if set(self.deltas) != set(other.deltas):
            raise LoRAError("these task vectors come from models with different parameters")
        return TaskVector({k: v + other.deltas[k] for k, v in self.deltas.items()})

    def __rmul__(self, scale: float) -> TaskVector:
        return TaskVector({k: scale * v for k, v in self.deltas.items()})

    def __neg__(self) -> TaskVector:
        return -1.0 * self

    def norm(self) -> float:
        return torch.sqrt(sum((v.double() ** 2).sum() for v in self.deltas.values())).item()

    @torch.no_grad()
    def apply_to(self, base: Transformer, scale: float = 1.0) -> Transformer:
        """θ_base + scale τ, as a new model (`base` is not modified)."""
        if adapters(base):
            raise LoRAError("the base carries LoRA adapters; apply a task vector to a plain model (see merged_copy)")
        edited = copy.deepcopy(base)
        own = edited.state_dict()
        missing = sorted(set(self.deltas) - set(own))
        if missing:
            raise LoRAError(f"this task vector has entries the model lacks: {', '.join(missing[:3])}")
        for k, v in self.deltas.items():
            if own[k].shape != v.shape:
                raise LoRAError(f"{k}: the task vector has shape {list(v.shape)}, the model {list(own[k].shape)}")
        for k, v in self.deltas.items():
            own[k].add_(scale * v.to(own[k].dtype))
        return edited


def sweep(
    base: Transformer, vector: TaskVector, scales: Iterable[float], metrics: dict[str, Callable[[Transformer], float]]
) -> list[dict[str, float]]:
    """Each metric of θ_base + λ τ for each λ in `scales` (negative λ negates the task)."""
    rows = []
    for scale in scales:
        model = vector.apply_to(base, scale).eval()
        rows.append({"scale": float(scale), **{name: float(fn(model)) for name, fn in metrics.items()}})
    return rows
