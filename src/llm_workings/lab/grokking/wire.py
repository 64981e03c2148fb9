"""The Grokking page's JSON: every number the page prints goes as float32 (the engine's own)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from ..snapshots import Tensor, tensor
from .compute import SnapshotView

MEASURES = ("train_loss", "test_loss", "train_accuracy", "test_accuracy", "restricted_loss", "excluded_loss")


class Transition(BaseModel):
    name: str
    metric: str
    start_step: int
    end_step: int


class SeriesOut(BaseModel):
    model: str
    p: int
    train_pairs: int
    steps: list[int]
    key_freqs: list[int] = Field(description="the last snapshot's key frequencies, strongest first")
    strongest: int = Field(description="the frequency the circle is drawn on")
    measures: dict[str, Tensor] = Field(description="name -> [snapshot] float32, for each of MEASURES")
    key_share: Tensor = Field(description="[snapshot] float32: the embedding's energy share at the key frequencies")
    key_norms: Tensor = Field(description="[snapshot, key] float32: the embedding's norm at each key frequency")
    weight_norm: Tensor = Field(description="[snapshot] float32: sqrt of the sum of every weight squared")
    transition: Transition | None = Field(description="where the card (or the recipe's rule) puts grokking")


class SnapshotOut(BaseModel):
    model: str
    step: int
    spectrum: Tensor = Field(description="[p//2 + 1] float32: W_E[:p]'s norm at each frequency, 0 the constant")
    circle: Tensor = Field(description="[p, 2] float32: each number on the strongest key frequency's plane")
    measures: dict[str, float]
    key_share: float
    weight_norm: float


def series(
    model_id: str,
    p: int,
    train_pairs: int,
    entries: list[dict[str, Any]],
    views: list[SnapshotView],
    keys: list[int],
    transition: dict | None,
) -> SeriesOut:
    return SeriesOut(
        model=model_id,
        p=p,
        train_pairs=train_pairs,
        steps=[e["step"] for e in entries],
        key_freqs=keys,
        strongest=keys[0],
        measures={name: tensor(np.array([v.measures[name] for v in views], np.float32)) for name in MEASURES},
        key_share=tensor(np.array([v.key_share for v in views], np.float32)),
        key_norms=tensor(np.stack([v.spectrum[keys] for v in views])),
        weight_norm=tensor(np.array([v.weight_norm for v in views], np.float32)),
        transition=Transition(**transition) if transition else None,
    )


def snapshot(model_id: str, step: int, view: SnapshotView) -> SnapshotOut:
    return SnapshotOut(
        model=model_id,
        step=step,
        spectrum=tensor(view.spectrum),
        circle=tensor(view.circle),
        measures=view.measures,
        key_share=view.key_share,
        weight_norm=view.weight_norm,
    )
