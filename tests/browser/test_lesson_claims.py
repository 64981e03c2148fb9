"""The lesson's reveals say what the engine does: each claim is checked on the run the page starts.

The experiments are read from backprop.html itself (each checkpoint's data-query and data-until,
each "try this" link), so the text and its tests cannot drift apart. No browser is needed.
"""

from __future__ import annotations

import html
import math
import re
from importlib import resources
from urllib.parse import parse_qs

import numpy as np
import pytest
from browser_helpers import engine_trace

from llm_workings.lab.backprop import wire
from llm_workings.lab.backprop.run import Run
from llm_workings.lab.backprop.settings import SETTINGS

PAGE = (resources.files("llm_workings.lab") / "static" / "backprop.html").read_text()


def settings_from(query: str) -> dict:
    out = {}
    for name, (text,) in parse_qs(html.unescape(query).lstrip("?"), keep_blank_values=True).items():
        kind = SETTINGS.by_name[name].kind
        if kind == "int_list":
            out[name] = [int(t) for t in text.split(",") if t]
        elif kind == "choice":
            out[name] = text
        else:
            out[name] = float(text) if kind == "float" else int(text)
    return out


def checkpoint(name: str) -> tuple[dict, int]:
    block = re.search(rf'id="checkpoint-{name}" data-query="([^"]*)" data-until="(\d+)"', PAGE)
    assert block, f"checkpoint {name} not in backprop.html"
    return settings_from(block.group(1)), int(block.group(2))


def link(text: str) -> tuple[dict, int | None]:
    found = re.search(rf'<a class="try" href="([^"]*)"([^>]*)>{re.escape(text)}</a>', PAGE)
    assert found, f"no try-this link {text!r}"
    until = re.search(r'data-until="(\d+)"', found.group(2))
    return settings_from(found.group(1)), int(until.group(1)) if until else None


def losses(settings: dict, steps: int) -> tuple[Run, list[float]]:
    run = Run(SETTINGS.validate(settings))
    run.advance(steps)
    return run, run.curves["train"]


def test_a_hundred_times_the_learning_rate_breaks_the_network_quietly():
    settings, until = checkpoint("learning-rate")
    assert settings["learning_rate"] == 50
    run, curve = losses(settings, until)
    assert run.error is None and run.step == until  # no divergence reported
    assert 0.6 < curve[0] < 0.8 and curve[3] > 30  # "within three steps ... from about 0.7 to over 30"
    assert min(curve[3:]) > 20  # "still above 20" at step 200, and at every step on the way
    assert wire.state(run, history=False)["metrics"]["train_accuracy"] == 0.5
    # See-saw between two values.
    assert curve[-1] == curve[-3] and curve[-2] == curve[-4] and curve[-1] != curve[-2]
    trace = engine_trace(settings, until)
    hidden, out = trace.layers[0], trace.layers[-1]
    assert np.all(np.abs(hidden.a) == 1.0)  # tanh saturated at exactly +-1
    assert np.all(hidden.dL_dz == 0.0)  # so no gradient gets through
    assert np.array_equal(hidden.W_after, hidden.W_before)  # the first layer stops changing
    assert np.all((out.a == 0.0) | (out.a == 1.0))  # the output is saturated too...
    assert not np.all(np.isfinite(out.dL_da))  # ...so dL/da is infinite


def test_learning_rate_five_rises_then_learns():
    settings, until = link("Try 5 instead")
    _, curve = losses(settings, until)
    assert max(curve[1:30]) > curve[0]
    assert curve[until] < 0.05


def test_without_a_hidden_layer_xor_is_out_of_reach():
    settings, until = checkpoint("no-hidden")
    assert settings["hidden"] == []
    run, curve = losses(settings, until)
    assert round(curve[-1], 4) == round(math.log(2), 4) == 0.6931
    outputs = wire.state(run, history=False)["xor"]["outputs"]
    assert max(abs(o - 0.5) for o in outputs) < 0.01
    assert max(float(np.abs(W).max()) for W in run.net.weights + run.net.biases) < 0.01
    settings, until = link("A hidden layer with a linear activation")
    _, curve = losses(settings, until)
    assert curve[-1] > 0.69


def test_strong_weight_decay_flips_and_grows_until_the_run_stops():
    settings, until = checkpoint("regularization")
    assert SETTINGS.validate(settings)["learning_rate"] == 0.5 and settings["reg_rate"] == 5
    run, _ = losses(settings, until)
    assert run.error is not None and run.error["cause"] == "regularization rate"
    assert run.error["step"] < 60  # "within a few dozen steps"
    settings, until = link("λ = 3")
    run, curve = losses(settings, until)
    assert run.error is None
    assert round(curve[-1], 4) == 0.6931
    assert max(float(np.abs(W).max()) for W in run.net.weights) < 1e-3


def test_try_this_claims():
    settings, until = link("ReLU instead of tanh")
    run, curve = losses(settings, until)
    metrics = wire.state(run, history=False)["metrics"]
    assert metrics["train_accuracy"] == 1.0 and curve[150] < 0.1  # "solved in about a hundred steps"

    settings, until = link("Linear output, squared error, learning rate 5")
    run, _ = losses(settings, until)
    assert run.error is not None and run.error["step"] < until

    settings, until = link("Noisy labels")
    run, _ = losses(settings, until)
    m = wire.state(run, history=False)["metrics"]
    assert m["clean_loss"] < 0.8 * m["test_loss"]


@pytest.mark.slow
def test_the_spiral_link_learns_the_spiral():
    settings, until = link("The spiral")
    run, _ = losses(settings, until)
    assert wire.state(run, history=False)["metrics"]["test_accuracy"] > 0.9
