"""The Induction page's JSON: per-snapshot numbers the page prints go as float32 (the engine's own),
the attention patterns as float16 (a map, drawn, not printed)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from ..snapshots import Tensor, tensor
from .compute import SnapshotView


class Transition(BaseModel):
    name: str
    metric: str
    start_step: int
    end_step: int


class SeriesOut(BaseModel):
    model: str
    n_layers: int
    n_heads: int
    half: int
    seed: int
    steps: list[int]
    loss: list[float | None] = Field(description="the trainer's loss when each snapshot was taken")
    repeated_half_loss: list[float | None] = Field(description="the trainer's loss on the repeated halves")
    first_copy_loss: Tensor = Field(description="[snapshot] float32: mean loss on the probe's first copy")
    second_copy_loss: Tensor = Field(description="[snapshot] float32: mean loss on the probe's second copy")
    previous_token: Tensor = Field(description="[snapshot, layer, head] float32 previous-token scores")
    induction: Tensor = Field(description="[snapshot, layer, head] float32 induction scores")
    k_composition: Tensor = Field(description="[snapshot, L0 head, L1 head] float32 K-composition scores")
    composition_baseline: float = Field(description="random matrices' mean K-composition score")
    previous_head: int = Field(description="the layer-0 head with the top previous-token score at the last snapshot")
    induction_heads: list[int] = Field(description="the layer-1 heads with the top induction scores at the last snapshot")
    transition: Transition | None = Field(description="where the card (or the recipe's rule) puts the phase change")


class SnapshotOut(BaseModel):
    model: str
    step: int
    tokens: list[int] = Field(description="the first probe sequence: BOS, then half random tokens, then them again")
    heads: list[str] = Field(description="the patterns' heads, e.g. L0H3")
    patterns: Tensor = Field(description="[head, query, key] float16, on the first probe sequence")
    loss_by_position: Tensor = Field(description="[pos - 1] float32: entry t is the loss predicting token t + 1")
    previous_token: Tensor = Field(description="[layer, head] float32")
    induction: Tensor = Field(description="[layer, head] float32")


def _metric(entries: list[dict[str, Any]], name: str) -> list[float | None]:
    return [e.get(name) for e in entries]


def series(
    model_id: str,
    entries: list[dict[str, Any]],
    views: list[SnapshotView],
    copies: list[tuple[float, float]],
    half: int,
    seed: int,
    featured: tuple[int, list[int]],
    transition: dict[str, Any] | None,
) -> SeriesOut:
    n_layers, n_heads = views[-1].previous_token.shape
    return SeriesOut(
        model=model_id,
        n_layers=n_layers,
        n_heads=n_heads,
        half=half,
        seed=seed,
        steps=[e["step"] for e in entries],
        loss=_metric(entries, "loss"),
        repeated_half_loss=_metric(entries, "repeated_half_loss"),
        first_copy_loss=tensor(np.array([c[0] for c in copies], np.float32)),
        second_copy_loss=tensor(np.array([c[1] for c in copies], np.float32)),
        previous_token=tensor(np.stack([v.previous_token for v in views])),
        induction=tensor(np.stack([v.induction for v in views])),
        k_composition=tensor(np.stack([v.k_composition for v in views])),
        composition_baseline=views[-1].composition_baseline,
        previous_head=featured[0],
        induction_heads=featured[1],
        transition=Transition(**transition) if transition else None,
    )


def snapshot(model_id: str, step: int, tokens: list[int], view: SnapshotView, featured: tuple[int, list[int]]) -> SnapshotOut:
    previous, inductions = featured
    heads = [(0, previous), *((1, h) for h in inductions)]
    return SnapshotOut(
        model=model_id,
        step=step,
        tokens=tokens,
        heads=[f"L{layer}H{head}" for layer, head in heads],
        patterns=tensor(np.stack([view.patterns[layer, head] for layer, head in heads]), "float16"),
        loss_by_position=tensor(view.loss_by_position),
        previous_token=tensor(view.previous_token),
        induction=tensor(view.induction),
    )
