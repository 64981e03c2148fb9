"""The Features page's routes through the whole app: densities, dashboards and the latents on a text
equal the SAE engine's; a bad SAE, latent or hook is refused by name."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings import zoo
from llm_workings.lab.features import compute
from llm_workings.lab.server import create_app
from llm_workings.sae import bundled
from llm_workings.sae.dashboard import latent_activations, latent_dashboard

pytestmark = pytest.mark.usefixtures("one_thread")

SAE = "shakespeare-char-resid2-topk"
MODEL = "shakespeare-char"
TEXT = "ROMEO:\nO, she doth teach the torches to burn bright!"


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def engine():
    model, _ = zoo.load(MODEL)
    sae = bundled.load_bundled(SAE)
    tokens = bundled.evaluation_tokens(MODEL)
    tokens = tokens[: compute.CORPUS_TOKENS // tokens.shape[1]].long()
    return model.eval(), sae, tokens, latent_activations(sae, model.eval(), tokens)


def test_the_schema_lists_every_bundled_sae_with_its_model_and_card_metrics(client):
    saes = {s["name"]: s for s in client.get("/api/features/schema").json()["saes"]}
    assert sorted(saes) == bundled.list_bundled()
    card = bundled.bundled_card(SAE)
    assert saes[SAE]["model"] == MODEL and saes[SAE]["d_sae"] == 1024 and saes[SAE]["k"] == 16
    assert saes[SAE]["metrics"]["explained_variance"] == card["metrics"]["explained_variance"]


def test_densities_are_the_fraction_of_corpus_tokens_each_latent_fires_on(client, engine):
    _, sae, tokens, acts = engine
    body = client.post("/api/features/latents", json={"model": MODEL, "sae": SAE}).json()
    assert body["d_sae"] == sae.cfg.d_sae and body["corpus_tokens"] == tokens.numel() <= compute.CORPUS_TOKENS
    assert body["density"] == (acts > 0).double().mean((0, 1)).tolist()
    assert body["max_activation"] == acts.amax((0, 1)).tolist()
    # a TopK SAE fires on exactly k latents a token, so the densities sum to k
    assert sum(body["density"]) == pytest.approx(sae.cfg.k)


def test_a_dashboard_is_the_engines_and_is_computed_once(client, engine):
    model, sae, tokens, acts = engine
    latent = int(acts.amax((0, 1)).argmax())
    first = client.post("/api/features/dashboard", json={"model": MODEL, "sae": SAE, "latent": latent})
    assert first.status_code == 200, first.text
    expected = latent_dashboard(sae, model, tokens, latent, acts=acts).to_dict()
    assert first.json() == expected
    top = first.json()["top_examples"][0]
    assert top["values"][top["position"] - top["start"]] == top["value"] == first.json()["max_activation"]
    key = next(k for k in compute.DASHBOARDS._items if k[2:] == (SAE, latent))
    cached = compute.DASHBOARDS._items[key]
    client.post("/api/features/dashboard", json={"model": MODEL, "sae": SAE, "latent": latent})
    assert compute.DASHBOARDS._items[key] is cached


def test_the_text_shows_each_tokens_latents_as_the_engine_computes_them(client, engine):
    model, sae, _, _ = engine
    body = client.post("/api/features/text", json={"model": MODEL, "sae": SAE, "prompt": {"text": TEXT}, "latent": 13}).json()
    acts = latent_activations(sae, model, torch.tensor([body["ids"]]))[0]
    assert "".join(body["str_tokens"]) == TEXT
    for pos, row in enumerate(body["per_token"]):
        assert len(row["latents"]) == sae.cfg.k == compute.TEXT_TOP  # a TopK SAE: exactly k latents fire on every token
        assert row["values"] == [float(acts[pos, i]) for i in row["latents"]]
        assert row["values"] == sorted(row["values"], reverse=True)
        assert row["values"][0] == float(acts[pos].max())
    best = body["latents"][0]
    assert best["max"] == float(acts.max()) and best["tokens"] == int((acts[:, best["index"]] > 0).sum())
    assert len(body["latents"]) == int((acts.amax(0) > 0).sum())
    assert body["latent_values"] == acts[:, 13].tolist()


@pytest.mark.parametrize(
    ("path", "body", "status", "field", "words"),
    [
        ("latents", {"model": MODEL, "sae": "no-such-sae"}, 404, "sae", "unknown SAE 'no-such-sae'"),
        ("dashboard", {"model": MODEL, "sae": SAE, "latent": 1024}, 400, "latent", "latents 0 to 1023"),
        ("dashboard", {"model": MODEL, "sae": SAE, "latent": -1}, 400, "latent", "latent -1 is out of range"),
        ("latents", {"model": "induction-2l", "sae": SAE}, 422, "sae", "blocks.2.hook_resid_pre"),
        ("latents", {"model": "austen-bpe", "sae": SAE}, 422, "sae", "trained on shakespeare-char"),
        ("text", {"model": MODEL, "sae": SAE, "prompt": {"text": ""}}, 400, "prompt", "empty"),
        ("text", {"model": MODEL, "sae": SAE, "prompt": {"text": "a"}, "latent": 5000}, 400, "latent", "out of range"),
        ("text", {"model": MODEL, "sae": SAE, "prompt": {"text": "x" * 65}}, 413, "prompt", "at most 64"),
    ],
)
def test_bad_input_is_refused_by_name(client, path, body, status, field, words):
    answer = client.post(f"/api/features/{path}", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field and words in answer.json()["error"], answer.json()
