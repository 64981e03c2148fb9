"""lab/wire.py: compact tensors round-trip within their dtype's precision, and budgets thin visibly."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from llm_workings.lab.wire import (
    ByteBudget,
    decode_tensor,
    encode_tensor,
    encoded_size,
    fit_tensor,
)

shapes = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=7)
in_half_range = st.floats(-60000, 60000, allow_nan=False, width=64)
finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.float64, shapes, elements=in_half_range))
def test_float16_round_trip_is_within_half_precision(values):
    encoded = json.loads(json.dumps(encode_tensor(values, "float16")))
    back = decode_tensor(encoded)
    assert back.shape == values.shape and back.dtype == np.float32
    # Round to nearest float16: half an ulp, relative 2**-11 for normals, 2**-25 absolute below them.
    bound = np.maximum(np.abs(values) * 2.0**-11, 2.0**-25)
    assert np.all(np.abs(back.astype(np.float64) - values) <= bound)
    assert np.array_equal(back, values.astype(np.float16).astype(np.float32))


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.float64, shapes, elements=finite))
def test_uint8_round_trip_is_within_half_a_step(values):
    encoded = json.loads(json.dumps(encode_tensor(values, "uint8")))
    back = decode_tensor(encoded).astype(np.float64)
    assert back.shape == values.shape
    if values.size:
        lo, hi = values.min(), values.max()
        assert encoded["min"] == lo and encoded["max"] == hi
        # Half a quantisation step, plus float32 rounding of the decoded value.
        bound = (hi - lo) / 255 / 2 + np.abs(values) * 2.0**-23 + 1e-30
        assert np.all(np.abs(back - values) <= bound)


def test_uint8_keeps_the_ends_exactly_and_constant_tensors():
    values = np.array([[-3.5, 0.25, 7.0]])
    back = decode_tensor(encode_tensor(values, "uint8"))
    assert back[0, 0] == np.float32(-3.5) and back[0, 2] == np.float32(7.0)
    constant = decode_tensor(encode_tensor(np.full((2, 2), 1.5), "uint8"))
    assert np.all(constant == 1.5)


def test_float16_special_values_survive():
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-24, 2.0**-14, 65504.0, -65504.0, 1e-9])
    back = decode_tensor(encode_tensor(special, "float16"))
    assert np.isposinf(back[2]) and np.isneginf(back[3]) and np.isnan(back[4])
    assert back[5] == 2.0**-24  # smallest subnormal
    assert back[6] == 2.0**-14  # smallest normal
    assert back[7] == 65504.0 and back[8] == -65504.0
    assert back[9] == 0.0  # below half the smallest subnormal
    assert np.signbit(back[1]) and not np.signbit(back[0])


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float32, shapes, elements=st.floats(width=32)))
def test_float32_is_exact(values):
    back = decode_tensor(json.loads(json.dumps(encode_tensor(values, "float32"))))
    assert back.dtype == np.float32
    assert np.array_equal(back, values, equal_nan=True)
    assert np.array_equal(np.signbit(back), np.signbit(values))


@pytest.mark.parametrize(("dtype", "lo", "hi"), [("int32", -(2**31), 2**31 - 1), ("uint16", 0, 65535)])
def test_whole_numbers_are_exact_and_keep_their_type(dtype, lo, hi):
    ids = np.array([[lo, 0, 1], [262, 50256 % (hi + 1), hi]])
    back = decode_tensor(encode_tensor(ids, dtype))
    assert back.dtype == np.dtype(dtype) and np.array_equal(back, ids)
    with pytest.raises(ValueError, match=f"{dtype} needs whole numbers from {lo} to {hi}"):
        encode_tensor([hi + 1], dtype)
    with pytest.raises(ValueError, match="whole numbers"):
        encode_tensor([1.5], dtype)


def test_encoding_is_little_endian_base64_of_the_dtype():
    encoded = encode_tensor([1.0, -2.0], "float16")
    assert encoded == {"dtype": "float16", "shape": [2], "data": base64.b64encode(b"\x00\x3c\x00\xc0").decode()}
    q = encode_tensor([[0.0, 1.0, 0.5]], "uint8")
    assert base64.b64decode(q["data"]) == bytes([0, 255, 128])
    assert q["shape"] == [1, 3] and encoded_size([1, 3], "uint8") == len(q["data"])


@pytest.mark.parametrize(
    ("array", "dtype", "message"),
    [
        ([1.0, 70000.0], "float16", "exceed float16's range"),
        ([1.0, float("nan")], "uint8", "needs finite values"),
        ([1.0, float("inf")], "uint8", "needs finite values"),
        ([[1.0, 2.0], [3.0]], "float16", "real numbers"),
        (["a", "b"], "float16", "real numbers"),
        ([1 + 2j], "float16", "complex"),
        ([1.0], "float64", "dtype must be one of float16, uint8"),
        ([1e39], "float32", "exceed float32's range"),
        ([float("nan")], "int32", "whole numbers"),
    ],
)
def test_bad_input_is_refused_with_a_reason(array, dtype, message):
    with pytest.raises(ValueError, match=message):
        encode_tensor(array, dtype)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"dtype": "int64", "shape": [1], "data": ""}, "unknown tensor dtype"),
        ({"dtype": "float16", "shape": [-1], "data": ""}, "non-negative integers"),
        ({"dtype": "float16", "shape": [3], "data": "AAAA"}, "needs 6"),
        ([1, 2], "a dict"),
    ],
)
def test_decoding_bad_input_names_the_problem(obj, message):
    with pytest.raises(ValueError, match=message):
        decode_tensor(obj)


def test_a_tensor_within_budget_is_not_thinned():
    values = np.arange(12.0).reshape(3, 4)
    fitted = fit_tensor(values, encoded_size((3, 4)))
    assert fitted["thinned"] is None and fitted["shape"] == [3, 4]
    assert np.array_equal(decode_tensor(fitted), values)


@settings(max_examples=80, deadline=None)
@given(
    st.integers(1, 60),
    st.integers(1, 9),
    st.sampled_from(["float16", "uint8"]),
    st.sampled_from(["stride", "head"]),
    st.integers(0, 2000),
)
def test_thinning_fits_the_budget_and_keeps_the_most_it_can(n, width, dtype, how, budget):
    values = np.arange(n * width, dtype=np.float64).reshape(n, width)
    per_row = encoded_size((1, width), dtype)
    if encoded_size((1, width), dtype) > budget:
        with pytest.raises(ValueError, match="cannot hold one slice"):
            fit_tensor(values, budget, dtype, how=how)
        return
    fitted = fit_tensor(values, budget, dtype, how=how)
    assert len(fitted["data"]) <= budget
    thinned = fitted["thinned"]
    if thinned is None:
        assert fitted["shape"] == [n, width]
        return
    kept = thinned["kept"]
    assert thinned["of"] == n and thinned["axis"] == 0 and thinned["how"] == how
    assert fitted["shape"] == [len(kept), width] and kept == sorted(set(kept))
    # One more row would not have fitted.
    assert encoded_size((len(kept) + 1, width), dtype) > budget
    assert per_row <= budget
    if how == "head":
        assert kept == list(range(len(kept)))
    else:
        assert kept[0] == 0 and (len(kept) == 1 or kept[-1] == n - 1)
    rows = decode_tensor(fitted)
    assert np.allclose(rows[:, 0], values[kept, 0], atol=(n * width) / 255)


def test_priority_keeps_the_highest_scores_in_order_along_any_axis():
    values = np.arange(24.0).reshape(2, 12)
    loss = np.array([0.1, 5.0, 0.2, 4.0, np.nan, 3.0, 0.3, 0.0, 9.0, 0.4, 0.5, 0.6])
    fitted = fit_tensor(values, encoded_size((2, 4)), axis=-1, priority=loss)
    assert fitted["thinned"] == {"axis": 1, "kept": [1, 3, 5, 8], "of": 12, "how": "priority"}
    assert np.array_equal(decode_tensor(fitted), values[:, [1, 3, 5, 8]])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": -1}, "non-negative whole number"),
        ({"budget": 10.5}, "non-negative whole number"),
        ({"budget": 100, "axis": 2}, "axis 2 is out of range"),
        ({"budget": 100, "how": "random"}, "how must be one of"),
        ({"budget": 100, "priority": [1.0, 2.0]}, "one score per index"),
    ],
)
def test_fit_tensor_refuses_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit_tensor(np.zeros((4, 3)), **kwargs)


def test_byte_budget_is_shared_and_reports_what_it_thinned():
    budget = ByteBudget(1000)
    small = budget.take("probs", np.ones((10, 10)), "uint8")  # 100 bytes -> 136 base64
    assert small["thinned"] is None and budget.spent == len(small["data"]) == 136
    big = budget.take("logits", np.ones((100, 10)), "float16")  # 2000 bytes: must thin
    assert len(big["data"]) <= 1000 - 136 and budget.left >= 0
    assert big["thinned"]["of"] == 100 and len(big["thinned"]["kept"]) == big["shape"][0]
    assert budget.thinned == [f"logits: {big['shape'][0]} of 100 kept to fit the response's byte budget"]
    with pytest.raises(ValueError, match="positive whole number"):
        ByteBudget(0)
