"""Training an SAE from the Features page: a lab job that writes an SAE the page then lists and
reads like a bundled one; bad settings are refused before anything starts."""

from __future__ import annotations

import time

import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings import zoo
from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import create_app
from llm_workings.sae import bundled
from llm_workings.sae.dashboard import latent_activations

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    with TestClient(create_app(LabConfig(runs_dir=runs)), base_url="http://127.0.0.1:8000") as c:
        c.runs = runs
        yield c


def finished(client, job):
    for _ in range(600):
        view = client.get(f"/api/jobs/{job['id']}").json()
        if view["state"] in ("done", "failed", "cancelled"):
            return view
        time.sleep(0.1)
    raise AssertionError(f"job {job['id']} did not finish")


@pytest.mark.slow
def test_a_trained_sae_is_listed_and_read_like_a_bundled_one(client):
    settings = {"layer": 1, "d_sae": "128", "k": 4, "steps": 10}
    job = client.post("/api/features/train", json={"model": "shakespeare-char", "settings": settings})
    assert job.status_code == 202, job.text
    view = finished(client, job.json())
    assert view["state"] == "done", view
    name = view["result"]["sae"]
    assert name == "trained.shakespeare-char-resid1-topk128-k4-run1"
    listed = {s["name"]: s for s in client.get("/api/features/schema").json()["saes"]}
    assert listed[name]["hook_name"] == "blocks.1.hook_resid_pre" and listed[name]["d_sae"] == 128
    assert listed[name]["metrics"]["l0"] == pytest.approx(4)
    sae = bundled.load_bundled(client.runs / "saes" / name.removeprefix("trained."))
    model, _ = zoo.load("shakespeare-char")
    body = client.post("/api/features/text", json={"model": "shakespeare-char", "sae": name, "prompt": {"text": "To be"}}).json()
    acts = latent_activations(sae, model.eval(), torch.tensor([body["ids"]]))[0]
    assert [r["values"] for r in body["per_token"]] == [sorted(row[row > 0].tolist(), reverse=True) for row in acts]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"model": "shakespeare-char", "settings": {"layer": 7}}, "layer", "layer must be from 0 to"),
        ({"model": "shakespeare-char", "settings": {"k": 65}}, "k", "k"),
        ({"model": "induction-2l", "settings": {"layer": 0, "steps": 5}}, "steps", "steps"),
        ({"model": "shakespeare-char", "settings": {"d_sae": "100"}}, "d_sae", "d_sae"),
        ({"model": "shakespeare-char", "sae": "x"}, "sae", "unknown field 'sae'"),
    ],
)
def test_bad_training_settings_are_refused_before_a_job_starts(client, body, field, words):
    answer = client.post("/api/features/train", json=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == field and words in answer.json()["error"], answer.json()
    assert len(client.get("/api/jobs").json()["jobs"]) <= 1  # only the other test's job, if it ran
