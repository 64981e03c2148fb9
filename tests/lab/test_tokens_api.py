"""The Tokens page's routes through the whole app: answers equal the engine's, bad requests a 4xx naming the field."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from llm_workings import zoo
from llm_workings.lab.server import create_app
from llm_workings.lab.tokens import compute
from llm_workings.lab.tokens.settings import MAX_TEXT_CHARS, MAX_TOKENS
from llm_workings.lab.wire import decode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "It is a truth universally acknowledged, that a single man"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


def test_the_schema_lists_the_settings_and_limits(client):
    schema = client.get("/api/tokens/schema").json()
    assert [s["name"] for s in schema["settings"]] == ["k", "temperature", "top_k", "top_p", "seed", "new_tokens"]
    assert schema["limits"] == {"text_chars": MAX_TEXT_CHARS, "tokens": MAX_TOKENS, "new_tokens": 200}


@pytest.mark.parametrize("model_id", ["shakespeare-char", "austen-bpe"])
def test_predict_sends_the_tokenizers_tokens_and_the_engines_numbers(client, model_id):
    answer = client.post("/api/tokens/predict", json={"model": model_id, "text": TEXT, "k": 4})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    model, tokenizer = zoo.load(model_id)
    ids = tokenizer.encode(TEXT)
    assert body["ids"] == ids and body["bos"] is False and body["k"] == 4 and body["thinned"] is None
    assert "".join(body["strings"]) == TEXT
    pred = compute.predict(model.eval(), ids, k=4)
    assert np.array_equal(decode_tensor(body["top_ids"]), pred.top_ids.numpy())
    assert np.array_equal(decode_tensor(body["top_probs"]), pred.top_probs.numpy())
    assert np.array_equal(decode_tensor(body["next_loss"]), pred.next_loss.numpy())
    assert np.array_equal(decode_tensor(body["surprise_bits"]), pred.surprise_bits.numpy())
    assert body["vocab"][str(ids[1])] == body["strings"][1] or str(ids[1]) not in body["vocab"]


def test_reshape_is_the_engines_and_a_position_past_the_text_is_refused(client):
    body = {"model": "austen-bpe", "text": TEXT, "position": 3, "temperature": 0.5, "top_p": 0.9, "k": 5}
    answer = client.post("/api/tokens/reshape", json=body)
    assert answer.status_code == 200, answer.text
    model, tokenizer = zoo.load("austen-bpe")
    logits = compute.logits_after(model.eval(), tokenizer.encode(TEXT)[:4])
    expected = compute.reshape(logits, 0.5, None, 0.9, k=5)
    got = answer.json()
    assert [a["id"] for a in got["alternatives"]] == expected.ids.tolist()
    assert [a["after"] for a in got["alternatives"]] == pytest.approx(expected.after.tolist(), abs=1e-6)
    assert got["kept"] == expected.kept and got["d_vocab"] == 4096
    refused = client.post("/api/tokens/reshape", json={**body, "position": 500})
    assert refused.status_code == 422 and refused.json()["field"] == "position"


def test_a_seed_reproduces_a_sample(client):
    body = {"model": "shakespeare-char", "text": "ROMEO:\n", "seed": 3, "temperature": 0.9, "new_tokens": 30}
    first, again = (client.post("/api/tokens/sample", json=body).json() for _ in range(2))
    other = client.post("/api/tokens/sample", json={**body, "seed": 4}).json()
    assert first == again and first["text"] != other["text"] and len(first["ids"]) == 30
    assert "".join(first["strings"]) == first["text"]


REFUSALS = [
    ({"model": "no-such-model", "text": "x"}, 404, "model"),
    ({"model": "induction-2l", "text": "x"}, 422, "model"),
    ({"model": "austen-bpe", "text": ""}, 400, "text"),
    ({"model": "austen-bpe", "text": 7}, 400, "text"),
    ({"model": "austen-bpe", "text": "x" * (MAX_TEXT_CHARS + 1)}, 400, "text"),
    ({"model": "shakespeare-char", "text": "é"}, 400, "text"),
    ({"model": "shakespeare-char", "text": "a" * (MAX_TOKENS + 1)}, 413, "text"),
    ({"model": "austen-bpe", "text": "x", "k": 0}, 400, "k"),
    ({"model": "austen-bpe", "text": "x", "k": 2.5}, 400, "k"),
    ({"model": "austen-bpe", "text": "x", "colour": "red"}, 400, "colour"),
    ({"text": "x"}, 400, "model"),
]


@pytest.mark.parametrize(("body", "status", "field"), REFUSALS)
def test_predict_refuses_bad_requests_naming_the_field(client, body, status, field):
    answer = client.post("/api/tokens/predict", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field and answer.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"temperature": -1}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"seed": -1}, "seed"),
        ({"new_tokens": 999}, "new_tokens"),
    ],
)
def test_sample_refuses_out_of_range_settings(client, body, field):
    answer = client.post("/api/tokens/sample", json={"model": "austen-bpe", "text": "x", **body})
    assert answer.status_code == 400 and answer.json()["field"] == field


def test_get_on_a_post_route_is_a_json_405(client):
    answer = client.get("/api/tokens/predict")
    assert answer.status_code == 405 and "POST" in answer.json()["error"]
