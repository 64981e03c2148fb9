"""What the Grokking page shows at each snapshot, from the analysis toolkit.

    keys = key_freqs(final_model, p)                      # the final embedding's key frequencies
    view = snapshot_view(model, p, keys, train_x, train_y)

The spectrum is `analysis.fourier.embedding_spectrum`, the key frequencies `key_frequencies` of the
last snapshot's spectrum (fixed for the whole run, as Nanda et al. fix them), the losses,
accuracies and progress measures `analysis.progress_measures.snapshot_measures` from one pass over
all p² pairs.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class SnapshotView:
    measures: dict[str, float]  # restricted/excluded loss, train/test loss and accuracy
    spectrum: np.ndarray  # [p//2 + 1] norm of W_E[:p] at each frequency (0 = constant)
    key_share: float  # fraction of the non-constant embedding energy at the key frequencies
    weight_norm: float  # sqrt of the sum of every weight squared
    circle: np.ndarray  # [p, 2]: each number's embedding projected on the strongest key frequency's cos and sin


def key_freqs(model: Any, p: int) -> list[int]:
    from ...analysis.fourier import embedding_spectrum, key_frequencies

    return key_frequencies(embedding_spectrum(model, p))


@functools.lru_cache(maxsize=8)
def split(p: int, train_fraction: float, split_seed: int) -> tuple[Any, Any]:
    """The training pairs and answers of the run's task (the same split the trainer used)."""
    import torch

    from ...data.tasks import modular_addition

    data = modular_addition(p, train_fraction, split_seed)
    return torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)


def circle(model: Any, p: int, freq: int) -> np.ndarray:
    """Each number x's embedding W_E[x] as 2-d coordinates on the plane its cos(2πfx/p) and
    sin(2πfx/p) components span (orthonormalised): a grokked model draws a circle, x in the order kx mod p."""
    from ...analysis.fourier import _number_embedding, fourier_basis

    embedding = _number_embedding(model, p)  # [p, d] float64
    basis, _ = fourier_basis(p)
    directions = basis[[2 * freq - 1, 2 * freq]] @ embedding  # [2, d]: the embedding's cos and sin parts
    q, _ = np.linalg.qr(directions.T.numpy())  # [d, 2] orthonormal
    return (embedding.numpy() @ q).astype(np.float32)


def snapshot_view(model: Any, p: int, keys: list[int], train_x: Any, train_y: Any) -> SnapshotView:
    from ...analysis.fourier import embedding_spectrum
    from ...analysis.progress_measures import snapshot_measures

    spectrum = embedding_spectrum(model, p)
    energy = spectrum.pow(2)
    share = float(energy[keys].sum() / energy[1:].sum()) if keys else 0.0
    norm = math.sqrt(sum(float(w.detach().double().pow(2).sum()) for w in model.parameters()))
    return SnapshotView(
        measures=snapshot_measures(model, p, keys, train_x, train_y),
        spectrum=spectrum.float().numpy(),
        key_share=share,
        weight_norm=norm,
        circle=circle(model, p, keys[0]),
    )
