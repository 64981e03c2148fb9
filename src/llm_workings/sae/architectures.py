"""Four sparse autoencoders over one base: encode x into sparse latents f, decode f back into x.

    f = activation((x - b_dec) @ W_enc + b_enc)      # W_enc [d_in, d_sae]
    x_hat = f @ W_dec + b_dec                         # W_dec [d_sae, d_in]

The architectures differ only in the activation and in the loss that makes f sparse:
- `StandardSAE`: ReLU, with an L1 penalty on f_i * |W_dec[i]| (SAELens v6, Anthropic's April 2024 update);
- `TopKSAE`: keep each token's k largest pre-activations (Gao et al. 2024), no penalty;
- `BatchTopKSAE`: keep the k * batch largest over the whole batch (Bussmann et al. 2024); at inference a
  single threshold, learnt as an EMA of the smallest kept activation, replaces the batch;
- `JumpReLUSAE`: f = z if z > theta_i (Rajamanoharan et al. 2024), with an L0 penalty trained through a
  straight-through estimator of the step's gradient.

Training calls `training_terms(x, ...)`; everything else (`encode`, `decode`, `forward`) is inference.
The names and shapes are SAELens's, so its files load as they are (see files.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .config import SAEConfig, SAEError


@dataclass
class TrainingTerms:
    """One batch's reconstruction, its named losses (summed to train) and how often each latent fired."""

    recon: torch.Tensor  # [batch, d_in]
    losses: dict[str, torch.Tensor]
    fire_counts: torch.Tensor  # [d_sae]: tokens of this batch on which each latent was active
    l0: torch.Tensor  # mean active latents per token (a scalar, no gradient)


