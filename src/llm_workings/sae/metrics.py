"""How good an SAE is: sparsity, reconstruction, and what splicing it into the model costs.

    ev = evaluate_sae(sae, model, tokens)       # tokens [n, pos]
    ev.l0, ev.explained_variance, ev.ce_loss_score, ev.dead_fraction

Every metric follows SAELens 6.x (sae_lens/evals.py) unless said otherwise; docs/sae.md gives each formula.
Token-level means are over every position of every sequence given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..analysis.results import Result
from ..transformer.model import Transformer
from .activations import check_sae_fits, hook_reader
from .architectures import SparseAutoencoder

DENSE_FRACTION = 0.1  # a latent firing on more than this fraction of tokens counts as dense (SAEBench's freq_over_10%)
DENSITY_EPS = 1e-10  # log10(density + eps), as SAELens logs feature sparsity


class ReconstructionStats:
    """Streaming sums for the reconstruction metrics, so any number of batches can be pooled exactly."""

    def __init__(self, d_sae: int) -> None:
        self.n = 0
        self.sum_x: torch.Tensor | None = None
        self.sum_sq_x = self.sum_sq_resid = self.sum_cos = self.sum_sq_xhat = self.sum_x_dot_xhat = self.sum_l0 = 0.0
        self.fires = torch.zeros(d_sae, dtype=torch.float64)

    @torch.no_grad()
    def add(self, x: torch.Tensor, x_hat: torch.Tensor, acts: torch.Tensor) -> None:
        """x, x_hat [tokens, d_in]; acts [tokens, d_sae]."""
        x, x_hat = x.double(), x_hat.double()
        self.n += len(x)
        s = x.sum(0).cpu()
        self.sum_x = s if self.sum_x is None else self.sum_x + s
        self.sum_sq_x += x.pow(2).sum().item()
        self.sum_sq_resid += (x - x_hat).pow(2).sum().item()
        self.sum_cos += F.cosine_similarity(x, x_hat, dim=-1, eps=1e-12).sum().item()
        self.sum_sq_xhat += x_hat.pow(2).sum().item()
        self.sum_x_dot_xhat += (x * x_hat).sum().item()
        active = acts != 0
        self.sum_l0 += active.sum().item()
        self.fires += active.sum(0).double().cpu()

    def metrics(self) -> dict[str, Any]:
        n = max(self.n, 1)
        mse = self.sum_sq_resid / n
        total_variance = self.sum_sq_x / n - (self.sum_x / n).pow(2).sum().item() if self.sum_x is not None else 0.0
        density = self.fires / n
        return {
            "tokens": self.n,
            "l0": self.sum_l0 / n,
            "mse": mse,
            "explained_variance": 1 - mse / total_variance if total_variance > 1e-12 else float(mse < 1e-12),
            "cosine_similarity": self.sum_cos / n,
            "relative_reconstruction_bias": self.sum_sq_xhat / self.sum_x_dot_xhat if self.sum_x_dot_xhat else math.nan,
            "dead_fraction": (density == 0).double().mean().item(),
            "dense_fraction": (density > DENSE_FRACTION).double().mean().item(),
            "log10_density": torch.log10(density + DENSITY_EPS).float(),
        }


def recovered_score(with_ablation: float, with_sae: float, clean: float) -> float:
    """(ablated - spliced) / (ablated - clean): 1 when splicing the SAE in costs nothing, 0 when it is as bad
    as zeroing the activation. Used for the CE loss score (clean = the model's own loss) and the KL score
    (clean = 0, the KL of the model from itself)."""
    gap = with_ablation - clean
    return (with_ablation - with_sae) / gap if gap else math.nan


def density_histogram(log10_density: torch.Tensor, bins: int = 20, low: float = -10.0) -> dict[str, list[float]]:
    """Counts of latents per log10(density) bin from `low` to 0; dead latents sit in the first bin."""
    values = log10_density.double().clamp(min=low, max=0.0)
    counts = torch.histc(values, bins=bins, min=low, max=0.0)
    return {"edges": torch.linspace(low, 0.0, bins + 1).tolist(), "counts": counts.tolist()}


@dataclass
class SAEEvaluation(Result):
    result_type = "sae_evaluation"
    tokens: int
    l0: float
    mse: float
    explained_variance: float
    cosine_similarity: float
    relative_reconstruction_bias: float
    ce_loss_clean: float
    ce_loss_with_sae: float
    ce_loss_with_ablation: float
    ce_loss_score: float
    kl_with_sae: float
    kl_with_ablation: float
    kl_score: float
    dead_fraction: float
    dense_fraction: float
    log10_density: torch.Tensor = field(repr=False)
    density_histogram: dict[str, list[float]] = field(repr=False)

    def scalars(self) -> dict[str, float]:
        return {k: v for k, v in self.to_dict().items() if isinstance(v, (int, float)) and k != "result_type"}

    def draw(self, fig: Any) -> None:
        ax = fig.add_subplot()
        h = self.density_histogram
        ax.bar(h["edges"][:-1], h["counts"], width=h["edges"][1] - h["edges"][0], align="edge")
        ax.set_xlabel("log10 firing rate")
        ax.set_ylabel("latents")
        ax.set_title(f"L0 {self.l0:.1f}, explained variance {self.explained_variance:.3f}, CE score {self.ce_loss_score:.3f}")


def splice(sae: SparseAutoencoder, x: torch.Tensor, head_index: int | None = None) -> torch.Tensor:
    """The activation at the SAE's hook replaced by the SAE's reconstruction (per-head hooks reshaped back)."""
    if x.ndim == 4 and head_index is not None:
        out = x.clone()
        out[:, :, head_index] = sae(x[:, :, head_index].float()).to(x.dtype)
        return out
    flat = x.flatten(-2) if x.ndim == 4 else x
    return sae(flat.float()).to(x.dtype).reshape(x.shape)


def _zero(x: torch.Tensor, head_index: int | None) -> torch.Tensor:
    if x.ndim == 4 and head_index is not None:
        out = x.clone()
        out[:, :, head_index] = 0
        return out
    return torch.zeros_like(x)


def _kl(clean_logits: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """KL(clean || other) per position, summed over the vocabulary."""
    return F.kl_div(
        F.log_softmax(logits.float(), -1), F.log_softmax(clean_logits.float(), -1), log_target=True, reduction="none"
    ).sum(-1)


@torch.no_grad()
def evaluate_sae(sae: SparseAutoencoder, model: Transformer, tokens: torch.Tensor, batch_size: int = 32) -> SAEEvaluation:
    """Every metric of `sae` at its hook on `tokens` [n, pos]: reconstruction from the activations, and the
    CE and KL scores from three forward passes per batch (clean, SAE spliced in, hook zeroed)."""
    check_sae_fits(sae, model)
    hook, head = sae.cfg.hook_name, sae.cfg.hook_head_index
    read = hook_reader(model, hook, head)
    stats = ReconstructionStats(sae.cfg.d_sae)
    sums = {"ce_clean": 0.0, "ce_sae": 0.0, "ce_zero": 0.0, "kl_sae": 0.0, "kl_zero": 0.0}
    n_loss = n_pos = 0
    sae = sae.eval()
    for start in range(0, len(tokens), batch_size):
        batch = tokens[start : start + batch_size].long().to(model.W_E.device)
        x = read(batch).reshape(-1, sae.cfg.d_in)
        acts = sae.encode(x)
        stats.add(x, sae.decode(acts), acts)
        clean_logits, clean_loss = model(batch, return_type="both", loss_per_token=True)
        with model.hooks([(hook, lambda a, h: splice(sae, a, head))]):
            sae_logits, sae_loss = model(batch, return_type="both", loss_per_token=True)
        with model.hooks([(hook, lambda a, h: _zero(a, head))]):
            zero_logits, zero_loss = model(batch, return_type="both", loss_per_token=True)
        for key, value in (("ce_clean", clean_loss), ("ce_sae", sae_loss), ("ce_zero", zero_loss)):
            sums[key] += value.sum().item()
        sums["kl_sae"] += _kl(clean_logits, sae_logits).sum().item()
        sums["kl_zero"] += _kl(clean_logits, zero_logits).sum().item()
        n_loss += clean_loss.numel()
        n_pos += batch.numel()
    recon = stats.metrics()
    ce = {k: sums[k] / n_loss for k in ("ce_clean", "ce_sae", "ce_zero")}
    kl = {k: sums[k] / n_pos for k in ("kl_sae", "kl_zero")}
    return SAEEvaluation(
        tokens=recon["tokens"],
        l0=recon["l0"],
        mse=recon["mse"],
        explained_variance=recon["explained_variance"],
        cosine_similarity=recon["cosine_similarity"],
        relative_reconstruction_bias=recon["relative_reconstruction_bias"],
        ce_loss_clean=ce["ce_clean"],
        ce_loss_with_sae=ce["ce_sae"],
        ce_loss_with_ablation=ce["ce_zero"],
        ce_loss_score=recovered_score(ce["ce_zero"], ce["ce_sae"], ce["ce_clean"]),
        kl_with_sae=kl["kl_sae"],
        kl_with_ablation=kl["kl_zero"],
        kl_score=recovered_score(kl["kl_zero"], kl["kl_sae"], 0.0),
        dead_fraction=recon["dead_fraction"],
        dense_fraction=recon["dense_fraction"],
        log10_density=recon["log10_density"],
        density_histogram=density_histogram(recon["log10_density"]),
    )
