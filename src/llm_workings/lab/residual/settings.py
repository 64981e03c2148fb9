"""The Residual stream page's settings table and request body."""

from __future__ import annotations

from ..prompts import PromptIn
from ..settings import Setting, SettingsTable

MAX_POSITIONS = 64  # columns of the lens table; the page shows every cell
MAX_K = 20
ANSWER_CHARS = 100

SETTINGS = SettingsTable(
    (
        Setting(
            "target",
            "text",
            "",
            "Target token",
            "The token whose probability (or rank) colours the lens table, at every position; empty: the token that actually comes next.",
            max_length=ANSWER_CHARS,
            group="lens",
        ),
        Setting(
            "colour",
            "choice",
            "probability",
            "Colour by",
            "The target's probability under each stream, or its rank (0 = the top prediction).",
            choices=("probability", "rank"),
            group="lens",
        ),
        Setting("k", "int", 5, "Top k", "How many predictions the selected cell lists.", min=1, max=MAX_K, group="lens"),
        Setting(
            "layer",
            "int",
            -1,
            "Stream",
            "The selected row of the lens table: 0 is the embedding, the last (-1) the model's output.",
            min=-1000,
            max=1000,
            group="cell",
        ),
        Setting(
            "position",
            "int",
            -1,
            "Position",
            "The selected column: the lens cell listed in full, and where the logit difference is read (-1: the last token).",
            min=-MAX_POSITIONS,
            max=MAX_POSITIONS - 1,
            group="cell",
        ),
        Setting(
            "answer",
            "text",
            "",
            "Answer",
            "One token, the correct side of the logit difference; empty: the model's top prediction at the position.",
            max_length=ANSWER_CHARS,
            group="decompose",
        ),
        Setting(
            "wrong",
            "text",
            "",
            "Wrong answer",
            "One token, subtracted; empty: the model's second choice at the position.",
            max_length=ANSWER_CHARS,
            group="decompose",
        ),
        Setting(
            "split",
            "choice",
            "layers",
            "Split attention",
            "One bar per layer's attention, or one per head (with the output bias on its own).",
            choices=("layers", "heads"),
            group="decompose",
        ),
    )
)

_Settings = SETTINGS.model("ResidualSettings", unknown="unknown field {name!r}; expected fields from {known}")


class ResidualBody(_Settings):
    """POST /api/residual/run: every view of the page for one prompt."""

    model: str
    prompt: PromptIn
