"""The Backprop page: train a small network live and see every number of every step.

settings.py  its settings table, limits and request bodies
run.py       the engine side: one run, its history, stepping back exactly
store.py     the runs in memory, by id
wire.py      a run's state as the page draws it (response models)
schema.py    the controls and maths tables the page reads first
routes.py    /api/backprop/...
"""

from ..pages import Page
from .routes import router

PAGE = Page("/backprop", "backprop.html", router)
