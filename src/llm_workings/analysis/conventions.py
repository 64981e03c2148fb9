"""What every analysis agrees on: how tokens are checked, how components are named, the type
aliases they share, and the one error that bad input raises.

    tokens = check_tokens(model, tokens)            # [batch, pos] ids on the model's device
    component(model, "L1H2")                        # Component(part="head", layer=1, index=2)
    component(model, "L1H2.k", ("head input",), role="receiver")
    hook_name(model, ("resid_post", 1))             # "blocks.1.hook_resid_post", or a "did you mean"

Every bad argument to an analysis (tokens, hook names, layers, heads, shapes, options) raises
`AnalysisError`, a ValueError, with a message that names the problem and what was expected, so
the CLI and the lab can show it as it is.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, NamedTuple

import torch

from ..transformer.hooks import act_name

if TYPE_CHECKING:
    from ..transformer import Transformer

Position = int | torch.Tensor  # one position for every prompt, or one per prompt `[batch]`
Direction = Literal["denoise", "noise"]  # patch clean into corrupted, or corrupted into clean


class AnalysisError(ValueError):
    """Bad input to an analysis; the message says what was wrong and what was expected."""


# -- tokens ---------------------------------------------------------------------------------------
def check_tokens(model: Transformer, tokens: object, name: str = "tokens") -> torch.Tensor:
    """Token ids `[pos]` or `[batch, pos]` as `[batch, pos]` on the model's device, checked by the
    model itself (integer type, rank, and every id inside its vocabulary)."""
    try:
        return model.check_tokens(tokens)
    except (TypeError, ValueError) as e:
        raise AnalysisError(f"{name}: {e}") from None


def check_pair(model: Transformer, clean: object, corrupted: object) -> tuple[torch.Tensor, torch.Tensor]:
    """Clean and corrupted tokens, which must line up position by position, since patching swaps
    activations cell by cell."""
    clean, corrupted = check_tokens(model, clean, "clean tokens"), check_tokens(model, corrupted, "corrupted tokens")
    if clean.shape != corrupted.shape:
        raise AnalysisError(
            f"clean tokens {list(clean.shape)} and corrupted tokens {list(corrupted.shape)} must have "
            "the same [batch, pos] shape: patching swaps activations position by position"
        )
    return clean, corrupted


def check_direction(direction: object) -> Direction:
    if direction not in ("denoise", "noise"):
        raise AnalysisError(f"direction is 'denoise' (patch clean into corrupted) or 'noise' (the reverse); got {direction!r}")
    return direction


# -- layers, heads and other indices --------------------------------------------------------------
def check_index(what: str, value: object, size: int, label: str = "") -> int:
    """`value` as an index in [0, size), or an AnalysisError naming `what` (and the label it came from)."""
    where = f"{label}: " if label else ""
    try:
        value = operator.index(value)  # ints of Python, NumPy and 0-d tensors; not floats
    except TypeError:
        raise AnalysisError(f"{where}{what} must be a whole number in [0, {size}); got {value!r}") from None
    if not 0 <= value < size:
        raise AnalysisError(f"{where}{what} {value} is out of range [0, {size})")
    return value


def check_layers(model: Transformer, layers: Iterable[int] | None) -> list[int]:
    """The layers to sweep: all of them by default, else the given ones, each checked."""
    n_layers = model.cfg.n_layers
    layers = list(range(n_layers)) if layers is None else [int(layer) for layer in layers]
    bad = [layer for layer in layers if not 0 <= layer < n_layers]
    if bad:
        raise AnalysisError(f"layers must lie in [0, {n_layers}) for this {n_layers}-layer model; got {bad}")
    return layers


def hook_name(model: Transformer, spec: str | tuple[str, int]) -> str:
    """The full hook name for a short or a full one ("resid_post" with a layer as ("resid_post", 1),
    or "blocks.1.hook_resid_post"), checked against the model's hook points."""
    try:
        name = act_name(*spec) if isinstance(spec, tuple) else act_name(spec)
        model.hook_points(name)
    except KeyError as e:  # act_name and hook_points name close matches; keep their words
        raise AnalysisError(e.args[0] if e.args else f"no hook point {spec!r}") from None
    return name


