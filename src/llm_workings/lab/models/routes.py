"""The model catalog over HTTP: `GET /api/models` (the picker's list, with the cache's state) and
`GET /api/models/{id}` (one model's config and card metrics). Neither loads weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ..pages import reply
from .cache import MB, ModelCache
from .catalog import CatalogEntry
from .describe import NotAModel, describe

router = APIRouter(prefix="/api/models", tags=["models"])


class ModelStatus(CatalogEntry):
    loaded: bool = Field(description="in memory now")
    memory_bytes: int | None = Field(description="parameters plus buffers, once loaded")
    in_use: int = Field(description="requests holding it now")


class ModelListing(BaseModel):
    models: list[ModelStatus]
    budget_mb: float
    used_mb: float


class ModelDetail(ModelStatus):
    config: dict[str, Any] = Field(description="our TransformerConfig fields, or the Hugging Face config.json")
    metrics: dict[str, Any] = Field(description="what the model's card says was measured, if it has a card")
    reproduce: str | None = Field(description="the command that trains it, from the card")


def cache_of(request: Request) -> ModelCache:
    return request.app.state.models


def status(entry: CatalogEntry, usage: dict[str, Any]) -> ModelStatus:
    memory = usage["loaded"].get(entry.id)
    return ModelStatus(
        **entry.model_dump(), loaded=memory is not None, memory_bytes=memory, in_use=usage["held"].get(entry.id, 0)
    )


@router.get("", response_model=ModelListing)
def list_models(request: Request) -> Response:
    cache = cache_of(request)
    usage = cache.usage()
    listing = ModelListing(
        models=[status(e, usage) for e in cache.catalog()],
        budget_mb=usage["budget_bytes"] / MB,
        used_mb=round(usage["used_bytes"] / MB, 3),
    )
    return reply(listing)


@router.get("/{model_id}", response_model=ModelDetail)
def model_detail(model_id: str, request: Request) -> Response:
    cache = cache_of(request)
    entry = cache.entry(model_id)
    config: dict[str, Any] = {}
    card: dict[str, Any] = {}
    if Path(entry.location).is_dir():
        try:
            facts = describe(Path(entry.location))
            config, card = facts.config, facts.card
        except NotAModel:
            pass  # the entry's reason already says what is wrong
    metrics = card.get("metrics") if isinstance(card.get("metrics"), dict) else {}
    reproduce = card.get("reproduce") if isinstance(card.get("reproduce"), str) else None
    return reply(ModelDetail(**status(entry, cache.usage()).model_dump(), config=config, metrics=metrics, reproduce=reproduce))
