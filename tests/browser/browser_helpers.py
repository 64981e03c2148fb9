"""What the browser tests compare the page against: the engine's own trace, and the display rule."""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from llm_workings.lab.backprop.run import dataset_for, trainer_for
from llm_workings.lab.backprop.settings import SETTINGS
from llm_workings.nn import StepTrace

PER_EXAMPLE = {"z", "a", "dL_da", "dL_dz"}  # trace fields with one row per batch example
SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def engine_trace(settings: dict, step: int) -> StepTrace:
    """The trace of step `step` for these settings, built the way the lab's Run builds its run."""
    s = SETTINGS.validate(settings)
    trainer = trainer_for(s, dataset_for(s))
    for _ in range(step - 1):
        trainer.step()
    return trainer.step(trace=True)


def engine_value(trace: StepTrace, key: str, row: int) -> float:
    """The number a page key names, read from the engine's trace for batch row `row`."""
    head, *rest = key.split(".")
    if head == "layers":
        layer = trace.layers[int(rest[0])]
        values = getattr(layer, rest[1])
        if rest[1] in PER_EXAMPLE:
            values = values[row]
        return float(values[tuple(int(i) for i in rest[2:])])
    if head in ("x", "y"):
        return float((trace.X if head == "x" else trace.Y)[row][int(rest[0])])
    if head in ("batch_X", "batch_Y"):
        return float((trace.X if head == "batch_X" else trace.Y)[int(rest[0])][int(rest[1])])
    if head == "batch_size":
        return float(len(trace.batch_indices))
    return float(getattr(trace, head))  # step, data_loss, reg_loss, loss, learning_rate, momentum, reg_rate


def parse_shown(text: str) -> float:
    """'−1.234×10⁻⁷' -> -1.234e-07."""
    text = text.replace("−", "-")
    if "×10" in text:
        mantissa, exponent = text.split("×10")
        return float(f"{mantissa}e{exponent.translate(SUPERSCRIPTS)}")
    return float(text)


def check_shown(text: str, value: float) -> None:
    """`text` is `value` as the lab prints it: exact for small integers, else 4 significant digits."""
    if not math.isfinite(value):
        assert text in ("±∞", "∞", "−∞"), f"{value} shown as {text!r}"
        return
    if value.is_integer() and abs(value) < 1e4:
        assert text == str(int(value)).replace("-", "−"), f"{value} shown as {text!r}"
        return
    mantissa = text.replace("−", "").split("×")[0]
    digits = mantissa.replace(".", "").lstrip("0")
    assert len(digits) == 4, f"{value} shown as {text!r}: expected 4 significant digits"
    shown = parse_shown(text)
    magnitude = math.floor(math.log10(abs(value)))
    assert abs(shown - value) <= 0.5 * 10 ** (magnitude - 3) * (1 + 1e-9), f"{value} shown as {text!r}"


def same_number(page_value: str, engine: float) -> bool:
    if page_value == "null":
        return not math.isfinite(engine)
    return math.isclose(float(page_value), engine, rel_tol=1e-12, abs_tol=1e-12)


def is_local(url: str) -> bool:
    """A request that stays on this machine: http(s) to 127.0.0.1, or data:/blob: from it."""
    parts = urlsplit(url)
    if parts.scheme == "data":
        return True
    if parts.scheme == "blob":
        return is_local(url[len("blob:") :])
    return parts.scheme in ("http", "https", "ws", "wss") and parts.hostname == "127.0.0.1"
