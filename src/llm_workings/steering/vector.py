"""A steering vector: a direction, where it is added, how strongly, and how it was normalised.

    v = SteeringVector("blocks.2.hook_resid_pre", direction, coefficient=4.0, positions="generated")
    v                                   # its repr names the normalisation, e.g. "raw mean difference"
    v.save("runs/speaker")              # speaker/steering_vector.safetensors + steering_vector.json
    v = SteeringVector.load("runs/speaker")

The field's tools each take one convention silently (repeng: unit-norm PCA; CAA and steering-vectors:
the raw mean difference; SAE steering: a decoder row), so the coefficient means different things
in each. Here the convention travels with the vector and is printed with it.

Positions are absolute: "all", "prompt" (positions before the prompt's end), "generated" (from the
prompt's end on) or an int i (from position i on). `steer` (apply.py) keeps them absolute while
`generate` feeds one new token at a time through the KV cache.
"""

from __future__ import annotations

import json
import operator
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from ..analysis.conventions import AnalysisError, hook_name
from ..atomic import atomic_path, write_json

if TYPE_CHECKING:
    from ..transformer import Transformer

Positions = Literal["all", "prompt", "generated"] | int
Mode = Literal["add", "ablate"]
POSITION_MODES = ("all", "prompt", "generated")
MODES = ("add", "ablate")
TENSOR_FILE, META_FILE = "steering_vector.safetensors", "steering_vector.json"

# The hooks a steering vector can act on: one vector per position, and the width that vector has.
_WIDTHS = {
    "hook_embed": "d_model",
    "hook_pos_embed": "d_model",
    "hook_resid_pre": "d_model",
    "hook_attn_out": "d_model",
    "hook_resid_mid": "d_model",
    "hook_mlp_out": "d_model",
    "hook_resid_post": "d_model",
    "hook_normalized": "d_model",
    "hook_pre": "d_mlp",
    "hook_post": "d_mlp",
}


class SteeringError(AnalysisError):
    """Bad input to steering. An AnalysisError (so a ValueError), so the CLI and the lab show it as
    they show any analysis error; the message names the problem and what was expected."""


def check_positions(positions: object) -> Positions:
    if isinstance(positions, str) and positions in POSITION_MODES:
        return positions
    try:
        start = operator.index(positions)
    except TypeError:
        raise SteeringError(
            f"positions are 'all', 'prompt', 'generated' or a position i to steer from; got {positions!r}"
        ) from None
    if start < 0:
        raise SteeringError(f"positions from i need an absolute position i >= 0; got {start}")
    return start


def steering_hook(model: Transformer, hook: str | tuple[str, int]) -> str:
    """The full name of a hook point of `model` ("resid_pre" with a layer as ("resid_pre", 2))."""
    try:
        return hook_name(model, hook)
    except AnalysisError as e:
        raise SteeringError(str(e)) from None


def hook_width(model: Transformer, hook: str | tuple[str, int]) -> int:
    """The width of one position's activation at `hook` (d_model or d_mlp), or a SteeringError for
    hooks that are not one vector per position (attention patterns, per-head q/k/v/z)."""
    name = steering_hook(model, hook)
    leaf = name.rsplit(".", 1)[-1]
    if leaf not in _WIDTHS or leaf == "hook_normalized" and name.startswith("ln_final"):
        steerable = ", ".join(sorted(_WIDTHS))
        raise SteeringError(f"{name} cannot be steered: a steering vector needs one vector per position ({steerable})")
    return getattr(model.cfg, _WIDTHS[leaf])


