"""Models in the lab: the catalog the picker lists, a memory-bounded cache of loaded models, and their routes.

    cache = ModelCache(config)           # the server puts it on app.state.models
    cache.catalog()                      # [CatalogEntry(id="shakespeare-char", source="zoo", ...), ...]
    with cache.hold("austen-bpe") as held:
        held.model, held.tokenizer, held.entry
    app.include_router(router)           # GET /api/models, GET /api/models/{id}

catalog.py lists (reading small files only), cache.py loads and evicts, loader.py calls the engine's
loaders, tokenizer.py gives every tokenizer one interface, routes.py serves the catalog.
"""

from .cache import LoadedModel, ModelCache
from .catalog import CatalogEntry
from .routes import router
from .tokenizer import TextTokenizer, text_tokenizer

__all__ = ["CatalogEntry", "LoadedModel", "ModelCache", "TextTokenizer", "router", "text_tokenizer"]
