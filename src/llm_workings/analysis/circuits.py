"""Circuits read from the weights alone (Elhage et al. 2021, "A Mathematical Framework for
Transformer Circuits"): each head's QK and OV matrices, kept as low-rank factored products.

    qk, ov = QK(model), OV(model)            # FactoredMatrix [layer, head, d_model, d_model]
    ov[1, 2].S                               # singular values of head L1H2's OV circuit (rank <= d_head)
    copying_scores(model)                    # [layer, head]: near +1 for heads that copy tokens
    k_comp = composition_scores(model, "K")  # [layer, head, layer, head], earlier head -> later head
    k_comp.top(3); k_comp.plot("k_comp.png")

A head's d_model x d_model matrices have rank at most d_head, so they are stored as A @ B with
A [..., d_model, d_head] and B [..., d_head, d_model]; SVD, norms and eigenvalues come from the
small factors and never build the big product. Row-vector convention, as in TransformerLens: a
residual vector x is read as x @ OV, and a query x attends to a key y with score x @ QK @ y^T.
These are the weights only: layer norms, biases and (for rotary models) the position-dependent
rotation of queries and keys are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from .conventions import AnalysisError
from .results import Result, heatmap

if TYPE_CHECKING:
    from ..transformer import Transformer

Index = int | slice | None | torch.Tensor | tuple


class FactoredMatrix:
    """The matrix A @ B, kept as its factors: A [..., ldim, mdim], B [..., mdim, rdim]; the leading
    (batch) dims broadcast, e.g. [layer, head, d_model, d_head] @ [layer, head, d_head, d_model]."""

    def __init__(self, A: torch.Tensor, B: torch.Tensor) -> None:
        if A.ndim < 2 or B.ndim < 2 or A.shape[-1] != B.shape[-2]:
            raise AnalysisError(
                f"factors must be [..., ldim, mdim] and [..., mdim, rdim]; got {list(A.shape)} and {list(B.shape)}"
            )
        try:
            leading = torch.broadcast_shapes(A.shape[:-2], B.shape[:-2])
        except RuntimeError:
            raise AnalysisError(f"leading dims of {list(A.shape)} and {list(B.shape)} do not broadcast") from None
        self.A = A.broadcast_to(*leading, *A.shape[-2:])
        self.B = B.broadcast_to(*leading, *B.shape[-2:])
        self.ldim, self.mdim, self.rdim = A.shape[-2], A.shape[-1], B.shape[-1]
        self.shape = torch.Size((*leading, self.ldim, self.rdim))
        self._svd: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def AB(self) -> torch.Tensor:
        """The product itself, [..., ldim, rdim] (may be large)."""
        return self.A @ self.B

    @property
    def BA(self) -> torch.Tensor:
        """The reverse product [..., mdim, mdim], defined when the matrix is square."""
        if self.ldim != self.rdim:
            raise AnalysisError(f"BA needs a square matrix; this one is {list(self.shape)}")
        return self.B @ self.A

    @property
    def T(self) -> FactoredMatrix:
        return FactoredMatrix(self.B.transpose(-2, -1), self.A.transpose(-2, -1))

    def __matmul__(self, other: torch.Tensor | FactoredMatrix) -> FactoredMatrix | torch.Tensor:
        """self @ other: a FactoredMatrix, or a tensor [..., ldim] when other is a vector [rdim]."""
        if isinstance(other, FactoredMatrix):
            return (self @ other.A) @ other.B
        if other.shape[-2 if other.ndim > 1 else -1] != self.rdim:
            raise AnalysisError(f"cannot multiply {list(self.shape)} by {list(other.shape)}: inner dims differ")
        if other.ndim == 1:  # a column vector, kept as a matrix so the leading dims broadcast
            return (self.A @ (self.B @ other[:, None]))[..., 0]
        # keep the narrower inner dimension, so the factors stay as small as they can be
        if self.mdim <= self.rdim:
            return FactoredMatrix(self.A, self.B @ other)
        return FactoredMatrix(self.AB, other)

    def __rmatmul__(self, other: torch.Tensor) -> FactoredMatrix | torch.Tensor:
        """other @ self, for a tensor [..., n, ldim] or a vector [ldim]."""
        if other.shape[-1] != self.ldim:
            raise AnalysisError(f"cannot multiply {list(other.shape)} by {list(self.shape)}: inner dims differ")
        if other.ndim == 1:
            return ((other[None] @ self.A) @ self.B)[..., 0, :]
        if self.mdim <= self.ldim:
            return FactoredMatrix(other @ self.A, self.B)
        return FactoredMatrix(other, self.AB)

    def __mul__(self, scalar: float) -> FactoredMatrix:
        return FactoredMatrix(self.A * scalar, self.B)

    __rmul__ = __mul__

    def __getitem__(self, index: Index) -> FactoredMatrix:
        """Index the leading dims, e.g. qk[layer, head] -> [d_model, d_model]. One or two more indices
        select rows, then columns, keeping both matrix dims (an int i acts as i:i+1)."""
        index = index if isinstance(index, tuple) else (index,)
        n_leading = self.ndim - 2
        if any(i is Ellipsis for i in index) or len(index) > self.ndim:
            raise AnalysisError(
                f"index {index} does not fit a FactoredMatrix of shape {list(self.shape)} "
                "(index leading dims, then at most rows and columns; no ...)"
            )
        as_slice = [slice(i, i + 1 or None) if isinstance(i, int) else i for i in index[n_leading:]]
        leading = index[:n_leading]
        rows = (*leading, *([as_slice[0]] if as_slice else []))
        cols = (*leading, slice(None), as_slice[1]) if len(as_slice) == 2 else leading
        return FactoredMatrix(self.A[rows], self.B[cols])

    def unsqueeze(self, dim: int) -> FactoredMatrix:
        """A new leading dim of size 1 at `dim` (counted among the leading dims)."""
        return FactoredMatrix(self.A.unsqueeze(dim), self.B.unsqueeze(dim))

    # -- spectra --------------------------------------------------------------------------------------
    def svd(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compact SVD (U [..., ldim, k], S [..., k], V [..., rdim, k]) with A @ B = U diag(S) V^T.

        QR-factor both sides, A = Qa Ra and B^T = Qb Rb, so that AB = Qa (Ra Rb^T) Qb^T and only the
        small middle matrix needs an SVD; k = min(ldim, mdim, rdim)."""
        if self._svd is None:
            Qa, Ra = torch.linalg.qr(self.A)
            Qb, Rb = torch.linalg.qr(self.B.transpose(-2, -1))
            Um, S, Vmh = torch.linalg.svd(Ra @ Rb.transpose(-2, -1), full_matrices=False)
            self._svd = (Qa @ Um, S, Qb @ Vmh.transpose(-2, -1))
        return self._svd

    @property
    def U(self) -> torch.Tensor:
        return self.svd()[0]

    @property
    def S(self) -> torch.Tensor:
        return self.svd()[1]

    @property
    def V(self) -> torch.Tensor:
        return self.svd()[2]

    def norm(self) -> torch.Tensor:
        """Frobenius norm per leading index: the root of the sum of squared singular values."""
        return self.S.pow(2).sum(-1).sqrt()

    @property
    def eigenvalues(self) -> torch.Tensor:
        """Eigenvalues of AB [..., mdim] (complex), from the small BA: if BAv = kv then AB(Av) = k(Av),
        so they share their nonzero eigenvalues; AB's remaining ones are zero."""
        BA = self.BA
        return torch.linalg.eigvals(BA.float() if BA.dtype in (torch.float16, torch.bfloat16) else BA)

    def __repr__(self) -> str:
        return f"FactoredMatrix(shape={list(self.shape)}, inner dim={self.mdim})"


