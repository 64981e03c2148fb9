"""The "Attention heads" page: every head's pattern on the learner's prompt with the toolkit's scores,
one head in depth (its pattern, as a matrix and as lines; its QK and OV circuits) and how the model
encodes positions. Engine side in compute.py, JSON in wire.py, routes in routes.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/attention-heads", "attention-heads.html", router)

__all__ = ["PAGE"]
