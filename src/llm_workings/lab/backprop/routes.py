"""The Backprop page's routes, under /api/backprop: a run's life from creation to deletion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from ..pages import reply
from ..settings import omittable
from . import wire
from .run import Run
from .schema import Schema, schema
from .settings import SETTINGS, Back, CreateRun, SetLive, Step, View
from .store import RunStore

router = APIRouter(prefix="/api/backprop")
RUNS = RunStore()
SCHEMA = schema()


@router.get("/schema", response_model=Schema)
def get_schema() -> Response:
    return reply(SCHEMA)


@router.post("/runs", status_code=201, response_model=wire.CreatedRun)
def create_run(body: omittable(CreateRun)) -> Response:
    run = Run(body.settings.model_dump())
    with run.lock:
        run.replay(body.step, body.changes)
        RUNS.add(run)
        state = wire.state(run, body.example, body.history)
        return reply(wire.CreatedRun(**state, data=wire.data(run), run_settings=run.settings), 201)


def _answer(run: Run, view: View) -> Response:
    return reply(wire.RunState(**wire.state(run, view.example, view.history)))


@router.post("/runs/{run_id}/step", response_model=wire.RunState)
def step(run_id: str, body: omittable(Step)) -> Response:
    run = RUNS.get(run_id)
    with run.lock:
        run.advance(body.steps)
        return _answer(run, body)


@router.post("/runs/{run_id}/back", response_model=wire.RunState)
def back(run_id: str, body: omittable(Back)) -> Response:
    run = RUNS.get(run_id)
    with run.lock:
        run.back(body.steps)
        return _answer(run, body)


@router.post("/runs/{run_id}/set", response_model=wire.RunState)
def set_live(run_id: str, body: omittable(SetLive)) -> Response:
    run = RUNS.get(run_id)
    with run.lock:
        run.set_live(body.settings.model_dump(exclude_unset=True))
        return _answer(run, body)


@router.get("/runs/{run_id}", response_model=wire.RunState)
def get_run(
    run_id: str,
    example: Annotated[int, Query(ge=0, le=SETTINGS.by_name["batch_size"].max)] = 0,
    history: Annotated[int, Query(ge=0, le=1)] = 1,
) -> Response:
    run = RUNS.get(run_id)
    with run.lock:
        return _answer(run, View(example=example, history=bool(history)))


@router.get("/runs/{run_id}/data", response_model=wire.Data)
def get_data(run_id: str) -> Response:
    return reply(wire.Data(**wire.data(RUNS.get(run_id))))


@router.get("/runs/{run_id}/export", response_model=wire.Export)
def export_run(run_id: str) -> Response:
    run = RUNS.get(run_id)
    with run.lock:
        return reply(wire.Export(**wire.export(run)))


@router.delete("/runs/{run_id}", response_model=wire.Deleted)
def delete_run(run_id: str) -> Response:
    RUNS.remove(run_id)
    return reply(wire.Deleted(deleted=run_id))
