"""GET /api/models and /api/models/{id}, on a bare FastAPI app with the router and the cache (as
create_app wires them); a probe route stands in for a page that holds models."""

from __future__ import annotations

import threading

import pytest
import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.testclient import TestClient
from models_helpers import build_our_model

from llm_workings import zoo
from llm_workings.lab.config import LabConfig
from llm_workings.lab.errors import ApiError
from llm_workings.lab.models import ModelCache, router

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = {"shakespeare-char": "To be, or not to be", "austen-bpe": "It is a truth universally acknowledged"}


def make_app(config: LabConfig) -> FastAPI:
    app = FastAPI()
    app.state.models = ModelCache(config)
    app.include_router(router)

    @app.exception_handler(ApiError)
    def api_error(request: Request, e: ApiError) -> JSONResponse:
        return JSONResponse({"error": str(e), "field": e.field}, status_code=e.status)

    @app.get("/probe/{model_id}")
    def probe(model_id: str, text: str, request: Request) -> dict:
        """What a page does: hold the model, tokenize, run it with hooks, answer from this request's data only."""
        with request.app.state.models.hold(model_id) as held, held.lock, torch.no_grad():
            if held.tokenizer is None:
                raise ApiError(f"{model_id} has no text tokenizer", field="model")
            ids = held.tokenizer.encode(text)
            logits, cache = held.model.run_with_cache(torch.tensor([ids]), names_filter=lambda name: "resid_post" in name)
            return {"ids": ids, "top": logits[0].argmax(-1).tolist(), "layers": len(cache)}

    return app


@pytest.fixture
def client(tmp_path):
    return TestClient(make_app(LabConfig(runs_dir=tmp_path, models=(str(tmp_path / "nowhere"),))))


def test_the_listing_has_every_model_and_the_budget(client):
    body = client.get("/api/models").json()
    ids = [m["id"] for m in body["models"]]
    assert ids == ["austen-bpe", "induction-2l", "modadd-113", "shakespeare-char", "cli.nowhere"]
    assert body["budget_mb"] == 2048 and body["used_mb"] == 0
    first = body["models"][0]
    assert {"label", "source", "task", "has_tokenizer", "parameters", "n_layers", "description", "available"} <= set(first)
    assert "format" not in first and "stamp" not in first  # internal to the cache
    nowhere = body["models"][-1]
    assert nowhere["available"] is False and "does not exist" in nowhere["reason"]


def test_the_listing_shows_what_is_loaded(client):
    assert client.get("/probe/induction-2l", params={"text": "x"}).status_code == 400  # no tokenizer: the page decides
    assert client.get("/probe/shakespeare-char", params={"text": "To"}).status_code == 200
    listed = {m["id"]: m for m in client.get("/api/models").json()["models"]}
    assert listed["shakespeare-char"]["loaded"] and listed["shakespeare-char"]["memory_bytes"] == 4 * 805248
    assert not listed["austen-bpe"]["loaded"] and listed["austen-bpe"]["memory_bytes"] is None


def test_details_have_the_config_and_the_cards_metrics(client):
    body = client.get("/api/models/modadd-113").json()
    assert body["config"]["d_vocab"] == 114 and body["config"]["n_layers"] == 1
    assert body["metrics"]["test_accuracy"] == zoo.card("modadd-113")["metrics"]["test_accuracy"]
    assert body["reproduce"].startswith("llmw train modadd-113")
    assert body["loaded"] is False  # details never load weights


def test_an_unknown_id_is_a_404_naming_it_and_the_valid_ones(client):
    response = client.get("/api/models/gpt-9")
    assert response.status_code == 404
    error = response.json()["error"]
    assert "'gpt-9'" in error and "shakespeare-char" in error and "cli.nowhere" in error


@pytest.mark.parametrize("odd", ["run..", "run...", "run.%00", "%2e%2e", "run.%2e%2e", "x" * 5000, "run." + "é" * 50])
def test_odd_ids_are_404s(client, odd):
    response = client.get(f"/api/models/{odd}")
    assert response.status_code == 404 and "no model" in response.json()["error"]


def test_a_bad_checkpoint_is_a_4xx_and_the_server_answers_after(tmp_path):
    broken = build_our_model(tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    client = TestClient(make_app(LabConfig(runs_dir=tmp_path, models=(str(broken),))))
    response = client.get("/probe/cli.broken", params={"text": "the"})
    assert response.status_code == 422 and "safetensors" in response.json()["error"]
    assert response.json()["field"] == "model"
    listed = {m["id"]: m for m in client.get("/api/models").json()["models"]}
    assert listed["cli.broken"]["available"] is False and "safetensors" in listed["cli.broken"]["reason"]
    assert client.get("/probe/shakespeare-char", params={"text": "To"}).status_code == 200


def test_two_tabs_on_two_models_never_see_each_others_state(tmp_path):
    """Two clients hammer two models at once; each answer must be its own model's, every time."""
    app = make_app(LabConfig(runs_dir=tmp_path))
    expected = {}
    for name, text in TEXT.items():
        model, tok = zoo.load(name)
        with torch.no_grad():
            expected[name] = {"ids": tok.encode(text), "top": model(torch.tensor([tok.encode(text)]))[0].argmax(-1).tolist()}
    answers: dict[str, list] = {name: [] for name in TEXT}
    start = threading.Barrier(len(TEXT))

    def tab(name: str) -> None:
        with TestClient(app) as client:
            start.wait()
            for _ in range(15):
                answers[name].append(client.get(f"/probe/{name}", params={"text": TEXT[name]}).json())

    threads = [threading.Thread(target=tab, args=(name,)) for name in TEXT]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    for name in TEXT:
        assert len(answers[name]) == 15
        assert all(a == {**expected[name], "layers": 4} for a in answers[name]), name  # both have 4 layers


def test_create_app_serves_the_catalog_and_its_errors_in_the_labs_shape(tmp_path):
    from llm_workings.lab.server import create_app

    client = TestClient(create_app(LabConfig(runs_dir=tmp_path)), base_url="http://127.0.0.1:8000")
    assert [m["id"] for m in client.get("/api/models").json()["models"]][:1] == ["austen-bpe"]
    response = client.get("/api/models/nope")
    body = response.json()
    assert response.status_code == 404 and set(body) == {"error", "field"} and body["field"] == "model"
    assert "'nope'" in body["error"] and "shakespeare-char" in body["error"]
