"""The Features page: a bundled sparse autoencoder's latents on its model, browsed by density or by
the learner's own text, each with the engine's dashboard (examples, histogram, logit effects, neighbours)."""

from ..pages import Page
from .routes import router

PAGE = Page("/features", "features.html", router)
