"""The Patching page's settings table and request bodies: every bound a request can hit, in one place."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, model_validator

from ..prompts import PromptIn
from ..settings import Body, Flag, Setting, SettingsTable, invalid, refused

MAX_TOKENS = 64  # positions a pair may have: the sweeps' heatmaps are layer x position (or head x position)
MAX_ANSWER_CHARS = 64
MAX_COMPONENTS = 64  # components one ablation knocks out together
MODEL_ID_CHARS = 200
COMPONENT_CHARS = 32

RESIDUAL = ("resid_pre", "resid_mid", "resid_post", "attn_out", "mlp_out")
HEAD_ACTIVATIONS = ("z", "q", "k", "v", "pattern")
ACTIVATIONS = RESIDUAL + HEAD_ACTIVATIONS
METRICS = ("logit_diff", "probability", "loss")

SETTINGS = SettingsTable(
    (
        Setting(
            "metric",
            "choice",
            "logit_diff",
            "Metric",
            "What each patched run is scored by at the last position: the answer's logit minus the wrong answer's, the answer's probability, or its loss (-ln p).",
            choices=METRICS,
        ),
        Setting(
            "activation",
            "choice",
            "resid_pre",
            "Activation",
            "What is patched: the residual stream entering a block (resid_pre), between attention and MLP (resid_mid) or leaving it (resid_post); a block's attention or MLP output; or each head's output (z), query, key, value or attention pattern.",
            choices=ACTIVATIONS,
        ),
        Setting(
            "positions",
            "choice",
            "all",
            "Head positions",
            "For head activations: patch each head at every position at once (all), or one position at a time (each).",
            choices=("all", "each"),
        ),
        Setting(
            "direction",
            "choice",
            "denoise",
            "Direction",
            "denoise: run the corrupted prompt and put back one clean piece (does it restore the answer?); noise: run the clean prompt and put in one corrupted piece (does it break it?).",
            choices=("denoise", "noise"),
        ),
        Setting(
            "method",
            "choice",
            "zero",
            "Ablation",
            "What an ablated head or neuron is replaced with: zeros, or its mean over the clean prompt's positions.",
            choices=("zero", "mean"),
        ),
    )
)


def _model_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MODEL_ID_CHARS:
        raise invalid(
            f"must be a model id from GET /api/models (a string of 1 to {MODEL_ID_CHARS} characters); got {value!r:.80}"
        )
    return value


ModelId = Annotated[str, BeforeValidator(_model_id)]


class AnswerIn(Body):
    """One token: as text (the model's tokenizer must make exactly one token of it) or as an id."""

    text: str | None = Field(None, max_length=MAX_ANSWER_CHARS)
    id: int | None = None

    @model_validator(mode="after")
    def _one_of(self) -> AnswerIn:
        if (self.text is None) == (self.id is None):
            raise refused("give the answer as a token's text or its id, not both and not neither")
        return self


_UNKNOWN = "unknown field {name!r}; expected fields from {known}"
_Metric = SETTINGS.model("MetricSettings", only=("metric",), unknown=_UNKNOWN)
_Sweep = SETTINGS.model("SweepSettings", only=("metric", "activation", "positions", "direction"), unknown=_UNKNOWN)
_Path = SETTINGS.model("PathSettings", only=("metric", "direction"), unknown=_UNKNOWN)
_Ablate = SETTINGS.model("AblateSettings", only=("metric", "method"), unknown=_UNKNOWN)


class PairFields(Body):
    model: ModelId
    clean: PromptIn
    corrupted: PromptIn
    answer: AnswerIn
    wrong: AnswerIn | None = None  # needed by the logit difference only


class PairBody(PairFields, _Metric):
    """POST /api/patching/pair: both prompts tokenized and aligned, the answers, the two runs' scores."""


class SweepBody(PairFields, _Sweep):
    """POST /api/patching/preview (attribution patching) and /sweep (activation patching).
    `background`: run the sweep as a job (true), now (false), or as the server judges by its size (null)."""

    background: Flag | None = None


class PathBody(PairFields, _Path):
    """POST /api/patching/path: one head's output, path-patched into each later head's q, k and v."""

    sender: str = Field(max_length=COMPONENT_CHARS)


class AblateBody(PairFields, _Ablate):
    """POST /api/patching/ablate: the clean run's metric with these heads and neurons ablated together."""

    components: list[Annotated[str, Field(max_length=COMPONENT_CHARS)]] = Field(default_factory=list, max_length=MAX_COMPONENTS)
