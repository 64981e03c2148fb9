"""The Patching page's JSON: what each route returns, tensors as `lab/wire.py` encodes them (float32,
so the page prints the engine's exact numbers)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from ..jobs.routes import JobView
from ..wire import encode_tensor
from .compute import Grid, PathGrid, Runs
from .pair import Answer, Pair


class TokensOut(BaseModel):
    ids: list[int]
    str_tokens: list[str]


class AnswerOut(BaseModel):
    id: int
    text: str


class Alternative(BaseModel):
    id: int
    text: str
    probability: float


class PairOut(BaseModel):
    model: str
    clean: TokensOut
    corrupted: TokensOut
    differs: list[int] = Field(description="positions where the two prompts differ")
    answer: AnswerOut
    wrong: AnswerOut | None
    metric: str
    clean_score: float
    corrupted_score: float
    clean_top: list[Alternative] = Field(description="the clean run's likeliest next tokens")
    corrupted_top: list[Alternative]
    n_layers: int
    n_heads: int
    attn_only: bool
    has_tokenizer: bool
    activations: list[str] = Field(description="the activations this model has")


class MapOut(BaseModel):
    """A patching map as the page draws it: `values` (the metric per patch) and `normalized`
    (0 = the corrupted run's score, 1 = the clean run's), both [rows, cols]."""

    kind: str = Field(description="'estimate' (attribution patching) or 'sweep' (activation patching)")
    activation: str
    axes: list[str]
    rows: list[str]
    cols: list[str]
    row_axis: str
    col_axis: str
    rows_per_layer: int
    values: dict[str, Any]
    normalized: dict[str, Any]
    clean: float
    corrupted: float
    seconds: float = Field(description="time the engine took")


class DisagreementOut(BaseModel):
    row: int
    col: int
    estimate: float
    actual: float


class SweepResult(MapOut):
    pearson: float | None = Field(description="correlation of attribution patching's estimate with this sweep")
    disagreements: list[DisagreementOut]


class SweepOut(BaseModel):
    """A small sweep's result now, or a large one's job (follow it with /api/jobs/{id}/events)."""

    result: SweepResult | None
    job: JobView | None
    estimated_seconds: float


class PathOut(BaseModel):
    sender: str
    rows: list[str] = Field(description="the receiving heads")
    cols: list[str]
    values: dict[str, Any]
    normalized: dict[str, Any]
    clean: float
    corrupted: float


class AblateOut(BaseModel):
    components: list[str]
    method: str
    value: float = Field(description="the clean run's metric with every component ablated together")
    clean: float
    corrupted: float


def _answer(answer: Answer | None) -> AnswerOut | None:
    return None if answer is None else AnswerOut(id=answer.id, text=answer.text)


def pair_out(model_id: str, held: Any, pair: Pair, runs: Runs, activations: list[str]) -> PairOut:
    cfg = held.model.cfg

    def text(i: int) -> str:
        return held.tokenizer.token_text([i])[0] if held.tokenizer is not None else str(i)

    def alternatives(top: list[tuple[int, float]]) -> list[Alternative]:
        return [Alternative(id=i, text=text(i), probability=p) for i, p in top]

    return PairOut(
        model=model_id,
        clean=TokensOut(ids=pair.clean_prompt.ids, str_tokens=pair.clean_prompt.str_tokens),
        corrupted=TokensOut(ids=pair.corrupted_prompt.ids, str_tokens=pair.corrupted_prompt.str_tokens),
        differs=pair.differs,
        answer=_answer(pair.answer),
        wrong=_answer(pair.wrong),
        metric=pair.metric_name,
        clean_score=runs.clean,
        corrupted_score=runs.corrupted,
        clean_top=alternatives(runs.clean_top),
        corrupted_top=alternatives(runs.corrupted_top),
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        attn_only=cfg.attn_only,
        has_tokenizer=held.tokenizer is not None,
        activations=activations,
    )


def map_fields(kind: str, result: Any, grid: Grid, seconds: float) -> dict[str, Any]:
    from ...analysis.metrics import normalized

    return dict(
        kind=kind,
        activation=result.activation,
        axes=list(result.axes),
        rows=grid.rows,
        cols=grid.cols,
        row_axis=grid.row_axis,
        col_axis=grid.col_axis,
        rows_per_layer=grid.rows_per_layer,
        values=encode_tensor(grid.values.numpy(), "float32"),
        normalized=encode_tensor(normalized(grid.values, result.clean, result.corrupted).numpy(), "float32"),
        clean=result.clean,
        corrupted=result.corrupted,
        seconds=seconds,
    )


def path_out(sender: str, result: PathGrid) -> PathOut:
    return PathOut(
        sender=sender,
        rows=result.rows,
        cols=["q", "k", "v"],
        values=encode_tensor(result.values.numpy(), "float32"),
        normalized=encode_tensor(result.normalized.numpy(), "float32"),
        clean=result.clean,
        corrupted=result.corrupted,
    )
