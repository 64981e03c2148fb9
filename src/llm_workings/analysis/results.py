"""What every analysis returns: a small dataclass of tensors and labels that serializes to JSON
(for the lab and the CLI) and draws itself as a static figure (for reports and notebooks).

    result = logit_lens(model, tokens)
    result.to_dict()                  # plain lists and numbers, ready for json.dumps
    result.save_json("lens.json")     # written atomically
    result.plot("lens.png")           # or .svg; returns the matplotlib Figure

matplotlib is imported only when a figure is drawn, and only its object API is used (no pyplot),
so drawing works headless and leaves no global state behind.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..atomic import atomic_path, write_json
from .conventions import AnalysisError

FIGURE_FORMATS = (".png", ".svg")


def to_jsonable(value: Any) -> Any:
    """Tensors and arrays become nested lists; non-finite floats become None (JSON has no NaN)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        value = value.float() if value.is_floating_point() else value
        return to_jsonable(value.tolist())
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return to_jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


class Result:
    """Mixin for analysis dataclasses. Subclasses set `result_type` (what the JSON says it is, under
    the key "result_type") and implement `draw(fig)`."""

    result_type = "result"

    def to_dict(self) -> dict[str, Any]:
        return {"result_type": self.result_type, **to_jsonable(self)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def save_json(self, path: str | os.PathLike) -> Path:
        write_json(path, self.to_dict(), indent=None)  # one compact line, as to_json gives it
        return Path(path)

    def draw(self, fig: Any) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no figure")

    def plot(self, path: str | os.PathLike | None = None, size: tuple[float, float] = (7.0, 4.5)) -> Any:
        """Draw onto a new figure; with a path, also write it as PNG or SVG (by its suffix)."""
        fig = new_figure(size)
        self.draw(fig)
        if path is not None:
            save_figure(fig, path)
        return fig


def new_figure(size: tuple[float, float] = (7.0, 4.5)) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=size, layout="constrained")


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.suffix.lower() not in FIGURE_FORMATS:
        raise AnalysisError(f"a figure is written as {' or '.join(FIGURE_FORMATS)}; got {path.name!r}")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix[1:].lower(), dpi=120)
    return path


def heatmap(
    ax: Any,
    values: torch.Tensor,
    xlabels: list[str] | None = None,
    ylabels: list[str] | None = None,
    title: str = "",
    xlabel: str = "",
    ylabel: str = "",
    centered: bool = True,
    colorbar_label: str = "",
) -> Any:
    """A labelled 2-D heatmap; `centered` puts zero at white on a red-blue scale (for signed effects)."""
    data = values.detach().float().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values, float)
    if centered:
        bound = float(np.nanmax(np.abs(data))) if data.size and np.isfinite(data).any() else 1.0
        image = ax.imshow(data, cmap="RdBu", vmin=-bound or -1, vmax=bound or 1, aspect="auto")
    else:
        image = ax.imshow(data, cmap="viridis", aspect="auto")
    for labels, set_ticks, set_labels, n in (
        (xlabels, ax.set_xticks, ax.set_xticklabels, data.shape[1]),
        (ylabels, ax.set_yticks, ax.set_yticklabels, data.shape[0]),
    ):
        if labels is not None and len(labels) <= 64:
            set_ticks(range(n))
            set_labels(labels, fontsize=7 if n > 16 else 9, rotation=90 if labels is xlabels and n > 16 else 0)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.figure.colorbar(image, ax=ax, label=colorbar_label)
    return image
