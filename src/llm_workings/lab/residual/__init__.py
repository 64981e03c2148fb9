"""The "Residual stream" page: the logit lens as a layer x position table, the stream decomposed
into each component's direct contribution to a logit difference, and the size of each component's
write. Engine side in compute.py, request bodies in settings.py, JSON in wire.py, routes in routes.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/residual-stream", "residual.html", router)

__all__ = ["PAGE"]
