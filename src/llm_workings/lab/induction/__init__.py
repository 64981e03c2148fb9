"""The "Induction heads form" page: scrub through induction-2l's training (or any run of an induction
recipe) and watch a previous-token head and an induction head appear together as the loss on the
repeated half drops. Engine side in compute.py, settings in settings.py, JSON in wire.py, routes in
routes.py; the snapshots come through lab/snapshots.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/induction-heads", "induction.html", router)

__all__ = ["PAGE"]
