"""The "Train your own" page: pick a recipe, change its settings in a form built from its table, and
train it live as a job (lab/jobs/training.py), with pause, cancel and resume. Routes in routes.py."""

from ..pages import Page
from .routes import router

PAGE = Page("/train", "train.html", router)

__all__ = ["PAGE"]
