"""The Saliency page's settings table and request body."""

from __future__ import annotations

from ..prompts import PromptIn
from ..settings import Setting, SettingsTable

# analysis.saliency.METHODS, written out: importing the engine would import torch at the lab's start
METHODS = ("gradient_x_input", "integrated_gradients", "attention_rollout")
MAX_POSITIONS = 128
MAX_STEPS = 256
ANSWER_CHARS = 100

SETTINGS = SettingsTable(
    (
        Setting(
            "method",
            "choice",
            "integrated_gradients",
            "Method",
            "Which scores colour the tokens. All three are computed at once, so switching costs nothing.",
            choices=(METHODS[1], METHODS[0], METHODS[2]),  # integrated gradients first: the default
            group="view",
        ),
        Setting(
            "target",
            "choice",
            "logit_diff",
            "Target",
            "What is attributed: the answer's logit minus the wrong answer's, the answer's logit alone, or the next-token loss over the whole prompt.",
            choices=("logit_diff", "logit", "loss"),
            group="target",
        ),
        Setting(
            "position",
            "int",
            -1,
            "Position",
            "Where the logit is read, and whose attention rollout follows (-1: the last token).",
            min=-MAX_POSITIONS,
            max=MAX_POSITIONS - 1,
            group="target",
        ),
        Setting(
            "answer",
            "text",
            "",
            "Answer",
            "One token; empty: the model's top prediction at the position.",
            max_length=ANSWER_CHARS,
            group="target",
        ),
        Setting(
            "wrong",
            "text",
            "",
            "Wrong answer",
            "One token (for the logit difference); empty: the model's second choice.",
            max_length=ANSWER_CHARS,
            group="target",
        ),
        Setting(
            "baseline",
            "text",
            "zero",
            "Baseline",
            "Where integrated gradients start: 'zero' (the zero embedding), or one token whose embedding fills every position (a pad or mask token).",
            max_length=ANSWER_CHARS,
            group="ig",
        ),
        Setting(
            "steps",
            "int",
            64,
            "Steps",
            "Points on the path from the baseline to the prompt (Gauss-Legendre); more steps, smaller completeness error.",
            min=1,
            max=MAX_STEPS,
            group="ig",
        ),
    )
)

_Settings = SETTINGS.model(
    "SaliencySettings",
    only=("target", "position", "answer", "wrong", "baseline", "steps"),
    unknown="unknown field {name!r}; expected fields from {known}",
)


class SaliencyBody(_Settings):
    """POST /api/saliency/run: every method's scores for one prompt and target."""

    model: str
    prompt: PromptIn
