"""The "Inside a transformer" page: one forward pass walked through, stage by stage, for a chosen
position, layer and head, with every number the engine's cache. Engine side in compute.py, the
stages and their snippets in stages.py, JSON in wire.py, routes in routes.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/inside-a-transformer", "inside.html", router)

__all__ = ["PAGE"]
