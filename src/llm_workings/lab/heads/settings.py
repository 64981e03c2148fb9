"""The Attention heads page's settings table and request bodies: every bound a request can hit, in one place.

Layer and head are bounded here only loosely (a head index is never above 255); the route checks them
against the model it holds and names that model's own limits.
"""

from __future__ import annotations

from ..prompts import PromptIn
from ..settings import Body, Setting, SettingsTable, bounded_int
from ..tokens.settings import ModelId

MAX_TOKENS = 256  # positions one request shows: the grid grows with layers x heads x the square of this
MAX_INDEX = 255  # no layer or head index beyond this, whatever the model
MAX_CIRCUIT_VOCAB = 512  # full_QK and full_OV are [d_vocab, d_vocab]: drawn only for vocabularies this small
MAX_POSITIONS = 256  # learned positions compared in the similarity matrix
GRID_BYTE_BUDGET = 4_000_000  # characters of pattern data in one grid response
SORTS = ("layer", "previous_token", "duplicate_token", "induction", "entropy")

SETTINGS = SettingsTable(
    (
        Setting(
            "layer",
            "int",
            0,
            "Layer",
            "The layer of the head shown in depth (counting from 0).",
            min=0,
            max=MAX_INDEX,
            group="head",
        ),
        Setting(
            "head",
            "int",
            0,
            "Head",
            "The head shown in depth, within its layer (counting from 0).",
            min=0,
            max=MAX_INDEX,
            group="head",
        ),
        Setting(
            "sort",
            "choice",
            "layer",
            "Sort heads by",
            "The order of the grid: layer by layer, or by a score, highest first (entropy: sharpest first).",
            choices=SORTS,
            group="grid",
        ),
    )
)


class GridBody(Body):
    """POST /api/heads/grid: every head's pattern on the prompt, with its scores."""

    model: ModelId
    prompt: PromptIn


_Head = SETTINGS.model("HeadSettings", only=("layer", "head"), unknown="unknown field {name!r}; expected fields from {known}")


class HeadBody(_Head):
    """POST /api/heads/head: one head in depth. `query` and `key` pick the pair whose q.k the rotary
    view moves through every distance (default: the last query, and the key it attends to most)."""

    model: ModelId
    prompt: PromptIn
    query: bounded_int(0, MAX_TOKENS - 1) | None = None
    key: bounded_int(0, MAX_TOKENS - 1) | None = None


class PositionsBody(Body):
    """POST /api/heads/positions: how the model encodes positions, from its weights."""

    model: ModelId
