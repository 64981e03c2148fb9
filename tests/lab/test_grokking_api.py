"""The Grokking page's routes through the whole app: every snapshot's numbers are the toolkit's on
that snapshot's weights, with the final model's key frequencies; bad requests name the field."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings import zoo
from llm_workings.analysis.fourier import embedding_spectrum, key_frequencies
from llm_workings.analysis.progress_measures import snapshot_measures
from llm_workings.data.tasks import modular_addition
from llm_workings.lab.grokking import routes
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]  # one pass over 113² pairs per snapshot


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def series(client):
    answer = client.post("/api/grokking/series", json={"model": "modadd-113"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_series_is_the_toolkits_numbers_on_each_snapshot(series):
    final, _ = zoo.load("modadd-113")
    keys = key_frequencies(embedding_spectrum(final, 113))
    assert series["key_freqs"] == keys and series["strongest"] == keys[0] and series["p"] == 113
    assert series["steps"] == zoo.card("modadd-113")["snapshot_steps"]
    transition = zoo.card("modadd-113")["transition"]
    assert series["transition"] == {k: transition[k] for k in ("name", "metric", "start_step", "end_step")}
    data = modular_addition(113, 0.3, 0)
    assert series["train_pairs"] == len(data.train_y)
    measures = {name: decode_tensor(t) for name, t in series["measures"].items()}
    for step in (0, 300, 1500):
        i = series["steps"].index(step)
        model = zoo.load_snapshot("modadd-113", step)
        expected = snapshot_measures(model, 113, keys, torch.from_numpy(data.train_x), torch.from_numpy(data.train_y))
        for name, value in expected.items():
            assert measures[name][i] == pytest.approx(value, rel=1e-6), (step, name)
        spectrum = embedding_spectrum(model, 113)
        np.testing.assert_allclose(decode_tensor(series["key_norms"])[i], spectrum[keys].numpy(), rtol=1e-6)
        norm = torch.cat([p.detach().double().flatten() for p in model.parameters()]).norm().item()
        assert decode_tensor(series["weight_norm"])[i] == pytest.approx(norm, rel=1e-6)
    # the trainer measured train and test accuracy on the float32 weights; the float16 snapshots agree
    index = zoo.snapshots("modadd-113")
    np.testing.assert_allclose(measures["test_accuracy"], [s["test_accuracy"] for s in index], atol=0.01)


def test_a_snapshot_sends_its_spectrum_and_circle_from_the_cache(client, series):
    computed = routes.VIEWS.computed
    answer = client.post("/api/grokking/snapshot", json={"model": "modadd-113", "step": 1500})
    assert answer.status_code == 200, answer.text
    assert routes.VIEWS.computed == computed
    body = answer.json()
    last = zoo.load_snapshot("modadd-113", 1500)
    np.testing.assert_allclose(decode_tensor(body["spectrum"]), embedding_spectrum(last, 113).numpy(), rtol=1e-6)
    circle = decode_tensor(body["circle"])
    assert circle.shape == (113, 2)
    radii = np.linalg.norm(circle - circle.mean(0), axis=1)
    assert radii.std() < 0.2 * radii.mean()  # grokked: the numbers lie on a ring


@pytest.mark.parametrize(
    "route, body, status, field, message",
    [
        (
            "series",
            {"model": "induction-2l"},
            422,
            "model",
            "replays modular-addition runs; 'induction-2l' was trained on 'induction'",
        ),
        ("series", {"model": "shakespeare-char"}, 422, "model", "trained on 'char-lm'"),
        ("series", {}, 400, "model", "model is required"),
        ("snapshot", {"model": "modadd-113", "step": 75}, 404, "step", "no snapshot at step 75"),
        ("snapshot", {"model": "modadd-113", "step": -1}, 400, "step", "must be a snapshot's step"),
        ("series", {"model": "modadd-113", "p": 59}, 400, "p", "unknown field 'p'"),
    ],
)
def test_bad_requests_name_the_field(client, series, route, body, status, field, message):
    answer = client.post(f"/api/grokking/{route}", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field and re.search(message, answer.json()["error"]), answer.json()
