"""What the Backprop page reads before it draws anything: its controls, limits and maths tables."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ...nn import HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS
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
    f: str  # TeX of a = f(z)
    df: str  # TeX of its derivative


class LossFormula(BaseModel):
    title: str
    f: str


class Formulas(BaseModel):
    activations: dict[str, ActivationFormula]
    losses: dict[str, LossFormula]


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
        formulas=Formulas(
            activations={
                n: ActivationFormula(f=f.formula, df=f.derivative)
                for n, f in {**HIDDEN_ACTIVATIONS, **OUTPUT_ACTIVATIONS}.items()
            },
            losses={n: LossFormula(title=f.title, f=f.formula) for n, f in LOSSES.items()},
        ),
    )