class SparseAutoencoder(nn.Module):
    architecture: ClassVar[str] = ""
    saved_as: ClassVar[str] = ""  # the architecture SAELens loads the file as

    def __init__(self, cfg: SAEConfig) -> None:
        super().__init__()
        if cfg.architecture != self.architecture:
            raise SAEError(f"{type(self).__name__} is a {self.architecture} SAE; the config says {cfg.architecture}")
        self.cfg = cfg
        self.W_enc = nn.Parameter(torch.zeros(cfg.d_in, cfg.d_sae))
        self.b_enc = nn.Parameter(torch.zeros(cfg.d_sae))
        self.W_dec = nn.Parameter(torch.zeros(cfg.d_sae, cfg.d_in))
        self.b_dec = nn.Parameter(torch.zeros(cfg.d_in))

    @torch.no_grad()
    def init_weights(self, seed: int = 0, decoder_norm: float = 0.1) -> SparseAutoencoder:
        """Decoder rows in random directions at `decoder_norm`, the encoder its transpose, biases zero."""
        gen = torch.Generator().manual_seed(seed)
        W = torch.randn(self.cfg.d_sae, self.cfg.d_in, generator=gen)
        self.W_dec.copy_(W / W.norm(dim=1, keepdim=True) * decoder_norm)
        self.W_enc.copy_(self.W_dec.T)
        self.b_enc.zero_()
        self.b_dec.zero_()
        return self

    # -- inference --------------------------------------------------------------------------------
    def flatten(self, x: torch.Tensor) -> torch.Tensor:
        """Per-head activations [..., n_heads, d_head] as [..., d_in]; anything else must already be [..., d_in]."""
        if self.cfg.reads_heads and x.ndim >= 2 and x.shape[-1] != self.cfg.d_in and x.shape[-2] * x.shape[-1] == self.cfg.d_in:
            x = x.flatten(-2)
        if x.shape[-1] != self.cfg.d_in:
            raise SAEError(f"this SAE reads activations of width d_in={self.cfg.d_in}; got shape {list(x.shape)}")
        return x

    def pre_activations(self, x: torch.Tensor) -> torch.Tensor:
        return (self.flatten(x) - self.b_dec) @ self.W_enc + self.b_enc

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Latent activations [..., d_sae]."""
        return self.activate(self.pre_activations(x))

    def decode(self, acts: torch.Tensor) -> torch.Tensor:
        return acts @ self.W_dec + self.b_dec

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    # -- training ---------------------------------------------------------------------------------
    def training_pre(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-activations with b_dec moved onto the bias side, (x W_enc) + (b_enc - b_dec W_enc): the same
        numbers, but autograd then needs no matmul for the gradient through the input, since x needs none."""
        return x @ self.W_enc + (self.b_enc - self.b_dec @ self.W_enc)

    def training_terms(self, x: torch.Tensor, coefficient: float, dead: torch.Tensor) -> TrainingTerms:
        """The losses of one batch x [batch, d_in]. `coefficient` is the sparsity penalty's weight this step
        (after warm-up), `dead` the latents [d_sae] that have not fired for a while."""
        raise NotImplementedError

    # -- files and transforms ---------------------------------------------------------------------
    def saved_tensors(self) -> dict[str, torch.Tensor]:
        return {"W_enc": self.W_enc, "b_enc": self.b_enc, "W_dec": self.W_dec, "b_dec": self.b_dec}

    def load_saved(self, tensors: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            for name, own in self.saved_tensors().items():
                own.copy_(tensors[name])

    @torch.no_grad()
    def fold_input_scale(self, scale: float) -> None:
        """Make an SAE trained on x * scale read x itself: the pre-activations stay the same, and the output
        comes back in x's units."""
        self.W_enc.mul_(scale)
        self.W_dec.div_(scale)
        self.b_dec.div_(scale)

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        """Give every decoder row norm 1, moving the norm into the encoder (f_i grows by |W_dec[i]|), so that
        activations compare across latents; the reconstruction does not change."""
        norms = self.W_dec.norm(dim=1).clamp(min=1e-8)
        self.W_dec.div_(norms[:, None])
        self.W_enc.mul_(norms)
        self.b_enc.mul_(norms)

    def extra_repr(self) -> str:
        k = f", k={self.cfg.k}" if self.cfg.k is not None else ""
        return f"{self.architecture}: d_in={self.cfg.d_in}, d_sae={self.cfg.d_sae}{k}, hook={self.cfg.hook_name or '?'}"


def _fire_counts(acts: torch.Tensor) -> torch.Tensor:
    return (acts > 0).sum(0).to(torch.float32)


class StandardSAE(SparseAutoencoder):
    architecture = saved_as = "standard"

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return F.relu(pre)

    def training_terms(self, x: torch.Tensor, coefficient: float, dead: torch.Tensor) -> TrainingTerms:
        acts = F.relu(self.training_pre(x))
        recon = acts @ self.W_dec + self.b_dec
        l1 = coefficient * (acts * self.W_dec.norm(dim=1)).sum(-1).mean()
        fired = _fire_counts(acts.detach())
        return TrainingTerms(recon, {"l1": l1}, fired, fired.sum() / x.shape[0])


class TopKSAE(SparseAutoencoder):
    architecture = saved_as = "topk"

    def __init__(self, cfg: SAEConfig, aux_k_coefficient: float = 1 / 32) -> None:
        super().__init__(cfg)
        self.aux_k_coefficient = aux_k_coefficient

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        values, indices = pre.topk(self.cfg.k, dim=-1)
        return torch.zeros_like(pre).scatter(-1, indices, F.relu(values))

    def sparse_decode(self, indices: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """sum_j values[:, j] * W_dec[indices[:, j]] without the dense [batch, d_sae] matrix: k rows a token."""
        return F.embedding_bag(indices, self.W_dec, per_sample_weights=values, mode="sum")

    def aux_k_loss(self, pre: torch.Tensor, residual: torch.Tensor, dead: torch.Tensor) -> torch.Tensor:
        """Let the dead latents' top k_aux pre-activations reconstruct what the live ones missed (Gao et al.,
        appendix A.2; k_aux = d_in / 2, scaled down while few are dead, as SAELens and sparsify do)."""
        n_dead = int(dead.sum())
        if n_dead == 0 or self.aux_k_coefficient == 0:
            return pre.new_zeros(())
        k_aux = min(self.cfg.d_in // 2, n_dead)
        values, indices = pre.masked_fill(~dead, -torch.inf).topk(k_aux, dim=-1)
        recon = self.sparse_decode(indices, F.relu(values))
        scale = min(n_dead / (self.cfg.d_in // 2), 1.0)
        return self.aux_k_coefficient * scale * (recon - residual.detach()).pow(2).sum(-1).mean()

    def training_terms(self, x: torch.Tensor, coefficient: float, dead: torch.Tensor) -> TrainingTerms:
        pre = self.training_pre(x)
        values, indices = pre.topk(self.cfg.k, dim=-1, sorted=False)
        values = F.relu(values)
        recon = self.sparse_decode(indices, values) + self.b_dec
        active = indices[values.detach() > 0]
        fired = torch.bincount(active, minlength=self.cfg.d_sae).to(torch.float32)
        losses = {"aux_k": self.aux_k_loss(pre, x - recon, dead)}
        return TrainingTerms(recon, losses, fired, fired.sum() / x.shape[0])


class BatchTopKSAE(TopKSAE):
    architecture = "batchtopk"
    saved_as = "jumprelu"  # its inference rule is a JumpReLU with one threshold for every latent

    def __init__(self, cfg: SAEConfig, aux_k_coefficient: float = 1 / 32, threshold_lr: float = 0.01) -> None:
        super().__init__(cfg, aux_k_coefficient)
        self.threshold_lr = threshold_lr
        self.register_buffer("threshold", torch.zeros((), dtype=torch.float64))

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return F.relu(pre) * (pre > self.threshold.to(pre.dtype))

    def training_terms(self, x: torch.Tensor, coefficient: float, dead: torch.Tensor) -> TrainingTerms:
        pre = self.training_pre(x)
        acts = F.relu(pre)
        values, flat = acts.flatten().topk(self.cfg.k * x.shape[0])
        rows, cols = flat // self.cfg.d_sae, flat % self.cfg.d_sae
        recon = torch.zeros_like(x).index_add(0, rows, values[:, None] * self.W_dec[cols]) + self.b_dec
        kept = values.detach() > 0
        fired = torch.bincount(cols[kept], minlength=self.cfg.d_sae).to(torch.float32)
        self.smallest_kept = values.detach()[kept].min() if kept.any() else None
        losses = {"aux_k": self.aux_k_loss(pre, x - recon, dead)}
        return TrainingTerms(recon, losses, fired, fired.sum() / x.shape[0])

    @torch.no_grad()
    def update_threshold(self, smallest_kept: torch.Tensor) -> None:
        """EMA of the smallest activation the batch kept: the threshold that keeps about k a token at inference."""
        self.threshold.mul_(1 - self.threshold_lr).add_(self.threshold_lr * smallest_kept.to(torch.float64))

    def saved_tensors(self) -> dict[str, torch.Tensor]:
        return {**super().saved_tensors(), "threshold": self.threshold.to(self.W_enc.dtype).expand(self.cfg.d_sae)}


def _rectangle(u: torch.Tensor) -> torch.Tensor:
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    """z * [z > theta]; the threshold's gradient is the straight-through estimate with a rectangle kernel."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, theta: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return z * (z > theta)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        z, theta = ctx.saved_tensors
        ste = theta / ctx.bandwidth * _rectangle((z - theta) / ctx.bandwidth) * grad
        return (z > theta) * grad, -ste.sum(0), None


class _Step(torch.autograd.Function):
    """[z > theta] (the L0 count); gradient to theta only, by the same estimator."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, theta: torch.Tensor, bandwidth: float) -> torch.Tensor:
        ctx.save_for_backward(z, theta)
        ctx.bandwidth = bandwidth
        return (z > theta).to(z.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[None, torch.Tensor, None]:
        z, theta = ctx.saved_tensors
        return None, -(_rectangle((z - theta) / ctx.bandwidth) * grad / ctx.bandwidth).sum(0), None


class JumpReLUSAE(SparseAutoencoder):
    architecture = saved_as = "jumprelu"

    def __init__(self, cfg: SAEConfig, bandwidth: float = 0.05, init_threshold: float = 0.01) -> None:
        super().__init__(cfg)
        self.bandwidth = bandwidth
        self.threshold = nn.Parameter(torch.full((cfg.d_sae,), init_threshold))

    def activate(self, pre: torch.Tensor) -> torch.Tensor:
        return F.relu(pre) * (pre > self.threshold)

    def training_terms(self, x: torch.Tensor, coefficient: float, dead: torch.Tensor) -> TrainingTerms:
        pre = self.training_pre(x)
        acts = _JumpReLU.apply(pre, self.threshold, self.bandwidth)
        recon = acts @ self.W_dec + self.b_dec
        l0 = coefficient * _Step.apply(pre, self.threshold, self.bandwidth).sum(-1).mean()
        fired = _fire_counts(acts.detach())
        return TrainingTerms(recon, {"l0": l0}, fired, fired.sum() / x.shape[0])

    def saved_tensors(self) -> dict[str, torch.Tensor]:
        return {**super().saved_tensors(), "threshold": self.threshold}

    @torch.no_grad()
    def fold_decoder_norm(self) -> None:
        norms = self.W_dec.norm(dim=1).clamp(min=1e-8)
        super().fold_decoder_norm()
        self.threshold.mul_(norms)


CLASSES: dict[str, type[SparseAutoencoder]] = {cls.architecture: cls for cls in (StandardSAE, TopKSAE, BatchTopKSAE, JumpReLUSAE)}


def build_sae(cfg: SAEConfig, **settings: Any) -> SparseAutoencoder:
    """The SAE class for `cfg.architecture`, with its training settings (e.g. `aux_k_coefficient`)."""
    return CLASSES[cfg.architecture](cfg, **settings)
