"""The Train page's routes, under /api/train: the recipes' settings tables, a settings check, the
runs that can resume and what they have done. Starting, pausing, cancelling and resuming a run go
through the job API (/api/jobs, see lab/jobs/routes.py), which every page shares.

    GET  /api/train/schema                   each recipe's summary and settings table; the queue's limits
    POST /api/train/check                    {"recipe", "overrides"}: the clean settings and any warnings
    GET  /api/train/runs                     unfinished lab runs in the runs folder, each resumable
    GET  /api/train/runs/{name}/history      a run's loss at every step and its evaluations so far
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from ..errors import ApiError
from ..jobs.manager import FINAL
from ..jobs.recipe_settings import LAB_RECIPES, MAX_STEPS, LabRecipe, recipe_table, warnings
from ..jobs.runs import history, read_record, resumable
from ..jobs.training import KIND, NAME_PATTERN, resolve
from ..pages import reply

router = APIRouter(prefix="/api/train")
RunName = Annotated[str, Path(pattern=NAME_PATTERN, description="a run's folder in the runs folder")]


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipe: LabRecipe = "induction-2l"
    overrides: dict[str, Any] = Field(default_factory=dict)


class CheckOut(BaseModel):
    recipe: str
    overrides: dict[str, Any]  # as the job will train them, with what they imply (p sets d_vocab)
    train: dict[str, Any]  # the recipe's whole training table after them
    model: dict[str, Any]
    data: dict[str, Any]
    warnings: list[dict[str, str]]


class RunHistory(BaseModel):
    name: str
    step: int
    losses: list[float]
    evals: list[dict[str, float]]


@router.get("/schema")
def schema(request: Request) -> dict[str, Any]:
    from ...zoo.recipes import RECIPES

    jobs = request.app.state.jobs
    return {
        "recipes": [
            {"name": name, "task": RECIPES[name].task, "summary": RECIPES[name].summary, "settings": recipe_table(name).to_json()}
            for name in LAB_RECIPES
        ],
        "limits": {"max_steps": MAX_STEPS, "max_running": jobs.max_running, "max_queued": jobs.max_queued},
    }


@router.post("/check", response_model=CheckOut)
def check(body: CheckBody) -> Response:
    recipe, overrides = resolve(body.recipe, body.overrides)
    return reply(
        CheckOut(
            recipe=recipe.name,
            overrides=overrides,
            train=recipe.train,
            model=recipe.model,
            data=recipe.data,
            warnings=warnings(recipe.name, overrides),
        )
    )


@router.get("/runs")
def runs(request: Request) -> dict[str, Any]:
    jobs = request.app.state.jobs
    training = {v["params"].get("name"): v["id"] for v in jobs.list() if v["kind"] == KIND and v["state"] not in FINAL}
    found = [{**run, "job": training.get(run["name"])} for run in resumable(request.app.state.config.runs_dir)]
    return {"runs": found}


@router.get("/runs/{name}/history", response_model=RunHistory)
def run_history(name: RunName, request: Request) -> Response:
    directory = request.app.state.config.runs_dir / name
    if not directory.is_dir() or read_record(directory) is None:
        raise ApiError(f"no lab run {name!r} in the runs folder", 404, "name")
    return reply(RunHistory(name=name, **history(directory)))
