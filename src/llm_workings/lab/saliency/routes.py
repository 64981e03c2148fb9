"""The Saliency page's routes, under /api/saliency: its schema, and every method's scores for one prompt.

Every check (prompt, position, answer tokens, baseline) runs before anything is computed, so a
refused request draws nothing; the three methods then run on the same model, prompt and target.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..errors import ApiError
from ..pages import reply
from ..prompts import read_prompt, read_token
from . import wire
from .settings import MAX_POSITIONS, SETTINGS, SaliencyBody

router = APIRouter(prefix="/api/saliency")


@router.get("/schema")
def schema() -> dict[str, Any]:
    return {"settings": SETTINGS.to_json(), "limits": {"positions": MAX_POSITIONS}}


@router.post("/run", response_model=wire.SaliencyOut)
def run(body: SaliencyBody, request: Request) -> Response:
    import torch

    from ...analysis import LogitDiff, NextTokenLoss, attention_rollout, gradient_x_input, integrated_gradients

    with request.app.state.models.hold(body.model) as held:
        model = held.model
        prompt = read_prompt(held, body.prompt, max_tokens=MAX_POSITIONS)
        n_pos = len(prompt.ids)
        if not -n_pos <= body.position < n_pos:
            raise ApiError(
                f"position {body.position} is out of range: the prompt has {n_pos} tokens ({-n_pos} to {n_pos - 1})",
                status=422,
                field="position",
            )
        if body.target == "loss" and n_pos < 2:
            raise ApiError("the loss needs a prompt of at least 2 tokens: one to predict from, one to predict", field="prompt")
        position = body.position % n_pos
        baseline = "zero" if body.baseline.strip() == "zero" else read_token(held, body.baseline, "baseline")
        tokens = prompt.tensor(model.W_E.device)
        text = held.tokenizer.token_text if held.tokenizer is not None else (lambda ids: [str(i) for i in ids])
        answer = wrong = None
        with held.lock:
            if body.target != "loss":
                with torch.no_grad():
                    top, second = model(tokens)[0, position].topk(2).indices.tolist()
                answer = read_token(held, body.answer, "answer") if body.answer else top
                if body.target == "logit_diff":
                    wrong = read_token(held, body.wrong, "wrong") if body.wrong else (second if answer == top else top)
                    if answer == wrong:
                        raise ApiError("the answer and the wrong answer are the same token: their difference is 0", field="wrong")
            if body.target == "loss":
                metric = NextTokenLoss(tokens)
            else:
                metric = LogitDiff(torch.tensor([[answer, wrong]] if wrong is not None else [answer]), position=position)
            ig = integrated_gradients(model, tokens, metric, baseline=baseline, steps=body.steps)
            gxi = gradient_x_input(model, tokens, metric)
            rollout = attention_rollout(model, tokens, position=position if body.target != "loss" else n_pos - 1)
        return reply(
            wire.SaliencyOut(
                model=body.model,
                ids=prompt.ids,
                str_tokens=prompt.str_tokens,
                target=body.target,
                position=position,
                answer=None if answer is None else wire.Token(id=answer, text=text([answer])[0]),
                wrong=None if wrong is None else wire.Token(id=wrong, text=text([wrong])[0]),
                methods={r.method: wire.method_out(r) for r in (ig, gxi, rollout)},
                integrated=wire.IntegratedOut(
                    steps=ig.steps,
                    baseline="zero" if baseline == "zero" else text([baseline])[0],
                    metric=ig.metric,
                    baseline_metric=ig.baseline_metric,
                    attribution_sum=float(ig.scores.sum()),
                    completeness_error=ig.completeness_error,
                    relative_error=ig.relative_error,
                ),
            )
        )
