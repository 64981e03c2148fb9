"""The Tokens page's wire format: engine results turned into JSON, arrays as compact tensors.

Probabilities travel as float32 (the engine's own numbers, so the page prints exactly what the
engine computed), the top ids as uint16 (int32 for vocabularies past 65,536), both through
`lab/wire.py`. A response over the byte budget is thinned by sending fewer alternatives per
position, and says so in `thinned`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..wire import encode_tensor, encoded_size
from .compute import Predictions, Reshaped

BYTE_BUDGET = 400_000  # per predictions response; the strip itself (ids, strings, losses) is never cut
VOCAB_ENTRY_BYTES = 16  # a rough size of one '"id": "text"' entry of the vocabulary map


class Tensor(BaseModel):
    dtype: str
    shape: list[int]
    data: str = Field(description="base64 of the little-endian values")


def tensor(values: Any, dtype: str = "float32") -> Tensor:
    return Tensor(**encode_tensor(values, dtype))


def id_dtype(d_vocab: int) -> str:
    return "uint16" if d_vocab <= 65536 else "int32"


class PredictionsOut(BaseModel):
    model: str
    n_ctx: int
    bos: bool = Field(description="whether ids[0] is a BOS the model reads first, not part of the text")
    ids: list[int]
    strings: list[str] = Field(description="each token's own text, for the strip")
    k: int = Field(description="alternatives per position actually sent (fewer than asked when thinned)")
    top_ids: Tensor = Field(description="[pos, k] uint16 or int32: the likeliest next tokens after each position")
    top_probs: Tensor = Field(description="[pos, k] float32")
    next_prob: Tensor = Field(description="[pos - 1] float32: the probability given to the token that came next")
    next_loss: Tensor = Field(description="[pos - 1] float32, nats")
    surprise_bits: Tensor = Field(description="[pos - 1] float32, bits")
    context: list[int] | None = Field(description="tokens each prediction was made from, when a window cut it short")
    vocab: dict[str, str] = Field(description="id -> text for every id in top_ids")
    thinned: str | None = Field(description="what was left out to keep within the byte budget, if anything")


def alternatives_within_budget(positions: int, k: int, ids: str = "uint16", budget: int = BYTE_BUDGET) -> int:
    """The most alternatives per position (at least 1, at most k) whose probabilities, ids and vocabulary
    entries fit in `budget`."""
    per_alternative = encoded_size([positions], "float32") + encoded_size([positions], ids) + positions * VOCAB_ENTRY_BYTES
    return max(1, min(k, budget // per_alternative))


def predictions(
    model_id: str, n_ctx: int, d_vocab: int, bos: bool, pred: Predictions, token_text: Any, asked_k: int
) -> PredictionsOut:
    positions, k = pred.top_ids.shape
    ids = id_dtype(d_vocab)
    fit = alternatives_within_budget(positions, k, ids, BYTE_BUDGET)
    thinned = None
    if fit < k:
        thinned = f"showing the top {fit} of the {asked_k} alternatives asked for, to keep this {positions}-token response small"
        k = fit
    top_ids = pred.top_ids[:, :k]
    unique = top_ids.unique().tolist()
    return PredictionsOut(
        model=model_id,
        n_ctx=n_ctx,
        bos=bos,
        ids=pred.ids,
        strings=token_text(pred.ids),
        k=k,
        top_ids=tensor(top_ids.numpy(), ids),
        top_probs=tensor(pred.top_probs[:, :k].numpy()),
        next_prob=tensor(pred.next_prob.numpy()),
        next_loss=tensor(pred.next_loss.numpy()),
        surprise_bits=tensor(pred.surprise_bits.numpy()),
        context=pred.context if pred.windowed else None,
        vocab=dict(zip(map(str, unique), token_text(unique), strict=True)),
        thinned=thinned,
    )


class Alternative(BaseModel):
    id: int
    text: str
    before: float = Field(description="probability at temperature 1 with nothing cut")
    after: float = Field(description="probability under the sampling settings")


class ReshapedOut(BaseModel):
    position: int
    alternatives: list[Alternative] = Field(description="the likeliest tokens at temperature 1, likeliest first")
    kept: int = Field(description="tokens of the vocabulary that can still be drawn")
    d_vocab: int
    entropy_before: float = Field(description="bits")
    entropy_after: float = Field(description="bits")


def reshaped(position: int, result: Reshaped, token_text: Any, d_vocab: int) -> ReshapedOut:
    ids = result.ids.tolist()
    return ReshapedOut(
        position=position,
        alternatives=[
            Alternative(id=i, text=t, before=b, after=a)
            for i, t, b, a in zip(ids, token_text(ids), result.before.tolist(), result.after.tolist(), strict=True)
        ],
        kept=result.kept,
        d_vocab=d_vocab,
        entropy_before=result.entropy_before,
        entropy_after=result.entropy_after,
    )


class SampleOut(BaseModel):
    ids: list[int] = Field(description="the new tokens only")
    strings: list[str]
    text: str = Field(description="the new tokens decoded together")
    stopped_at_eos: bool
