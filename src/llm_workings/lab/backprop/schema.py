"""What the Backprop page reads before it draws anything: its controls, limits and maths tables."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...nn import LOSSES, OUTPUT_ACTIVATIONS
from .maths import formulas
from .run import MAX_STEPS
from .settings import LIVE, MAX_STEPS_PER_REQUEST, SETTINGS


class Control(BaseModel):
    """One row of the settings table, as the page builds its control from it."""

    name: str
    kind: str
    default: Any
    label: str
    help: str
    choices: list[str]
    min: float | None
    max: float | None
    max_length: int | None
    log_scale: bool
    live: bool
    group: str


class Limits(BaseModel):
    max_steps: int
    max_steps_per_request: int


class ActivationFormula(BaseModel):
    symbol: str  # TeX of f's name inside an equation
    f: str  # TeX of a = f(z)
    df: str  # TeX of its derivative


class LossFormula(BaseModel):
    title: str
    f: str
    dL_da: str  # TeX of the output layer's dL/da


class Penalty(BaseModel):
    R: str
    dR_dW: str  # "#W" stands for the weights being written


class Formulas(BaseModel):
    activations: dict[str, ActivationFormula]
    losses: dict[str, LossFormula]
    fused: list[tuple[str, str]]  # [output, loss] pairs whose dL/dz the engine computes as (a - y) / B
    penalties: dict[str, Penalty]


class Schema(BaseModel):
    settings: list[Control]
    live: list[str]
    losses_for_output: dict[str, list[str]]
    limits: Limits
    formulas: Formulas


def schema() -> Schema:
    return Schema(
        settings=SETTINGS.to_json(),
        live=list(LIVE),
        losses_for_output={out: [n for n, f in LOSSES.items() if out in f.outputs] for out in OUTPUT_ACTIVATIONS},
        limits=Limits(max_steps=MAX_STEPS, max_steps_per_request=MAX_STEPS_PER_REQUEST),
        formulas=Formulas(**formulas()),
    )
