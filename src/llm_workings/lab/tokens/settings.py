"""The Tokens page's settings table and request bodies: every bound a request can hit, in one place."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator

from ..settings import Setting, SettingsTable, invalid

MAX_TEXT_CHARS = 2000  # what the text box accepts
MAX_TOKENS = 1024  # positions one request predicts, whatever the tokenizer makes of the text
MAX_K = 50  # alternatives per position
MAX_NEW_TOKENS = 200
MODEL_ID_CHARS = 200

SETTINGS = SettingsTable(
    (
        Setting(
            "k",
            "int",
            10,
            "Alternatives",
            "How many of the likeliest next tokens to show at each position.",
            min=1,
            max=MAX_K,
            group="predictions",
        ),
        Setting(
            "temperature",
            "float",
            1.0,
            "Temperature",
            "Divides the logits before the softmax: below 1 sharpens the distribution, above 1 flattens it; 0 always picks the likeliest token.",
            min=0.0,
            max=3.0,
            live=True,
            group="sampling",
        ),
        Setting(
            "top_k",
            "int",
            0,
            "Top-k",
            "Keep only the k likeliest tokens before sampling (0: keep them all).",
            min=0,
            max=1000,
            live=True,
            group="sampling",
        ),
        Setting(
            "top_p",
            "float",
            1.0,
            "Top-p",
            "Keep the smallest set of likeliest tokens whose probability reaches p (1: keep them all).",
            min=0.01,
            max=1.0,
            live=True,
            group="sampling",
        ),
        Setting(
            "seed",
            "int",
            0,
            "Seed",
            "The random seed of the sample: the same seed and settings give the same continuation.",
            min=0,
            max=2**31 - 1,
            group="sampling",
        ),
        Setting(
            "new_tokens",
            "int",
            40,
            "New tokens",
            "How many tokens the sample button adds.",
            min=1,
            max=MAX_NEW_TOKENS,
            group="sampling",
        ),
    )
)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise invalid(f"must be a string of text; got {type(value).__name__}")
    if not value:
        raise invalid("must hold at least one character")
    if len(value) > MAX_TEXT_CHARS:
        raise invalid(f"may be at most {MAX_TEXT_CHARS} characters; got {len(value)}")
    return value


def _model_id(value: Any) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MODEL_ID_CHARS:
        raise invalid(
            f"must be a model id from GET /api/models (a string of 1 to {MODEL_ID_CHARS} characters); got {value!r:.80}"
        )
    return value


def _position(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_TOKENS:
        raise invalid(f"must be a token position, an integer from 0 to {MAX_TOKENS - 1}; got {value!r:.80}")
    return value


Text = Annotated[str, BeforeValidator(_text)]
ModelId = Annotated[str, BeforeValidator(_model_id)]
Position = Annotated[int, BeforeValidator(_position)]

_UNKNOWN = "unknown field {name!r}; expected fields from {known}"
_Predict = SETTINGS.model("PredictSettings", only=("k",), unknown=_UNKNOWN)
_Sampling = SETTINGS.model("SamplingSettings", only=("temperature", "top_k", "top_p", "k"), unknown=_UNKNOWN)
_Sample = SETTINGS.model("SampleSettings", only=("temperature", "top_k", "top_p", "seed", "new_tokens"), unknown=_UNKNOWN)


class PredictBody(_Predict):
    """POST /api/tokens/predict: the text's tokens and the model's predictions at every position."""

    model: ModelId
    text: Text


class ReshapeBody(_Sampling):
    """POST /api/tokens/reshape: one position's distribution under the sampling settings.
    `position` counts the model's tokens (a BOS included); the last one predicts what follows the text."""

    model: ModelId
    text: Text
    position: Position


class SampleBody(_Sample):
    """POST /api/tokens/sample: a seeded continuation of the text."""

    model: ModelId
    text: Text


def cut(top_k: int, top_p: float) -> tuple[int | None, float | None]:
    """The settings' "off" values (top_k 0, top_p 1) as generate's None."""
    return (top_k or None), (top_p if top_p < 1.0 else None)
