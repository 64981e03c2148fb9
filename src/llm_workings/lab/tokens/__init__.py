"""The "Tokens and predictions" page: a text as the model's tokens, its next-token distribution at
every position, and sampling from it. Engine side in compute.py, JSON in wire.py, routes in routes.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/tokens", "tokens.html", router)

__all__ = ["PAGE"]
