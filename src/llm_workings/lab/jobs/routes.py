"""The job API under /api/jobs: start, list, look at, stream and cancel long jobs.

    POST /api/jobs                  {"kind": "train", "recipe": "induction-2l", "overrides": {"steps": 300}}
                                    {"kind": "train", "resume": "induction-2l-run1"}   (see training.py)
                                    {"kind": "finetune", "settings": {...}}             (see finetuning.py)
    GET  /api/jobs                  every job the lab remembers, queued ones with their place
    GET  /api/jobs/{id}             one job: state, place, progress, metrics, result or error
    GET  /api/jobs/{id}/events      Server-Sent Events: "progress" per update, "state" on each change
    POST /api/jobs/{id}/cancel      a queued job leaves the queue; a running one stops at its next check
    POST /api/jobs/{id}/pause       a running job that can keep its work (training) stops with it kept

The routes read `app.state.jobs` (a JobManager) and `app.state.config` (its runs_dir).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, Field

from . import finetuning
from .events import job_events
from .manager import JobManager
from .training import TrainRequest, prepare

router = APIRouter(prefix="/api/jobs", tags=["jobs"])
JobId = Annotated[str, Path(pattern=r"^[0-9]{1,12}-[0-9a-f]{8}$", description="as POST /api/jobs returned it")]


class ProgressPoint(BaseModel):
    seq: int
    fraction: float
    message: str
    metrics: dict[str, Any]


class JobView(BaseModel):
    id: str
    kind: str
    params: dict[str, Any]
    state: str  # queued, running, done, cancelled, paused, failed
    place: int | None  # 1 = next to start; null unless queued
    fraction: float
    message: str
    metrics: dict[str, Any]
    result: Any
    error: str | None
    cancel_requested: bool
    pause_requested: bool = False
    seq: int  # progress points so far
    created: float
    started: float | None
    finished: float | None
    points: list[ProgressPoint] | None = None  # the progress so far, for a page drawing the whole curve


class JobList(BaseModel):
    jobs: list[JobView]
    max_running: int
    max_queued: int


def manager(request: Request) -> JobManager:
    return request.app.state.jobs


Jobs = Annotated[JobManager, Depends(manager)]


JobRequest = Annotated[TrainRequest | finetuning.FineTuneRequest, Field(discriminator="kind")]


@router.post("", status_code=202)
def start_job(body: Annotated[JobRequest, Body()], request: Request, jobs: Jobs) -> JobView:
    prepare_kind = finetuning.prepare if body.kind == finetuning.KIND else prepare
    run, params = prepare_kind(body, request.app.state.config.runs_dir, jobs)
    job = jobs.submit(body.kind, run, params)
    return JobView(**jobs.view(job.id))


@router.get("")
def list_jobs(jobs: Jobs) -> JobList:
    return JobList(jobs=[JobView(**view) for view in jobs.list()], max_running=jobs.max_running, max_queued=jobs.max_queued)


@router.get("/{job_id}")
def get_job(job_id: JobId, jobs: Jobs, points: bool = False) -> JobView:
    return JobView(**jobs.view(job_id, points_after=0 if points else None))


@router.post("/{job_id}/cancel")
def cancel_job(job_id: JobId, jobs: Jobs) -> JobView:
    return JobView(**jobs.cancel(job_id))


@router.post("/{job_id}/pause")
def pause_job(job_id: JobId, jobs: Jobs) -> JobView:
    return JobView(**jobs.pause(job_id))


def streamed_job(job_id: JobId, jobs: Jobs) -> str:
    jobs.view(job_id)  # a 404 must come before the stream starts, while a status can still be sent
    return job_id


@router.get("/{job_id}/events", response_class=EventSourceResponse)
async def job_event_stream(
    job_id: Annotated[str, Depends(streamed_job)],
    jobs: Jobs,
    last_event_id: Annotated[int | None, Header(ge=0, le=2**53)] = None,
) -> AsyncIterator[ServerSentEvent]:
    async for event in job_events(jobs, job_id, after=last_event_id or 0):
        yield event
