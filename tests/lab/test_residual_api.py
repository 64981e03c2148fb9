"""The Residual stream page's route through the whole app: every number equals the toolkit's (logit
lens, direct logit attribution, the cache's decomposition), the parts add up to the logit
difference, and bad input is a 4xx naming the field before anything is drawn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings.analysis import direct_logit_attribution, logit_lens
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "Mr. Darcy and Miss Bennet. Mr. Darcy and Miss"
INDUCTION_IDS = [5, 17, 40, 99, 3, 64, 5, 17, 40, 99, 3]


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


def run(client, **body):
    return client.post("/api/residual/run", json=body)


def test_the_schema_lists_the_settings(client):
    names = [s["name"] for s in client.get("/api/residual/schema").json()["settings"]]
    assert names == ["target", "colour", "k", "layer", "position", "answer", "wrong", "split"]


def test_austen_lens_bars_and_norms_are_the_toolkits(client, austen_model):
    answer = run(client, model="austen-bpe", prompt={"text": TEXT}, layer=2, position=3, k=4, split="heads")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    tokens = torch.tensor([body["ids"]])
    lens = logit_lens(austen_model, tokens, top_k=4)
    assert body["lens"]["labels"] == lens.labels and body["layer"] == 2 and body["position"] == 3
    assert np.array_equal(decode_tensor(body["lens"]["top_ids"]), lens.top_tokens[:, 0, :, 0].numpy())
    assert np.array_equal(decode_tensor(body["lens"]["top_probs"]), lens.top_probs[:, 0, :, 0].numpy())
    assert np.array_equal(decode_tensor(body["lens"]["target_rank"]), lens.target_rank[:, 0].numpy())
    assert [t["id"] for t in body["lens"]["cell"]] == lens.top_tokens[2, 0, 3].tolist()

    parts = body["decompose"]
    with torch.no_grad():
        logits = austen_model(tokens)[0, 3]
    assert [parts["answer"]["id"], parts["wrong"]["id"]] == logits.topk(2).indices.tolist()
    dla = direct_logit_attribution(
        austen_model, tokens, torch.tensor([[parts["answer"]["id"], parts["wrong"]["id"]]]), position=3
    )
    assert [b["label"] for b in parts["bars"]] == dla.labels
    assert np.allclose([b["value"] for b in parts["bars"]], dla.values[:, 0].numpy(), atol=1e-6)
    assert parts["sum"] == pytest.approx(parts["actual"], abs=1e-4)
    assert parts["actual"] == pytest.approx(float(logits[parts["answer"]["id"]] - logits[parts["wrong"]["id"]]), abs=1e-5)

    _, cache = austen_model.run_with_cache(tokens)
    stack = cache.decompose_resid()[:, 0].norm(dim=-1)
    assert body["norms"]["labels"][:4] == ["embed", "pos_embed", "L0 attn", "L0 mlp"]
    assert np.allclose(decode_tensor(body["norms"]["norms"]), stack.numpy(), rtol=1e-5)


def test_layers_split_sums_each_layers_heads(client):
    heads = run(client, model="induction-2l", prompt={"ids": INDUCTION_IDS}, split="heads").json()["decompose"]
    layers = run(client, model="induction-2l", prompt={"ids": INDUCTION_IDS}).json()["decompose"]
    by_head = {b["label"]: b["value"] for b in heads["bars"]}
    by_layer = {b["label"]: b["value"] for b in layers["bars"]}
    assert list(by_layer) == ["embed", "L0 attn", "L1 attn"] + (["ln_final bias"] if "ln_final bias" in by_head else [])
    for layer in range(2):
        summed = sum(v for k, v in by_head.items() if k.startswith(f"L{layer}H") or k == f"L{layer} attn bias")
        assert by_layer[f"L{layer} attn"] == pytest.approx(summed, abs=1e-5)
    assert layers["sum"] == pytest.approx(layers["actual"], abs=1e-4)


def test_a_chosen_target_colours_every_column(client, induction_model):
    body = run(client, model="induction-2l", prompt={"ids": INDUCTION_IDS}, target="40", colour="rank").json()
    assert body["lens"]["target"] == [40] * len(INDUCTION_IDS) and body["lens"]["target_text"] == "40"
    lens = logit_lens(induction_model, torch.tensor([INDUCTION_IDS]), target=torch.full((1, len(INDUCTION_IDS)), 40))
    assert np.array_equal(decode_tensor(body["lens"]["target_prob"]), lens.target_prob[:, 0].numpy())


@pytest.mark.parametrize(
    "body, field, message",
    [
        ({"model": "austen-bpe", "prompt": {"text": TEXT}, "answer": " Darcy Bennet"}, "answer", "is 2 tokens"),
        ({"model": "austen-bpe", "prompt": {"text": TEXT}, "target": "Elizabeth Bennet"}, "target", "give one token"),
        ({"model": "induction-2l", "prompt": {"ids": INDUCTION_IDS}, "wrong": "x"}, "wrong", "give an id from 0 to 127"),
        (
            {"model": "induction-2l", "prompt": {"ids": INDUCTION_IDS}, "layer": 3},
            "layer",
            "layer 3 is out of range: induction-2l has 3 residual streams (-3 to 2)",
        ),
        ({"model": "induction-2l", "prompt": {"ids": INDUCTION_IDS}, "position": 11}, "position", "11 is out of range"),
        ({"model": "induction-2l", "prompt": {"ids": INDUCTION_IDS}, "answer": "5", "wrong": "5"}, "wrong", "same token"),
        ({"model": "induction-2l", "prompt": {"ids": list(range(50))}}, "prompt", "reads at most 49 tokens"),
        ({"model": "induction-2l", "prompt": {"ids": INDUCTION_IDS}, "split": "neurons"}, "split", "['layers', 'heads']"),
    ],
)
def test_bad_input_is_named(client, body, field, message):
    answer = run(client, **body)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.json()["field"] == field and message in answer.json()["error"]
