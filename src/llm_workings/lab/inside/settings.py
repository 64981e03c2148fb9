"""The "Inside a transformer" page's settings and request body: which position, layer and head the
walk follows. Their upper limits depend on the model, so compute.check_choice names those."""

from __future__ import annotations

from ..prompts import PromptIn
from ..settings import Setting, SettingsTable

MAX_TOKENS = 256  # the page sends a head's whole pattern, which grows with the square of the length
MAX_INDEX = 4096  # the table's outer bound; the model's own bound is checked against the model

SETTINGS = SettingsTable(
    (
        Setting(
            "position", "int", -1, "Position", "Which token's pass to follow (−1: the last one).", min=-1, max=MAX_TOKENS - 1
        ),
        Setting("layer", "int", 0, "Layer", "Which block to open.", min=0, max=MAX_INDEX),
        Setting("head", "int", 0, "Head", "Which attention head of that block to follow.", min=0, max=MAX_INDEX),
        Setting(
            "sharpen",
            "float",
            1.0,
            "Score scale",
            "Also show softmax(scale × scores): above 1 is a temperature below 1, which sharpens the pattern (1: off).",
            min=0.25,
            max=8.0,
        ),
    )
)

_Settings = SETTINGS.model("InsideSettings", unknown="unknown field {name!r}; expected fields from {known}")


class WalkBody(_Settings):
    """POST /api/inside/walk: one forward pass of the prompt, followed through one position, layer and head."""

    model: str
    prompt: PromptIn
