"""Compact tensors for the lab's JSON: float16 or bytes quantised over their range, in base64.

A list of floats in JSON costs about 20 bytes a number; float16 costs 2.7 (base64), a
quantised byte 1.3, and float32 (exact, for numbers a page prints) 5.3. `encode_tensor` makes the JSON-ready dict that `static/js/views/tensor.js`
decodes; `decode_tensor` does the same arithmetic in Python, so tests can compare exactly.

Each response has a byte budget: `fit_tensor` thins a tensor along one axis until its data
fits and says so (`"thinned"`: which indices it kept, of how many, and how), so the page can
say "thinned to fit". `ByteBudget` shares one budget between the tensors of a response.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Dtype = Literal["float16", "uint8", "float32", "int32", "uint16"]
DTYPES: tuple[str, ...] = ("float16", "uint8", "float32", "int32", "uint16")
HOW = ("stride", "head")
_ITEMSIZE = {"float16": 2, "uint8": 1, "float32": 4, "int32": 4, "uint16": 2}
_FLOATS = {"float16": "<f2", "float32": "<f4"}
_INTS = {"int32": "<i4", "uint16": "<u2"}


def _as_array(array: Any) -> np.ndarray:
    try:
        values = np.asarray(array)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a tensor must be a rectangular array of real numbers: {exc}") from None
    if values.dtype == object or not (np.issubdtype(values.dtype, np.number) or values.dtype == np.bool_):
        raise ValueError(f"a tensor must hold real numbers, got dtype {values.dtype} (ragged rows or non-numbers?)")
    if np.issubdtype(values.dtype, np.complexfloating):
        raise ValueError("a tensor must hold real numbers, got complex values")
    return values.astype(np.float64, copy=False)


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")


def base64_length(nbytes: int) -> int:
    """Characters of base64 for `nbytes` bytes (what a tensor's data costs in the JSON)."""
    return 4 * math.ceil(nbytes / 3)


def encoded_size(shape: tuple[int, ...] | list[int], dtype: str = "float16") -> int:
    """The base64 characters `encode_tensor` writes for a tensor of this shape and dtype."""
    _check_dtype(dtype)
    return base64_length(_ITEMSIZE[dtype] * math.prod(shape))


def encode_tensor(array: Any, dtype: Dtype = "float16") -> dict:
    """A JSON-ready dict: dtype, shape, base64 little-endian data, and for uint8 its min and max.

    float16 and float32 keep ±inf and NaN; finite values beyond the type's range are refused
    (they would turn into infinities). float32 is exact for numbers the engine computed in
    float32, for a page that prints them. uint8 stores round((x - min) / (max - min) * 255), so
    a value comes back within (max - min) / 510; it needs finite values. int32 and uint16 are
    for whole numbers such as token ids.
    """
    _check_dtype(dtype)
    values = _as_array(array)
    shape = [int(n) for n in values.shape]
    if dtype in _FLOATS:
        finite = values[np.isfinite(values)]
        top = float(np.finfo(_FLOATS[dtype]).max)
        if finite.size and float(np.abs(finite).max()) > top:
            raise ValueError(
                f"values up to {float(np.abs(finite).max()):.6g} exceed {dtype}'s range "
                f"(±{top:g}): send them as uint8, or rescale them"
            )
        data = values.astype(_FLOATS[dtype]).tobytes()
        return {"dtype": dtype, "shape": shape, "data": base64.b64encode(data).decode("ascii")}
    if dtype in _INTS:
        info = np.iinfo(_INTS[dtype])
        whole = np.isfinite(values) & (values == np.round(values))
        if not whole.all() or (values.size and (values.min() < info.min or values.max() > info.max)):
            raise ValueError(f"{dtype} needs whole numbers from {info.min} to {info.max}")
        data = values.astype(_INTS[dtype]).tobytes()
        return {"dtype": dtype, "shape": shape, "data": base64.b64encode(data).decode("ascii")}
    if not np.isfinite(values).all():
        raise ValueError(
            "uint8 quantisation needs finite values, and this tensor has NaN or ±inf: send it as float16, or replace them first"
        )
    lo = float(values.min()) if values.size else 0.0
    hi = float(values.max()) if values.size else 0.0
    span = hi - lo
    if span > 0:
        quantised = np.clip(np.rint((values - lo) / span * 255.0), 0, 255).astype(np.uint8)
    else:
        quantised = np.zeros(values.shape, dtype=np.uint8)
    return {
        "dtype": "uint8",
        "shape": shape,
        "min": lo,
        "max": hi,
        "data": base64.b64encode(quantised.tobytes()).decode("ascii"),
    }


def decode_tensor(obj: dict) -> np.ndarray:
    """The array `decodeTensor` in tensor.js gives for `obj` (the same arithmetic).

    float32 for the float dtypes and uint8; int32 or uint16 for those.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"an encoded tensor is a dict with dtype, shape and data, got {type(obj).__name__}")
    dtype = obj.get("dtype")
    if dtype not in _ITEMSIZE:
        raise ValueError(f"unknown tensor dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    shape = obj.get("shape")
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError("tensor shape must be a list of non-negative integers")
    raw = base64.b64decode(obj.get("data", ""), validate=True)
    expected = _ITEMSIZE[dtype] * math.prod(shape)
    if len(raw) != expected:
        raise ValueError(f"tensor data has {len(raw)} bytes; shape {shape} of {dtype} needs {expected}")
    if dtype in _FLOATS:
        return np.frombuffer(raw, dtype=_FLOATS[dtype]).astype(np.float32).reshape(shape)
    if dtype in _INTS:
        return np.frombuffer(raw, dtype=_INTS[dtype]).astype(_INTS[dtype][1:]).reshape(shape)
    step = (float(obj["max"]) - float(obj["min"])) / 255
    q = np.frombuffer(raw, dtype=np.uint8).astype(np.float64)
    return (float(obj["min"]) + q * step).astype(np.float32).reshape(shape)


def _kept(n: int, m: int, how: str, priority: np.ndarray | None) -> np.ndarray:
    if priority is not None:
        order = np.argsort(-priority, kind="stable")[:m]
        return np.sort(order)
    if how == "head":
        return np.arange(m)
    if m == 1:
        return np.array([0])
    return np.rint(np.linspace(0, n - 1, m)).astype(np.int64)  # evenly spaced, first and last kept


def fit_tensor(
    array: Any,
    budget: int,
    dtype: Dtype = "float16",
    axis: int = 0,
    how: str = "stride",
    priority: Any = None,
) -> dict:
    """`encode_tensor`, thinned along `axis` until its base64 data is at most `budget` characters.

    The result has `"thinned"`: None when the whole tensor fit, else `{"axis", "kept", "of",
    "how"}` with the kept indices in order. `how` is "stride" (evenly spaced, first and last
    kept) or "head" (the first ones); `priority` (one score per index along `axis`) keeps the
    highest-scoring ones instead, e.g. the positions with the largest loss.
    """
    _check_dtype(dtype)
    values = _as_array(array)
    if not isinstance(budget, int) or isinstance(budget, bool) or budget < 0:
        raise ValueError(f"budget must be a non-negative whole number of bytes, got {budget!r}")
    if how not in HOW:
        raise ValueError(f"how must be one of {', '.join(HOW)}, got {how!r}")
    if values.ndim == 0:
        raise ValueError("a scalar cannot be thinned: fit_tensor needs at least one axis")
    if not -values.ndim <= axis < values.ndim:
        raise ValueError(f"axis {axis} is out of range for a {values.ndim}-d tensor")
    axis %= values.ndim
    n = values.shape[axis]
    scores = None
    if priority is not None:
        scores = _as_array(priority)
        if scores.shape != (n,):
            raise ValueError(f"priority needs one score per index along axis {axis} ({n}), got shape {scores.shape}")
        scores = np.where(np.isnan(scores), -np.inf, scores)
    if encoded_size(values.shape, dtype) <= budget:
        return {**encode_tensor(values, dtype), "thinned": None}
    per_slice = _ITEMSIZE[dtype] * math.prod(values.shape) // max(n, 1)
    m = min(n, (budget * 3 // 4) // max(per_slice, 1))
    while m > 0 and base64_length(m * per_slice) > budget:
        m -= 1
    if m == 0:
        raise ValueError(
            f"a budget of {budget} bytes cannot hold one slice along axis {axis} of a "
            f"{list(values.shape)} {dtype} tensor ({base64_length(per_slice)} bytes): raise the budget or send less"
        )
    kept = _kept(n, m, how, scores)
    encoded = encode_tensor(np.take(values, kept, axis=axis), dtype)
    how_done = "priority" if scores is not None else how
    return {**encoded, "thinned": {"axis": axis, "kept": [int(i) for i in kept], "of": n, "how": how_done}}


@dataclass
class ByteBudget:
    """One response's byte budget, spent by the tensors encoded through it, in order.

    `take` fits each tensor into what is left (see `fit_tensor`); `thinned` lists a note for
    each tensor that had to be thinned, for the page to show.
    """

    total: int
    spent: int = 0
    thinned: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.total, int) or isinstance(self.total, bool) or self.total <= 0:
            raise ValueError(f"a byte budget must be a positive whole number of bytes, got {self.total!r}")

    @property
    def left(self) -> int:
        return self.total - self.spent

    def take(self, name: str, array: Any, dtype: Dtype = "float16", **fit: Any) -> dict:
        encoded = fit_tensor(array, self.left, dtype, **fit)
        self.spent += len(encoded["data"])
        note = encoded["thinned"]
        if note is not None:
            self.thinned.append(f"{name}: {len(note['kept'])} of {note['of']} kept to fit the response's byte budget")
        return encoded