# -- a model's circuits ---------------------------------------------------------------------------
def _per_query_head(model: Transformer, name: str) -> torch.Tensor:
    """W_K / W_V stacked [layer, head, d_model, d_head], with grouped-query kv heads repeated so that
    query head h reads kv head h // group_size, as attention itself does."""
    weight = model.stack(name).detach()
    return weight.repeat_interleave(model.cfg.group_size, dim=1)


def QK(model: Transformer) -> FactoredMatrix:
    """W_Q @ W_K^T per head, [layer, head, d_model, d_model]: query x attends key y by x QK y^T
    (scaled by 1/sqrt(d_head)). For rotary models this leaves out the position-dependent rotation
    between W_Q and W_K, as TransformerLens's model.QK does."""
    return FactoredMatrix(model.stack("W_Q").detach(), _per_query_head(model, "W_K").transpose(-2, -1))


def OV(model: Transformer) -> FactoredMatrix:
    """W_V @ W_O per head, [layer, head, d_model, d_model]: what a head writes, x @ OV, for each unit of
    attention on a key whose residual stream is x."""
    return FactoredMatrix(_per_query_head(model, "W_V"), model.stack("W_O").detach())


def full_OV(model: Transformer) -> FactoredMatrix:
    """W_E @ W_V @ W_O @ W_U, [layer, head, d_vocab, d_vocab]: how attending to token i (as embedded)
    moves the logit of token j, directly; norms and positions left out."""
    return FactoredMatrix(model.W_E.detach() @ _per_query_head(model, "W_V"), model.stack("W_O").detach() @ model.W_U.detach())


def full_QK(model: Transformer) -> FactoredMatrix:
    """W_E @ W_Q @ W_K^T @ W_E^T, [layer, head, d_vocab, d_vocab]: query token i's preference for key
    token j from token embeddings alone."""
    W_E = model.W_E.detach()
    return FactoredMatrix(W_E @ model.stack("W_Q").detach(), _per_query_head(model, "W_K").transpose(-2, -1) @ W_E.T)


def copying_scores(model: Transformer) -> torch.Tensor:
    """[layer, head]: sum(eigenvalues) / sum(|eigenvalues|) of the full OV circuit, real part.
    Near +1: attending to a token raises that token's own logit (a copying head); near -1: lowers it."""
    # W_E OV W_U has the nonzero eigenvalues of OV (W_U W_E) (cyclic), so no [d_vocab, d_head] factor is built
    eigenvalues = (OV(model) @ (model.W_U.detach() @ model.W_E.detach())).eigenvalues
    return (eigenvalues.sum(-1) / eigenvalues.abs().sum(-1)).real


