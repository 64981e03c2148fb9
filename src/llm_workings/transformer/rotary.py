"""Rotary position embeddings (Su et al., 2021), in the "rotate half" layout of GPT-NeoX and Llama.

Each pair of dimensions (i, i + rotary_dim/2) of a query or key is rotated by the angle
position * inv_freq[i]. Only the first `rotary_dim` dimensions of a head rotate (Pythia rotates
a quarter of them). Llama 3's frequency rescaling follows Meta's published formula.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import TransformerConfig


def inverse_frequencies(cfg: TransformerConfig) -> torch.Tensor:
    dim = cfg.rotary_dim
    inv_freq = 1.0 / (cfg.rotary_base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    args = cfg.rope_scaling_args or {}
    if cfg.rope_scaling == "linear":
        inv_freq = inv_freq / args["factor"]
    elif cfg.rope_scaling == "llama3":
        # Long wavelengths are slowed by `factor`, short ones kept, and the band between blended.
        factor, low, high = args["factor"], args["low_freq_factor"], args["high_freq_factor"]
        old_context = args["original_max_position_embeddings"]
        wavelength = 2 * math.pi / inv_freq
        scaled = torch.where(wavelength > old_context / low, inv_freq / factor, inv_freq)
        smooth = (old_context / wavelength - low) / (high - low)
        blended = (1 - smooth) * scaled / factor + smooth * scaled
        medium = (wavelength >= old_context / high) & (wavelength <= old_context / low)
        inv_freq = torch.where(medium, blended, scaled)
    return inv_freq


class Rotary(nn.Module):
    """Rotates queries and keys by position. Holds no weights; its cos/sin table is built on first use."""

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.dim = cfg.rotary_dim
        self._table: tuple[torch.Tensor, torch.Tensor] | None = None  # cos, sin for positions 0..n-1

    def _cos_sin(self, n: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        table = self._table
        if table is None or table[0].shape[0] < n or table[0].dtype != dtype or table[0].device != device:
            length = max(n, 2 * table[0].shape[0] if table is not None else 256)
            positions = torch.arange(length, device=device, dtype=torch.float32)
            angles = torch.outer(positions, inverse_frequencies(self.cfg).to(device))  # float32, as Hugging Face computes them
            angles = torch.cat([angles, angles], dim=-1)  # [pos, rotary_dim]
            table = self._table = (angles.cos().to(dtype), angles.sin().to(dtype))
        return table

    def forward(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """x: [batch, pos, head, d_head], for positions start, start + 1, ..."""
        n = x.shape[1]
        cos, sin = self._cos_sin(start + n, x.dtype, x.device)
        cos, sin = cos[start : start + n, None, :], sin[start : start + n, None, :]  # [pos, 1, rotary_dim]
        rot, keep = x[..., : self.dim], x[..., self.dim :]
        first, second = rot.chunk(2, dim=-1)
        rotated = rot * cos + torch.cat([-second, first], dim=-1) * sin
        return torch.cat([rotated, keep], dim=-1) if keep.shape[-1] else rotated
