"""The "Saliency" page: the prompt with each token coloured by how much it contributes to a target,
by integrated gradients, gradient x input or attention rollout (a heuristic), one toggle apart.
Request body in settings.py, engine calls and JSON in wire.py, routes in routes.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/saliency", "saliency.html", router)

__all__ = ["PAGE"]
