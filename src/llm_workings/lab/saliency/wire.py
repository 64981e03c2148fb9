"""The Saliency page's wire format: each method's scores as float32 (the engine's own numbers)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..wire import encode_tensor


class Tensor(BaseModel):
    dtype: str
    shape: list[int]
    data: str = Field(description="base64 of the little-endian values")


class Token(BaseModel):
    id: int
    text: str


class MethodOut(BaseModel):
    scores: Tensor = Field(description="[pos] float32, one score per token")
    heuristic: bool = Field(description="true where the scores are not an attribution of the target")
    target: str = Field(description="what the scores are about, in words")


class IntegratedOut(BaseModel):
    steps: int
    baseline: str = Field(description="'zero' or the baseline token's text")
    metric: float = Field(description="the target at the prompt")
    baseline_metric: float = Field(description="the target at the baseline")
    attribution_sum: float = Field(description="the attributions added up")
    completeness_error: float = Field(description="attribution_sum minus (metric - baseline_metric)")
    relative_error: float = Field(description="|completeness_error| / |metric - baseline_metric|")


class SaliencyOut(BaseModel):
    model: str
    ids: list[int]
    str_tokens: list[str]
    target: str = Field(description="logit_diff, logit or loss")
    position: int = Field(description="where the logit is read, counted from 0")
    answer: Token | None
    wrong: Token | None
    methods: dict[str, MethodOut]
    integrated: IntegratedOut


def method_out(result: Any) -> MethodOut:
    return MethodOut(
        scores=Tensor(**encode_tensor(result.scores[0].float().numpy(), "float32")),
        heuristic=result.heuristic,
        target=result.target,
    )
