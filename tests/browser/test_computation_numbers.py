"""Every number in the computation view is the engine's, for the same settings, seed and step."""

from __future__ import annotations

import math
from urllib.parse import parse_qs

import pytest
from browser_helpers import check_shown, engine_trace, engine_value, same_number

pytestmark = pytest.mark.browser

CASES = {
    # Two small hidden layers: whole matrices, with L2 and momentum in every update line.
    "full-matrices": dict(
        query="?dataset=moons&samples=40&hidden=3,2&regularization=l2&reg_rate=0.01&momentum=0.5&batch_size=8&seed=3&step=7",
        example=2,
        focus=None,
        fields={"W_before", "b_before", "z", "a", "dL_da", "dL_dz", "dL_dW", "dR_dW", "dL_db", "W_after", "b_after"},
    ),
    # A wide layer (one neuron followed), softmax with cross-entropy, L1.
    "one-neuron": dict(
        query="?dataset=noisy-xor&samples=60&noise=0.1&hidden=12&activation=relu&output=softmax&loss=cce"
        "&regularization=l1&reg_rate=0.001&batch_size=6&seed=5&step=4",
        example=3,
        focus=(0, 9),
        fields={"W_before", "b_before", "z", "a", "dL_da", "dL_dz", "dL_dW", "dR_dW", "dL_db", "W_after", "b_after"},
    ),
    # A saturated output: dL/da is infinite, sent as null and shown as ±∞.
    "saturated": dict(query="?learning_rate=50&seed=1&step=200", example=0, focus=None, fields={"dL_da", "dL_dz"}),
}


def settings_of(query: str) -> tuple[dict, int]:
    params = {k: v[0] for k, v in parse_qs(query[1:], keep_blank_values=True).items()}
    step = int(params.pop("step"))
    typed = {}
    for name, text in params.items():
        if name == "hidden":
            typed[name] = [int(t) for t in text.split(",") if t]
        elif name in ("dataset", "activation", "output", "loss", "regularization"):
            typed[name] = text
        else:
            typed[name] = float(text) if "." in text else int(text)
    return typed, step


@pytest.mark.parametrize("case", list(CASES))
def test_computation_view_shows_the_engines_trace(tab, case):
    c = CASES[case]
    tab.open(c["query"])
    if c["focus"]:
        layer, unit = c["focus"]
        tab.page.select_option(f".calc-forward .calc-block:nth-of-type({layer + 2}) .neuron-picker select", str(unit))
        tab.idle()
    tab.click(f'#examples button[data-example="{c["example"]}"]')
    assert tab.state()["trace"]["example"] == c["example"]

    settings, step = settings_of(c["query"])
    trace = engine_trace(settings, step)
    shown = tab.numbers("#computation") + tab.numbers("#examples")
    assert len(shown) > 40, f"only {len(shown)} numbers shown"
    seen_fields = set()
    for number in shown:
        expected = engine_value(trace, number["key"], c["example"])
        assert same_number(number["value"], expected), f"{number['key']}: page {number['value']}, engine {expected!r}"
        check_shown(number["text"], expected)
        if number["key"].startswith("layers."):
            seen_fields.add(number["key"].split(".")[2])
    assert c["fields"] <= seen_fields, f"missing {c['fields'] - seen_fields}"
    if case == "saturated":
        assert any(n["value"] == "null" and n["text"] == "±∞" for n in shown)
        assert not any(math.isinf(float(n["value"])) for n in shown if n["value"] != "null")
    if c["focus"]:
        layer, unit = c["focus"]
        assert any(n["key"] == f"layers.{layer}.z.{unit}" for n in shown), "the followed neuron's z is shown"