# -- components -----------------------------------------------------------------------------------
PARTS = ("head", "neuron", "attn", "mlp")
FORMS = {  # what each form of label looks like, for messages
    "head": "a head 'L1H2'",
    "neuron": "an MLP neuron 'L0N17'",
    "attn": "a layer's attention output 'L0 attn'",
    "mlp": "an MLP 'L0 mlp'",
    "head input": "a head input 'L1H2.q' / '.k' / '.v'",
}
_LABEL = re.compile(r"^L(\d+)(?:H(\d+)(?:\.([qkv]))?|N(\d+)| (attn|mlp))$")


class Component(NamedTuple):
    """One named piece of the model: a head, an MLP neuron, a layer's whole attention or MLP output,
    or (with `input`) one input of a head: its query, key or value."""

    part: str  # "head", "neuron", "attn" or "mlp"
    layer: int
    index: int | None = None  # the head or the neuron
    input: str | None = None  # "q", "k" or "v" for a head's input

    @property
    def form(self) -> str:
        """The key of FORMS this component is written in."""
        return "head input" if self.input is not None else self.part

    @property
    def label(self) -> str:
        if self.part == "head":
            return f"L{self.layer}H{self.index}" + (f".{self.input}" if self.input is not None else "")
        if self.part == "neuron":
            return f"L{self.layer}N{self.index}"
        return f"L{self.layer} {self.part}"

    @property
    def hook(self) -> str:
        """The hook point that holds this component's activation."""
        if self.input is not None:
            return f"blocks.{self.layer}.attn.hook_{self.input}"
        return {
            "head": f"blocks.{self.layer}.attn.hook_z",
            "neuron": f"blocks.{self.layer}.mlp.hook_post",
            "attn": f"blocks.{self.layer}.hook_attn_out",
            "mlp": f"blocks.{self.layer}.hook_mlp_out",
        }[self.part]


def parse_component(target: object) -> Component | None:
    """A label ("L1H2", "L1H2.k", "L0N17", "L0 attn", "L0 mlp"), a tuple (part, layer[, index]) or a
    Component as a Component; None when it is none of these. Nothing is checked against a model."""
    if isinstance(target, Component):
        return target
    if isinstance(target, str):
        match = _LABEL.match(target.strip())
        if match is None:
            return None
        layer, head, which, neuron, whole = match.groups()
        if head is not None:
            return Component("head", int(layer), int(head), which)
        return Component("neuron", int(layer), int(neuron)) if neuron is not None else Component(whole, int(layer))
    if isinstance(target, tuple) and 2 <= len(target) <= 3 and target[0] in PARTS:
        return Component(*target)
    return None


def component(
    model: Transformer, target: object, allowed: tuple[str, ...] = PARTS, role: str = "component", also: tuple[str, ...] = ()
) -> Component:
    """Parse `target` (see `parse_component`), accept only the FORMS in `allowed`, and check that it
    exists in `model`. `role` and `also` (other accepted spellings, e.g. "'logits'") word the error."""
    comp = parse_component(target)
    if comp is None or comp.form not in allowed:
        choices = [FORMS[form] for form in allowed] + list(also)
        listed = choices[0] if len(choices) == 1 else f"{', '.join(choices[:-1])} or {choices[-1]}"
        raise AnalysisError(f"cannot read the {role} {target!r}; a {role} is {listed}")
    cfg = model.cfg
    check_index("layer", comp.layer, cfg.n_layers, comp.label)
    if comp.part in ("neuron", "mlp") and cfg.attn_only:
        raise AnalysisError(f"{comp.label}: this model is attention-only and has no MLPs")
    if comp.part == "head":
        kv = comp.input in ("k", "v")  # grouped-query attention has fewer key/value heads
        check_index("key/value head" if kv else "head", comp.index, cfg.n_kv_heads if kv else cfg.n_heads, comp.label)
    elif comp.part == "neuron":
        check_index("neuron", comp.index, cfg.d_mlp, comp.label)
    return comp
