"""The Steering page's routes, under /api/steering: its schema, the vector, two generations, a sweep.

Each route holds its model for the request, reads the prompt through lab/prompts.py and calls
compute.py. Vectors are cached by what built them, so moving the coefficient costs no rebuild.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ..pages import reply
from ..prompts import read_prompt, str_tokens
from . import compute
from .settings import MAX_NEW_TOKENS, PROBES, SETTINGS, SWEEP_POINTS, SteeringBody

router = APIRouter(prefix="/api/steering")


class VectorOut(BaseModel):
    hook: str
    d: int
    norm: float = Field(description="|vector| as built, before the coefficient")
    normalisation: str
    summary: str = Field(description="the vector's repr: every convention, in one line")
    metadata: dict[str, Any]


class Generation(BaseModel):
    ids: list[int]
    str_tokens: list[str]
    text: str


class GenerateOut(BaseModel):
    vector: VectorOut
    prompt_tokens: list[str]
    plain: Generation
    steered: Generation


class SweepOut(BaseModel):
    vector: VectorOut
    layer: int
    coefficients: list[float]
    behaviour: list[float] = Field(description="P(next token contains the target), steered by the vector")
    random_behaviour: list[float] = Field(description="the same, steered by a random vector of equal norm")
    perplexity: list[float] = Field(description="perplexity of the neutral text under the vector")
    random_perplexity: list[float]
    unsteered_behaviour: float
    unsteered_perplexity: float
    targets: int = Field(description="how many tokens contain the target text")


def _vector(vector: Any) -> VectorOut:
    meta = {k: v for k, v in vector.metadata.items() if isinstance(v, (int, float, str, bool))}
    return VectorOut(
        hook=vector.hook,
        d=vector.d,
        norm=float(vector.vector.norm()),
        normalisation=vector.normalisation,
        summary=repr(vector),
        metadata=meta,
    )


def _generation(held: Any, ids: list[int]) -> Generation:
    return Generation(ids=ids, str_tokens=str_tokens(held, ids), text=held.tokenizer.decode(ids))


@router.get("/schema")
def schema() -> dict[str, Any]:
    from ...sae.bundled import bundled_card, list_bundled

    return {
        "settings": SETTINGS.to_json(),
        "probes": {name: label for name, (_, label) in PROBES.items()},
        "saes": [
            {"name": name, "model": bundled_card(name)["model"], "hook": bundled_card(name)["hook_name"]}
            for name in list_bundled()
        ],
        "limits": {"new_tokens": MAX_NEW_TOKENS, "sweep_points": SWEEP_POINTS},
    }


@router.post("/generate", response_model=GenerateOut)
def generate(body: SteeringBody, request: Request) -> Response:
    settings = body.settings.model_dump()
    with request.app.state.models.hold(body.model) as held:
        vector = compute.build_vector(held, settings)
        prompt = read_prompt(held, body.prompt, max_tokens=held.model.cfg.n_ctx - settings["new_tokens"])
        plain, steered = compute.generate_pair(held, vector, prompt, settings)
        return reply(
            GenerateOut(
                vector=_vector(vector),
                prompt_tokens=prompt.str_tokens,
                plain=_generation(held, plain),
                steered=_generation(held, steered),
            )
        )


@router.post("/sweep", response_model=SweepOut)
def sweep(body: SteeringBody, request: Request) -> Response:
    settings = body.settings.model_dump()
    with request.app.state.models.hold(body.model) as held:
        vector = compute.build_vector(held, settings)
        prompt = read_prompt(held, body.prompt)
        result = compute.measure(held, vector, prompt, settings)
        return reply(
            SweepOut(
                vector=_vector(vector),
                layer=result.layers[0],
                coefficients=result.coefficients,
                behaviour=result.behaviour[0].tolist(),
                random_behaviour=result.random_behaviour[0].tolist(),
                perplexity=result.perplexity[0].tolist(),
                random_perplexity=result.random_perplexity[0].tolist(),
                unsteered_behaviour=result.unsteered_behaviour,
                unsteered_perplexity=math.exp(result.unsteered_loss),
                targets=len(compute.target_ids(held, settings["target"])),
            )
        )