@dataclass(repr=False)
class SteeringVector:
    """One direction added at one hook. `vector` `[d]` is stored as built; what is added at each
    chosen position is `coefficient * vector` ("add"), or for "ablate" the component along the
    direction is removed: x - coefficient * (x . u) u with u = vector / |vector| (coefficient 1
    leaves a zero projection)."""

    hook: str
    vector: torch.Tensor
    coefficient: float = 1.0
    positions: Positions = "all"
    mode: Mode = "add"
    normalisation: str = "as given"  # how `vector` was scaled: "raw mean difference", "unit norm (PCA)", ...
    metadata: dict[str, Any] = field(default_factory=dict)  # how it was built (pairs, layer, probe accuracy)

    def __post_init__(self) -> None:
        if not isinstance(self.vector, torch.Tensor) or self.vector.ndim != 1 or not self.vector.is_floating_point():
            shape = list(self.vector.shape) if isinstance(self.vector, torch.Tensor) else type(self.vector).__name__
            raise SteeringError(f"a steering vector is a float tensor [d]; got {shape}")
        if not torch.isfinite(self.vector).all():
            raise SteeringError("the steering vector has NaN or infinite entries")
        if self.mode not in MODES:
            raise SteeringError(f"mode is 'add' or 'ablate' (project the direction out); got {self.mode!r}")
        if self.mode == "ablate" and float(self.vector.norm()) == 0:
            raise SteeringError("cannot ablate along a zero vector: it has no direction")
        self.positions = check_positions(self.positions)
        self.coefficient = float(self.coefficient)
        self.vector = self.vector.detach()

    @property
    def d(self) -> int:
        return self.vector.shape[0]

    @property
    def layer(self) -> int | None:
        parts = self.hook.split(".")
        return int(parts[1]) if parts[0] == "blocks" else None

    def with_(self, **changes: Any) -> SteeringVector:
        """A copy with some fields changed: v.with_(coefficient=8, positions="generated")."""
        return replace(self, **changes)

    def check_for(self, model: Transformer) -> None:
        """Refuse a vector whose width does not match its hook on `model`."""
        width = hook_width(model, self.hook)
        if self.d != width:
            raise SteeringError(
                f"the steering vector has width {self.d}, but {self.hook} holds vectors of width {width} on this model"
            )

    def __repr__(self) -> str:
        where = self.positions if isinstance(self.positions, str) else f"from position {self.positions}"
        return (
            f"SteeringVector({self.hook}, d={self.d}, |vector|={float(self.vector.norm()):.4g} "
            f"({self.normalisation}), {self.mode} x {self.coefficient:g}, positions={where!r})"
        )

    # -- files --------------------------------------------------------------------------------------
    def save(self, directory: str | os.PathLike) -> Path:
        """Write the vector as safetensors and everything else as JSON, each file atomically."""
        from safetensors.torch import save_file

        directory = Path(directory)
        with atomic_path(directory / TENSOR_FILE) as tmp:
            save_file({"vector": self.vector.float().cpu().contiguous()}, tmp)
        meta = {k: getattr(self, k) for k in ("hook", "coefficient", "positions", "mode", "normalisation", "metadata")}
        write_json(directory / META_FILE, meta)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, device: Any = None) -> SteeringVector:
        from safetensors.torch import load_file

        directory = Path(directory)
        missing = [name for name in (TENSOR_FILE, META_FILE) if not (directory / name).is_file()]
        if missing:
            raise SteeringError(f"{directory} is not a saved steering vector: it lacks {', '.join(missing)}")
        meta = json.loads((directory / META_FILE).read_text())
        tensors = load_file(str(directory / TENSOR_FILE), device=str(device or "cpu"))
        if set(tensors) != {"vector"}:
            raise SteeringError(f"{directory / TENSOR_FILE} should hold one tensor 'vector'; it holds {sorted(tensors)}")
        return cls(vector=tensors["vector"], **meta)


def from_tensor(hook: str, vector: Any, normalise: bool = False, **fields: Any) -> SteeringVector:
    """A steering vector from any tensor `[d]`, as given or scaled to unit norm."""
    vector = torch.as_tensor(vector).detach().float()
    if normalise:
        norm = float(vector.norm())
        if norm == 0:
            raise SteeringError("cannot scale a zero vector to unit norm")
        vector = vector / norm
    return SteeringVector(hook, vector, normalisation="unit norm" if normalise else "as given", **fields)


def from_decoder_row(hook: str, row: Any, **fields: Any) -> SteeringVector:
    """A steering vector from one SAE latent's decoder row `W_dec[latent]` `[d]`, unscaled: the SAE
    convention, in which the coefficient is in units of that latent's activation."""
    row = torch.as_tensor(row).detach().float()
    return SteeringVector(hook, row, normalisation="SAE decoder row", **fields)
