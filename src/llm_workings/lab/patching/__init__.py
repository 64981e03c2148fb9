"""The "Patching" page: a clean and a corrupted prompt, and which activations carry the difference.

Engine calls in compute.py (the analysis toolkit's sweeps, path patching, attribution patching and
ablation), the prompt pair and its metric in pair.py, presets with known answers in presets.py,
JSON in wire.py, routes in routes.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/patching", "patching.html", router)

__all__ = ["PAGE"]