# -- composition ----------------------------------------------------------------------------------
COMPOSITIONS = ("Q", "K", "V")


def composition_score(W_A: FactoredMatrix, W_B: FactoredMatrix) -> torch.Tensor:
    """||W_A W_B||_F / (||W_A||_F ||W_B||_F): how much of what W_A writes W_B reads; leading dims broadcast."""
    return (W_A @ W_B).norm() / (W_A.norm() * W_B.norm())


def _reader(model: Transformer, composition: str) -> FactoredMatrix:
    if composition not in COMPOSITIONS:
        raise AnalysisError(f"composition must be one of {', '.join(COMPOSITIONS)}; got {composition!r}")
    return {"Q": QK, "K": lambda m: QK(m).T, "V": OV}[composition](model)


@dataclass
class CompositionScores(Result):
    """Composition scores [layer, head, layer, head]: entry [l1, h1, l2, h2] is how strongly head
    (l1, h1)'s output feeds the Q, K or V input of the later head (l2, h2); 0 unless l1 < l2."""

    scores: torch.Tensor
    composition: str
    baseline: float  # mean score of random matrices of the same shapes
    baseline_std: float
    head_labels: list[str] = field(default_factory=list)
    result_type = "composition_scores"

    def __post_init__(self) -> None:
        n_layers, n_heads = self.scores.shape[:2]
        self.head_labels = self.head_labels or [f"L{l}H{h}" for l in range(n_layers) for h in range(n_heads)]

    def top(self, n: int = 3) -> list[tuple[tuple[int, int], tuple[int, int], float]]:
        """The n largest entries as ((layer, head) earlier, (layer, head) later, score), best first."""
        flat = self.scores.flatten()
        out = []
        for i in flat.argsort(descending=True)[:n].tolist():
            l1, h1, l2, h2 = torch.unravel_index(torch.tensor(i), self.scores.shape)
            out.append(((int(l1), int(h1)), (int(l2), int(h2)), float(flat[i])))
        return out

    def draw(self, fig: Any) -> None:
        n = len(self.head_labels)
        ax = fig.add_subplot()
        heatmap(
            ax,
            self.scores.reshape(n, n),
            self.head_labels,
            self.head_labels,
            centered=False,
            title=f"{self.composition}-composition (random baseline {self.baseline:.3f} ± {self.baseline_std:.3f})",
            xlabel=f"later head (its {self.composition} input)",
            ylabel="earlier head (its output)",
            colorbar_label="composition score",
        )


def composition_scores(model: Transformer, composition: str, baseline_samples: int = 200, seed: int = 0) -> CompositionScores:
    """All pairs' Q-, K- or V-composition scores, as TransformerLens's model.all_composition_scores:
    W_A is the earlier head's OV; W_B the later head's QK (Q), QK^T (K: the output enters as the key)
    or OV (V). Pairs where the later head is not in a later layer cannot compose and are set to 0."""
    if model.cfg.n_layers < 2:
        raise AnalysisError("composition needs heads in at least two layers; this model has one")
    reader = _reader(model, composition)
    writer = OV(model)
    # [l1, h1, 1, 1] x [1, 1, l2, h2] -> all pairs
    scores = composition_score(writer.unsqueeze(2).unsqueeze(3), reader.unsqueeze(0).unsqueeze(0))
    layers = torch.arange(model.cfg.n_layers, device=scores.device)
    causal = (layers[:, None] < layers[None, :])[:, None, :, None]
    mean, std = composition_baseline(model, baseline_samples, seed)
    return CompositionScores(torch.where(causal, scores, torch.zeros_like(scores)), composition, mean, std)


def composition_baseline(
    model_or_shape: Transformer | tuple[int, int], n_samples: int = 200, seed: int = 0
) -> tuple[float, float]:
    """(mean, std) of the composition score between random rank-d_head matrices of this model's
    shapes, each factor i.i.d. Gaussian: the level a score must clear to stand out. One baseline
    serves Q, K and V: the transpose of a Gaussian factor pair is distributed the same way.
    `model_or_shape` is a model or a (d_model, d_head) pair."""
    d_model, d_head = (
        model_or_shape if isinstance(model_or_shape, tuple) else (model_or_shape.cfg.d_model, model_or_shape.cfg.d_head)
    )
    if n_samples < 2:
        raise AnalysisError(f"a baseline needs n_samples >= 2; got {n_samples}")
    gen = torch.Generator().manual_seed(seed)

    def random_matrices(n: int) -> FactoredMatrix:
        return FactoredMatrix(torch.randn(n, d_model, d_head, generator=gen), torch.randn(n, d_head, d_model, generator=gen))

    chunk = 16  # bounds memory on wide models
    scores = torch.cat(
        [
            composition_score(random_matrices(min(chunk, n_samples - i)), random_matrices(min(chunk, n_samples - i)))
            for i in range(0, n_samples, chunk)
        ]
    )
    return float(scores.mean()), float(scores.std())
