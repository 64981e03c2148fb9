"""The Steering page: build a direction from prompt pairs or a probe, add it while the model writes,
and measure its effect against a random direction of the same norm, and its cost."""

from ..pages import Page
from .routes import router

PAGE = Page("/steering", "steering.html", router)
