"""The Saliency page's route through the whole app: each method's scores are the engine's, the
completeness numbers are integrated gradients' own, and bad input is a 4xx naming the field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings.analysis import LogitDiff, NextTokenLoss, attention_rollout, gradient_x_input, integrated_gradients
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "Mr. Darcy and Miss Bennet."
IDS = [0, 109, 81, 65, 35, 109, 81, 65]


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


def run(client, **body):
    return client.post("/api/saliency/run", json=body)


def test_the_schema_lists_the_settings(client):
    names = [s["name"] for s in client.get("/api/saliency/schema").json()["settings"]]
    assert names == ["method", "target", "position", "answer", "wrong", "baseline", "steps"]


def test_the_pages_methods_are_the_engines():
    from llm_workings.analysis.saliency import METHODS as ENGINE_METHODS
    from llm_workings.lab.saliency.settings import METHODS

    assert METHODS == ENGINE_METHODS


def test_logit_difference_scores_are_the_engines(client, austen_model):
    answer = run(client, model="austen-bpe", prompt={"text": TEXT}, answer=" Darcy", wrong=" Bennet", position=-3, steps=16)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    tokens = torch.tensor([body["ids"]])
    ids = austen_model.tokenizer.encode(" Darcy") + austen_model.tokenizer.encode(" Bennet")
    assert [body["answer"]["id"], body["wrong"]["id"]] == ids and body["position"] == len(body["ids"]) - 3
    metric = LogitDiff(torch.tensor([ids]), position=body["position"])
    ig = integrated_gradients(austen_model, tokens, metric, steps=16)
    expected = {
        "integrated_gradients": ig,
        "gradient_x_input": gradient_x_input(austen_model, tokens, metric),
        "attention_rollout": attention_rollout(austen_model, tokens, position=body["position"]),
    }
    for name, result in expected.items():
        assert np.allclose(decode_tensor(body["methods"][name]["scores"]), result.scores[0].numpy(), atol=1e-6), name
        assert body["methods"][name]["heuristic"] == (name == "attention_rollout")
    integrated = body["integrated"]
    assert integrated["completeness_error"] == pytest.approx(ig.completeness_error, abs=1e-6)
    assert integrated["attribution_sum"] == pytest.approx(float(ig.scores.sum()), abs=1e-6)
    assert integrated["metric"] - integrated["baseline_metric"] + integrated["completeness_error"] == pytest.approx(
        integrated["attribution_sum"], abs=1e-5
    )


def test_the_loss_from_a_token_baseline(client, induction_model):
    body = run(client, model="induction-2l", prompt={"ids": IDS}, target="loss", baseline="0", steps=8).json()
    assert body["answer"] is None and body["integrated"]["baseline"] == "0"
    ig = integrated_gradients(induction_model, torch.tensor([IDS]), NextTokenLoss(torch.tensor([IDS])), baseline=0, steps=8)
    assert np.allclose(decode_tensor(body["methods"]["integrated_gradients"]["scores"]), ig.scores[0].numpy(), atol=1e-6)


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"model": "austen-bpe", "prompt": {"text": TEXT}, "answer": " Darcy Bennet"}, "answer", "is 2 tokens"),
        ({"model": "austen-bpe", "prompt": {"text": TEXT}, "baseline": "Miss Bennet"}, "baseline", "give one token"),
        ({"model": "induction-2l", "prompt": {"ids": IDS}, "baseline": "200"}, "baseline", "from 0 to 127"),
        ({"model": "induction-2l", "prompt": {"ids": IDS}, "position": 8}, "position", "8 is out of range"),
        ({"model": "induction-2l", "prompt": {"ids": IDS}, "steps": 0}, "steps", "between 1 and 256"),
        ({"model": "induction-2l", "prompt": {"ids": [5]}, "target": "loss"}, "prompt", "at least 2 tokens"),
        ({"model": "induction-2l", "prompt": {"ids": IDS}, "method": "gradient_x_input"}, "method", "unknown field"),
    ],
)
def test_bad_input_is_named(client, body, field, message):
    answer = run(client, **body)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["field"] == field and message in answer.json()["error"]
