"""The Residual stream page's wire format. Every number the page prints travels as float32 (the
engine's own value), token ids as int32, through `lab/wire.py`; the vocabulary map holds only the
ids the response names."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..wire import encode_tensor
from .compute import Decomposition, Lens, WriteNorms


class Tensor(BaseModel):
    dtype: str
    shape: list[int]
    data: str = Field(description="base64 of the little-endian values")


def tensor(values: Any, dtype: str = "float32") -> Tensor:
    return Tensor(**encode_tensor(values, dtype))


class Token(BaseModel):
    id: int
    text: str


class LensOut(BaseModel):
    labels: list[str] = Field(description="the streams, rows of the table: '0_pre' (the embedding) ... 'final_post'")
    target: list[int] = Field(description="[pos] the token whose probability colours each column, -1 where none")
    target_text: str = Field(description="the chosen target token, or '' for the next token at each position")
    top_ids: Tensor = Field(description="[layer, pos] int32: each cell's top prediction")
    top_probs: Tensor = Field(description="[layer, pos] float32: its probability")
    target_prob: Tensor = Field(description="[layer, pos] float32, NaN where no target")
    target_rank: Tensor = Field(description="[layer, pos] int32, 0 = the top prediction, -1 where no target")
    cell: list[Token] = Field(description="the selected cell's top k, likeliest first")
    cell_probs: list[float]


class Bar(BaseModel):
    label: str
    value: float


class DecomposeOut(BaseModel):
    answer: Token
    wrong: Token
    position: int = Field(description="where the logit difference is read, counted from 0")
    bars: list[Bar] = Field(description="each component's direct contribution; they add up to `sum`")
    sum: float = Field(description="the contributions added up")
    actual: float = Field(description="logit[answer] - logit[wrong] from the model's own logits")


class NormsOut(BaseModel):
    labels: list[str]
    norms: Tensor = Field(description="[component, pos] float32: the L2 norm of each component's write")


class ResidualOut(BaseModel):
    model: str
    ids: list[int]
    str_tokens: list[str]
    layer: int = Field(description="the selected stream, counted from 0")
    position: int = Field(description="the selected position, counted from 0")
    lens: LensOut
    decompose: DecomposeOut
    norms: NormsOut
    vocab: dict[str, str] = Field(description="id -> text for every id the lens table shows")


def residual(
    model_id: str,
    ids: list[int],
    str_tokens: list[str],
    layer: int,
    position: int,
    lens: Lens,
    target_text: str,
    parts: Decomposition,
    answer: Token,
    wrong: Token,
    norms: WriteNorms,
    token_text: Any,
) -> ResidualOut:
    shown = sorted(set(lens.top_ids.flatten().tolist()) | set(lens.cell_ids))
    vocab = dict(zip(map(str, shown), token_text(shown), strict=True))
    return ResidualOut(
        model=model_id,
        ids=ids,
        str_tokens=str_tokens,
        layer=layer,
        position=position,
        lens=LensOut(
            labels=lens.labels,
            target=lens.target,
            target_text=target_text,
            top_ids=tensor(lens.top_ids.numpy(), "int32"),
            top_probs=tensor(lens.top_probs.numpy()),
            target_prob=tensor(lens.target_prob.numpy()),
            target_rank=tensor(lens.target_rank.numpy(), "int32"),
            cell=[Token(id=i, text=vocab[str(i)]) for i in lens.cell_ids],
            cell_probs=lens.cell_probs,
        ),
        decompose=DecomposeOut(
            answer=answer,
            wrong=wrong,
            position=position,
            bars=[Bar(label=label, value=value) for label, value in zip(parts.labels, parts.values, strict=True)],
            sum=sum(parts.values),
            actual=parts.total,
        ),
        norms=NormsOut(labels=norms.labels, norms=tensor(norms.norms.numpy())),
        vocab=vocab,
    )
