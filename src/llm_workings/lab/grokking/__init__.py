"""The "Grokking" page: scrub through modadd-113's training (or any modular-addition run) and watch
it memorise, then build the Fourier circuit, then generalise, with Nanda et al.'s progress measures.
Engine side in compute.py, settings in settings.py, JSON in wire.py, routes in routes.py; the
snapshots come through lab/snapshots.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/grokking", "grokking.html", router)

__all__ = ["PAGE"]
