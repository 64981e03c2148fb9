"""The Induction page's settings and request bodies: the probe sequences it scores every snapshot on."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from ..settings import Setting, SettingsTable, invalid

MODEL_ID_CHARS = 200
MAX_STEP = 10**9

SETTINGS = SettingsTable(
    (
        Setting(
            "half",
            "int",
            24,
            "Repeat length",
            "How many random tokens each probe sequence holds before it repeats them (BOS, then them, then them "
            "again); at most (n_ctx - 1) / 2 for the model.",
            min=2,
            max=512,
        ),
        Setting(
            "seed",
            "int",
            0,
            "Seed",
            "The random seed of the probe sequences: the same seed gives the same tokens, at every snapshot.",
            min=0,
            max=2**31 - 1,
        ),
    )
)


def _model_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MODEL_ID_CHARS:
        raise invalid(
            f"must be a model id from GET /api/models (a string of 1 to {MODEL_ID_CHARS} characters); got {value!r:.80}"
        )
    return value


def _step(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_STEP:
        raise invalid(f"must be a snapshot's step, an integer from 0 to {MAX_STEP}; got {value!r:.80}")
    return value


ModelId = Annotated[str, BeforeValidator(_model_id)]
Step = Annotated[int, BeforeValidator(_step)]

_Probe = SETTINGS.model("InductionProbe", unknown="unknown field {name!r}; expected fields from {known}")


class SeriesBody(_Probe):
    """POST /api/induction/series: every snapshot's scores and losses, for the curves."""

    model: ModelId


class SnapshotBody(_Probe):
    """POST /api/induction/snapshot: one snapshot's patterns and loss by position."""

    model: ModelId
    step: Step
