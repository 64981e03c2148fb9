"""The Induction page's settings and request bodies: the probe sequences it scores every snapshot on."""

from __future__ import annotations

from ..settings import Setting, SettingsTable
from ..snapshots import ModelId, Step

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


_Probe = SETTINGS.model("InductionProbe", unknown="unknown field {name!r}; expected fields from {known}")


class SeriesBody(_Probe):
    """POST /api/induction/series: every snapshot's scores and losses, for the curves."""

    model: ModelId


class SnapshotBody(_Probe):
    """POST /api/induction/snapshot: one snapshot's patterns and loss by position."""

    model: ModelId
    step: Step
