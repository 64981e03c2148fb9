"""The Fine-tuning page's routes, under /api/fine-tuning. Starting, pausing, cancelling and resuming a
run go through the job API (`POST /api/jobs {"kind": "finetune", ...}`, lab/jobs/finetuning.py).

    GET  /api/fine-tuning/schema              the job's settings table, the λ stops, the queue's limits
    GET  /api/fine-tuning/runs                fine-tuning runs in the runs folder: finished or resumable
    GET  /api/fine-tuning/runs/{name}         a run's settings, base losses and evaluations so far
    POST /api/fine-tuning/generate            {"run", "prompt", "new_tokens", "temperature", "seed"}
    POST /api/fine-tuning/spectra             {"run"}: ΔW per module, with intruder dimensions
    POST /api/fine-tuning/lambda              {"run"}: both losses of θ_base + λ τ at each stop
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ..errors import ApiError
from ..jobs.finetuning import FOLDER, KIND, NAME_PATTERN, SETTINGS, finished, read_record
from ..jobs.manager import FINAL
from ..jobs.runs import history
from ..pages import reply
from ..prompts import PromptIn, read_prompt, str_tokens
from ..settings import Body, bounded_int
from .compute import LAMBDAS, generations, load_run

router = APIRouter(prefix="/api/fine-tuning")
RunName = Annotated[str, Path(pattern=NAME_PATTERN, description="a fine-tuning run's folder")]
MAX_NEW_TOKENS = 200


class RunBody(Body):
    run: str = Field(pattern=NAME_PATTERN)


class GenerateBody(RunBody):
    prompt: PromptIn
    new_tokens: bounded_int(1, MAX_NEW_TOKENS) = 80
    temperature: float = Field(0.8, ge=0.0, le=2.0)
    seed: bounded_int(0, 99999) = 0


class Generation(BaseModel):
    ids: list[int]
    text: str


class GenerateOut(BaseModel):
    run: str
    prompt: list[str]
    base: Generation
    tuned: Generation
    merged: Generation
    merged_is_tuned: bool  # full fine-tuning has no adapter to merge


class LambdaRow(BaseModel):
    scale: float
    target_val_loss: float
    original_val_loss: float


class LambdaOut(BaseModel):
    run: str
    rows: list[LambdaRow]


@router.get("/schema")
def schema(request: Request) -> dict[str, Any]:
    jobs = request.app.state.jobs
    return {
        "settings": SETTINGS.to_json(),
        "lambdas": list(LAMBDAS),
        "limits": {"max_new_tokens": MAX_NEW_TOKENS, "max_running": jobs.max_running, "max_queued": jobs.max_queued},
    }


@router.get("/runs")
def runs(request: Request) -> dict[str, Any]:
    folder = request.app.state.config.runs_dir / FOLDER
    training = {
        v["params"].get("name"): v["id"] for v in request.app.state.jobs.list() if v["kind"] == KIND and v["state"] not in FINAL
    }
    found = []
    for directory in sorted(folder.iterdir()) if folder.is_dir() else ():
        record = read_record(directory)
        if record is not None:
            found.append(
                {
                    "name": directory.name,
                    "settings": record["settings"],
                    "finished": finished(directory),
                    "job": training.get(directory.name),
                }
            )
    return {"runs": found}


@router.get("/runs/{name}")
def run_detail(name: RunName, request: Request) -> dict[str, Any]:
    directory = request.app.state.config.runs_dir / FOLDER / name
    record = read_record(directory) if directory.is_dir() else None
    if record is None:
        raise ApiError(f"no fine-tuning run {name!r} in the runs folder", 404, "name")
    done = history(directory)
    return {"name": name, "settings": record["settings"], "baseline": record["baseline"], "finished": finished(directory), **done}


def _run(request: Request, name: str) -> Any:
    return load_run(request.app.state.config.runs_dir / FOLDER / name)


@router.post("/generate", response_model=GenerateOut)
def generate(body: GenerateBody, request: Request) -> Response:
    run = _run(request, body.run)
    with request.app.state.models.hold(run.settings["model"]) as held:
        prompt = read_prompt(held, body.prompt)
        out = generations(run, prompt.ids, body.new_tokens, body.temperature, body.seed)
        shown = {k: Generation(ids=ids, text="".join(str_tokens(held, ids))) for k, ids in out.items()}
    return reply(GenerateOut(run=run.name, prompt=prompt.str_tokens, merged_is_tuned=run.adapter is None, **shown))


@router.post("/spectra")
def spectra(body: RunBody, request: Request) -> dict[str, Any]:
    run = _run(request, body.run)
    return {"run": run.name, **run.spectra()}


@router.post("/lambda", response_model=LambdaOut)
def task_vector(body: RunBody, request: Request) -> Response:
    run = _run(request, body.run)
    return reply(LambdaOut(run=run.name, rows=[LambdaRow(scale=s, **run.losses_at(s)) for s in LAMBDAS]))
