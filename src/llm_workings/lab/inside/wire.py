"""The "Inside a transformer" page's wire format: the walk's stages, each a list of items the page
draws generically (a colour strip, a row of printed numbers, a heatmap, rotating pairs, a table).

Every item names the hook its numbers come from and the index of its first number in that hook's
cache tensor (batch included), so a test can look each shown number up in `run_with_cache`'s
cache. Numbers that are not a hook's (a mean, a probability) name how they are `derived` instead.
Every value travels as float32, the engine's own number; each vector or map shown only as colour
has its own byte budget and is thinned by stride past it (the item's `kept` says which entries
came), so a wide model's response stays within about 22 x VECTOR_BYTES + 2 x MATRIX_BYTES.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from ..wire import ByteBudget, encode_tensor

VECTOR_BYTES = 24_000  # one colour strip: 4,500 float32 entries, so GPT-2's d_mlp=3072 comes whole
MATRIX_BYTES = 100_000  # one heatmap: a 128-token pattern comes whole


class Tensor(BaseModel):
    dtype: str
    shape: list[int]
    data: str = Field(description="base64 of the little-endian values")


def tensor(values: Any) -> Tensor:
    return Tensor(**encode_tensor(values, "float32"))


class Vector(BaseModel):
    """One vector as a colour strip; entry i is cache[hook][*index, kept[i] (or i)]."""

    kind: Literal["vector"] = "vector"
    label: str
    var: str = Field(description="the name the stage's snippet gives it")
    hook: str
    index: list[int]
    values: Tensor
    kept: list[int] | None = Field(description="entries sent, when thinned to the byte budget")
    of: int = Field(description="the vector's length")
    axis: str = Field(description="what its entries are, e.g. d_model")


class Numbers(BaseModel):
    """Numbers printed in a row; number i is cache[hook][*indices[i]] or, with `derived`, worked out from the cache."""

    kind: Literal["numbers"] = "numbers"
    label: str
    var: str | None = None
    hook: str | None = None
    derived: str | None = Field(None, description="how a number not held by a hook is worked out (tests redo it)")
    indices: list[list[int]]
    labels: list[str]
    values: Tensor


class Matrix(BaseModel):
    """A heatmap; cell (r, c) is cache[hook][*index, rows[r], c]."""

    kind: Literal["matrix"] = "matrix"
    label: str
    var: str
    hook: str
    index: list[int]
    values: Tensor
    rows: list[int]
    row_labels: list[str]
    col_labels: list[str]
    row_title: str
    col_title: str
    kept: list[int] | None = Field(description="columns sent, when thinned")


class Pairs(BaseModel):
    """Rotary pairs: coordinates (d, d + rotary_dim/2) of a head's q or k before and after rotation."""

    kind: Literal["pairs"] = "pairs"
    label: str
    hooks: list[str] = Field(description="[before, after]")
    index: list[int] = Field(description="[batch, pos, head]")
    dims: list[list[int]]
    before: Tensor
    after: Tensor
    angles: Numbers
    frequencies: list[float] = Field(description="each pair's angle per position, to draw where it turns at the other positions")
    positions: int = Field(description="the prompt's length")


class Table(BaseModel):
    kind: Literal["table"] = "table"
    label: str
    row_title: str
    row_labels: list[str]
    columns: list[Numbers]


Item = Annotated[Vector | Numbers | Matrix | Pairs | Table, Field(discriminator="kind")]


class Stage(BaseModel):
    id: str
    title: str
    notes: list[str] = Field(description="what this model's config makes of the stage")
    hooks: list[str]
    snippet: str
    items: list[Item]


class WalkOut(BaseModel):
    model: str
    ids: list[int]
    str_tokens: list[str]
    bos: bool
    position: int
    layer: int
    head: int
    kv_head: int
    wiring: dict[str, Any]
    preamble: str = Field(description="Python that loads the model and runs it; each stage's snippet follows it")
    stages: list[Stage]
    thinned: list[str]


def as_vector(notes: list[str], label: str, var: str, hook: str, index: list[int], values: Any, axis: str) -> Vector:
    """A colour strip of `values`, thinned to VECTOR_BYTES; a note is added to `notes` when it is."""
    budget = ByteBudget(VECTOR_BYTES)
    fitted = budget.take(f"{label} ({hook})", values.numpy(), "float32")
    notes += budget.thinned
    note = fitted.pop("thinned")
    return Vector(
        label=label,
        var=var,
        hook=hook,
        index=index,
        values=Tensor(**fitted),
        kept=None if note is None else note["kept"],
        of=int(values.shape[0]),
        axis=axis,
    )


def as_numbers(label: str, values: Any, indices: list[list[int]], labels: list[str], **source: Any) -> Numbers:
    return Numbers(label=label, values=tensor(values.reshape(-1).numpy()), indices=indices, labels=labels, **source)


def as_matrix(
    notes: list[str], label: str, var: str, hook: str, index: list[int], values: Any, labels: tuple, titles: tuple
) -> Matrix:
    """A heatmap of `values` [rows, cols], its columns thinned to MATRIX_BYTES; noted in `notes` when they are."""
    budget = ByteBudget(MATRIX_BYTES)
    fitted = budget.take(f"{label} ({hook})", values.numpy(), "float32", axis=1)
    notes += budget.thinned
    note = fitted.pop("thinned")
    col_labels = labels[1] if note is None else [labels[1][i] for i in note["kept"]]
    return Matrix(
        label=label,
        var=var,
        hook=hook,
        index=index,
        values=Tensor(**fitted),
        rows=list(range(values.shape[0])),
        row_labels=labels[0],
        col_labels=col_labels,
        row_title=titles[0],
        col_title=titles[1],
        kept=None if note is None else note["kept"],
    )
