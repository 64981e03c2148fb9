"""The Features page's routes, under /api/features: the bundled SAEs, their latents, one latent's
dashboard, and the latents that fire on the learner's text.

Each route holds its model for the request and calls compute.py; a bad SAE name, a latent out of
range, or an SAE whose hook the model lacks is refused by name (field "sae" or "latent").
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ..jobs.routes import JobView
from ..pages import reply
from ..prompts import PromptIn, read_prompt
from ..settings import Body, Setting, SettingsTable
from . import compute, training

router = APIRouter(prefix="/api/features")


TRAIN_SETTINGS = SettingsTable(
    (
        Setting("layer", "int", 1, "Layer", "The SAE reads blocks.L.hook_resid_pre, the stream entering block L.", min=0, max=95),
        Setting("d_sae", "choice", "256", "Latents", "How many latents (d_sae).", choices=("128", "256", "512", "1024")),
        Setting("k", "int", 8, "k", "Latents kept per token (TopK).", min=1, max=64),
        Setting("steps", "int", 200, "Steps", "Adam updates, 512 activations each.", min=10, max=3000),
    )
)
TrainSettings = TRAIN_SETTINGS.model("SAETrainSettings")


class FeaturesBody(Body):
    model: str = Field(max_length=200)
    sae: str = Field(max_length=200)


class TrainBody(Body):
    model: str = Field(max_length=200)
    settings: TrainSettings = Field(default_factory=TrainSettings)


class DashboardBody(FeaturesBody):
    latent: int


class TextBody(FeaturesBody):
    prompt: PromptIn
    latent: int | None = None  # also send this latent's activation on every token


class LatentsOut(BaseModel):
    sae: str
    hook_name: str
    d_sae: int
    corpus_tokens: int = Field(description="tokens of held-out text the densities and dashboards read")
    density: list[float] = Field(description="per latent: the fraction of corpus tokens on which it is positive")
    max_activation: list[float] = Field(description="per latent: its largest activation on the corpus")


class ExampleOut(BaseModel):
    sequence: int
    position: int
    value: float
    start: int = Field(description="the window's first position in its sequence")
    token_ids: list[int]
    tokens: list[str]
    values: list[float] = Field(description="the latent's activation on each token of the window")


class QuantileOut(BaseModel):
    low: float
    high: float
    count: int = Field(description="corpus tokens whose activation is in (low, high]")
    examples: list[ExampleOut]


class LogitOut(BaseModel):
    token: str
    id: int
    value: float


class NeighbourOut(BaseModel):
    index: int
    cosine: float


class DashboardOut(BaseModel):
    """`sae.dashboard.LatentDashboard.to_dict()`, field for field."""

    result_type: str
    kind: str
    index: int
    hook_name: str
    density: float
    max_activation: float
    top_examples: list[ExampleOut]
    quantile_examples: list[QuantileOut]
    histogram: dict[str, list[float]] = Field(description="edges and counts of the positive activations")
    top_logits: list[LogitOut]
    bottom_logits: list[LogitOut]
    neighbours: list[NeighbourOut]
    tokens_seen: int
    notes: list[str]


class TokenLatents(BaseModel):
    latents: list[int] = Field(description="the latents firing on this token, strongest first")
    values: list[float]


class TextLatent(BaseModel):
    index: int
    max: float = Field(description="its largest activation on the text")
    position: int = Field(description="where that largest activation is")
    tokens: int = Field(description="how many of the text's tokens it fires on")


class TextOut(BaseModel):
    ids: list[int]
    str_tokens: list[str]
    per_token: list[TokenLatents]
    latents: list[TextLatent] = Field(description="every latent that fires on the text, by its largest activation")
    latent_values: list[float] | None = Field(None, description="the requested latent's activation on each token")


def _runs(request: Request) -> Any:
    return request.app.state.config.runs_dir


@router.get("/schema")
def schema(request: Request) -> dict[str, Any]:
    saes = [
        {
            "name": c["name"],
            "model": c["model"],
            "hook_name": c["hook_name"],
            "architecture": c["architecture"],
            "summary": c["summary"],
            "d_sae": c["sae_config"]["d_sae"],
            "k": c["sae_config"].get("k"),
            "metrics": {k: c["metrics"][k] for k in ("l0", "explained_variance", "ce_loss_score", "dead_fraction")},
        }
        for c in compute.cards(_runs(request))
    ]
    limits = {"corpus_tokens": compute.CORPUS_TOKENS, "text_top": compute.TEXT_TOP}
    return {"saes": saes, "limits": limits, "train_settings": TRAIN_SETTINGS.to_json()}


@router.post("/latents", response_model=LatentsOut)
def latents(body: FeaturesBody, request: Request) -> Response:
    with request.app.state.models.hold(body.model) as held:
        loaded = compute.corpus(held, body.sae, _runs(request))
        return reply(
            LatentsOut(
                sae=body.sae,
                hook_name=loaded.sae.cfg.hook_name,
                d_sae=loaded.sae.cfg.d_sae,
                corpus_tokens=loaded.tokens.numel(),
                density=loaded.density,
                max_activation=loaded.max_activation,
            )
        )


@router.post("/dashboard", response_model=DashboardOut)
def dashboard(body: DashboardBody, request: Request) -> Response:
    with request.app.state.models.hold(body.model) as held:
        return reply(DashboardOut.model_validate(compute.dashboard(held, body.sae, body.latent, _runs(request))))


@router.post("/text", response_model=TextOut)
def text(body: TextBody, request: Request) -> Response:
    with request.app.state.models.hold(body.model) as held:
        loaded = compute.corpus(held, body.sae, _runs(request))  # refuses a bad SAE before the prompt is read
        if body.latent is not None:
            compute.check_latent(loaded, body.sae, body.latent)
        prompt = read_prompt(held, body.prompt)
        acts = compute.on_text(held, body.sae, prompt.ids, _runs(request))  # [pos, d_sae]
        per_token = []
        for row in acts:
            values, indices = row.topk(min(compute.TEXT_TOP, row.numel()))
            keep = values > 0
            per_token.append(TokenLatents(latents=indices[keep].tolist(), values=values[keep].tolist()))
        peak, where = acts.max(0)
        counts = (acts > 0).sum(0)
        order = peak.argsort(descending=True)
        ranked = [
            TextLatent(index=i, max=float(peak[i]), position=int(where[i]), tokens=int(counts[i]))
            for i in order.tolist()
            if peak[i] > 0
        ]
        column = None if body.latent is None else acts[:, body.latent].tolist()
        return reply(
            TextOut(ids=prompt.ids, str_tokens=prompt.str_tokens, per_token=per_token, latents=ranked, latent_values=column)
        )


@router.post("/train", status_code=202, response_model=JobView)
def train(body: TrainBody, request: Request) -> JobView:
    """Start training a TopK SAE as a lab job; follow it at /api/jobs/{id} (its result names the SAE)."""
    settings = body.settings.model_dump()
    settings["d_sae"] = int(settings["d_sae"])
    with request.app.state.models.hold(body.model) as held:
        run, params = training.prepare(held, settings, _runs(request), request.app.state.jobs)
    job = request.app.state.jobs.submit(training.KIND, run, params)
    return JobView(**request.app.state.jobs.view(job.id))
