"""The Attention heads page's wire format: engine results turned into JSON, arrays as compact tensors.

- The grid's patterns are causal, so only their lower triangle travels: [layer * head, pos (pos + 1) / 2]
  bytes (uint8, quantised over the grid's range), row by row (query 0's key 0, query 1's keys 0..1, ...).
  A grid past the byte budget keeps an evenly spaced subset of heads (`ByteBudget`) and says so; every
  head's scores are always sent.
- Scores, one head's pattern and the rotary curve are float32: the page prints the engine's numbers.
- The circuits are float16 (a [d_vocab, d_vocab] map for a heatmap); the position similarity uint8.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..wire import ByteBudget, encode_tensor
from .compute import SCORE_KINDS, Grid, HeadDetail, induction_heads
from .settings import GRID_BYTE_BUDGET


class Tensor(BaseModel):
    dtype: str
    shape: list[int]
    data: str = Field(description="base64 of the little-endian values")
    min: float | None = None
    max: float | None = None


def tensor(values: Any, dtype: str = "float32") -> Tensor:
    return Tensor(**encode_tensor(values, dtype))


class PromptShown(BaseModel):
    ids: list[int]
    str_tokens: list[str]
    bos: bool = Field(description="ids[0] is a BOS the model adds to text")


class GridOut(BaseModel):
    model: str
    n_layers: int
    n_heads: int
    prompt: PromptShown
    heads: list[int] = Field(description="the flat indices (layer * n_heads + head) whose patterns were sent, in order")
    patterns: Tensor = Field(description="[len(heads), pos (pos + 1) / 2] uint8: each head's lower triangle, row by row")
    scores: dict[str, Tensor] = Field(description="kind -> [layer, head] float32 (NaN where the prompt cannot show the kind)")
    by_distance: Tensor = Field(description="[layer, head, pos] float32: mean attention on the key d tokens back")
    induction_heads: list[list[int]] = Field(description="[layer, head] pairs scored as induction heads, best first")
    induction_threshold: float
    thinned: list[str] = Field(description="what was left out to keep within the byte budget")


def lower_triangle(patterns: Any) -> Any:
    """[layer, head, n, n] -> [layer * head, n (n + 1) / 2]: each pattern's entries with key <= query, row by row."""
    import torch

    n = patterns.shape[-1]
    rows, cols = torch.tril_indices(n, n)
    return patterns.reshape(-1, n * n).index_select(1, rows * n + cols)  # one gather: ~30x faster than [:, rows, cols]


def grid(model_id: str, prompt: Any, result: Grid, threshold: float, budget: int = GRID_BYTE_BUDGET) -> GridOut:
    n_layers, n_heads = result.patterns.shape[:2]
    spend = ByteBudget(budget)
    packed = spend.take("head patterns", lower_triangle(result.patterns).numpy(), "uint8", axis=0)
    note = packed.pop("thinned")
    heads = note["kept"] if note else list(range(n_layers * n_heads))
    return GridOut(
        model=model_id,
        n_layers=n_layers,
        n_heads=n_heads,
        prompt=PromptShown(ids=prompt.ids, str_tokens=prompt.str_tokens, bos=prompt.bos),
        heads=heads,
        patterns=Tensor(**packed),
        scores={kind: tensor(result.scores[kind].numpy()) for kind in SCORE_KINDS},
        by_distance=tensor(result.by_distance.numpy()),
        induction_heads=[list(pair) for pair in induction_heads(result.scores, threshold)],
        induction_threshold=threshold,
        thinned=[f"{line}; every head's scores are shown, and any head opens in depth" for line in spend.thinned],
    )


class CircuitsOut(BaseModel):
    full_qk: Tensor = Field(description="[d_vocab, d_vocab] float16: query token (row) x key token (column)")
    full_ov: Tensor = Field(description="[d_vocab, d_vocab] float16: attended token (row) x logit moved (column)")
    copying_score: float
    copying_scores: Tensor = Field(description="[layer, head] float32, every head's, for comparison")


class HeadOut(BaseModel):
    model: str
    layer: int
    head: int
    prompt: PromptShown
    pattern: Tensor = Field(description="[query, key] float32")
    query: int
    key: int
    rotary_scores: Tensor | None = Field(description="[distance] float32 for rotary models: q.k * scale at each distance")
    actual_score: float | None = Field(description="the score the model computed for (query, key)")
    circuits: CircuitsOut | None = Field(description="for vocabularies small enough to draw")
    circuits_note: str | None = Field(description="why the circuits are not drawn, when they are not")


def head(model_id: str, layer: int, head: int, prompt: Any, detail: HeadDetail, circuits: CircuitsOut | None, note: str | None):
    return HeadOut(
        model=model_id,
        layer=layer,
        head=head,
        prompt=PromptShown(ids=prompt.ids, str_tokens=prompt.str_tokens, bos=prompt.bos),
        pattern=tensor(detail.pattern.numpy()),
        query=detail.query,
        key=detail.key,
        rotary_scores=None if detail.rotary_scores is None else tensor(detail.rotary_scores.numpy()),
        actual_score=detail.actual_score,
        circuits=circuits,
        circuits_note=note,
    )


def circuits(full_qk: Any, full_ov: Any, copying: Any, layer: int, head: int) -> CircuitsOut:
    return CircuitsOut(
        full_qk=tensor(full_qk.numpy(), "float16"),
        full_ov=tensor(full_ov.numpy(), "float16"),
        copying_score=float(copying[layer, head]),
        copying_scores=tensor(copying.numpy()),
    )


class PositionsOut(BaseModel):
    model: str
    positions: str = Field(description="learned, rotary or none")
    n_ctx: int
    similarity: Tensor | None = Field(description="[n, n] uint8: cosine similarity of learned position embeddings")
    similarity_note: str | None
    rotary_dim: int | None
    rotary_base: float | None
