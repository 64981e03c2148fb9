"""The Grokking page's request bodies (it has no settings of its own: the run fixes p and the split)."""

from __future__ import annotations

from ..settings import Body
from ..snapshots import ModelId, Step


class SeriesBody(Body):
    """POST /api/grokking/series: every snapshot's losses, accuracies, norms and progress measures."""

    model: ModelId


class SnapshotBody(SeriesBody):
    """POST /api/grokking/snapshot: one snapshot's embedding spectrum and circle."""

    step: Step
