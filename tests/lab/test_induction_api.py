"""The Induction page's routes through the whole app: every snapshot's numbers are the analysis
toolkit's on that snapshot's weights, computed once, and a run still training replays as it goes."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings import zoo
from llm_workings.analysis import attention_patterns, composition_scores, head_scores, repeated_random_tokens
from llm_workings.lab.config import LabConfig
from llm_workings.lab.induction import routes
from llm_workings.lab.induction.compute import SEQUENCES
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor
from llm_workings.train import InductionTask, TrainConfig, Trainer
from llm_workings.transformer import Transformer
from llm_workings.zoo import RECIPES

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def series(client):
    answer = client.post("/api/induction/series", json={"model": "induction-2l"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_series_is_the_toolkits_numbers_on_each_snapshot(client, series):
    assert series["steps"] == [s["step"] for s in zoo.snapshots("induction-2l")]
    assert series["steps"] == zoo.card("induction-2l")["snapshot_steps"]
    transition = zoo.card("induction-2l")["transition"]
    assert series["transition"] == {k: transition[k] for k in ("name", "metric", "start_step", "end_step")}
    assert series["repeated_half_loss"] == [s["repeated_half_loss"] for s in zoo.snapshots("induction-2l")]
    tokens = repeated_random_tokens(128, batch=SEQUENCES, half=24, seed=0)
    previous, induction = decode_tensor(series["previous_token"]), decode_tensor(series["induction"])
    k_comp, second = decode_tensor(series["k_composition"]), decode_tensor(series["second_copy_loss"])
    for step in (0, 500, 1500):
        i = series["steps"].index(step)
        model = zoo.load_snapshot("induction-2l", step)
        scores = head_scores(model, tokens, kinds=("previous_token", "induction")).scores
        np.testing.assert_array_equal(previous[i], scores["previous_token"].numpy())
        np.testing.assert_array_equal(induction[i], scores["induction"].numpy())
        np.testing.assert_allclose(k_comp[i], composition_scores(model, "K").scores[0, :, 1, :].numpy(), rtol=1e-6)
        with torch.no_grad():
            losses = model(tokens, return_type="loss", loss_per_token=True)
        assert second[i] == pytest.approx(losses[:, 25:].mean().item(), rel=1e-5)
    assert series["composition_baseline"] == pytest.approx(composition_scores(model, "K").baseline)
    assert series["previous_head"] == 2 and series["induction_heads"] == [0, 1]


def test_a_snapshot_sends_the_featured_patterns_and_the_loss_by_position(client, series):
    computed = routes.VIEWS.computed
    answer = client.post("/api/induction/snapshot", json={"model": "induction-2l", "step": 525, "seed": 0})
    assert answer.status_code == 200, answer.text
    assert routes.VIEWS.computed == computed  # the series computed it already
    body = answer.json()
    tokens = repeated_random_tokens(128, batch=SEQUENCES, half=24, seed=0)
    assert body["tokens"] == tokens[0].tolist() and body["heads"] == ["L0H2", "L1H0", "L1H1"]
    model = zoo.load_snapshot("induction-2l", 525)
    expected = attention_patterns(model, tokens[:1])[:, 0]
    shown = decode_tensor(body["patterns"])
    for i, (layer, head) in enumerate([(0, 2), (1, 0), (1, 1)]):
        np.testing.assert_allclose(shown[i], expected[layer, head].numpy(), atol=1e-3)  # float16 on the wire
    with torch.no_grad():
        losses = model(tokens, return_type="loss", loss_per_token=True).mean(0)
    np.testing.assert_allclose(decode_tensor(body["loss_by_position"]), losses.numpy(), rtol=1e-6)
    client.post("/api/induction/series", json={"model": "induction-2l"})
    assert routes.VIEWS.computed == computed  # scrubbing again computes nothing


@pytest.mark.parametrize(
    "body, status, field, message",
    [
        ({"model": "gpt-5"}, 404, "model", "no model 'gpt-5'"),
        ({"model": "modadd-113"}, 422, "model", "replays induction runs; 'modadd-113' was trained on 'modular-addition'"),
        ({"model": "induction-2l", "half": 30}, 422, "half", "reads at most 49 tokens, so BOS and two copies allow half <= 24"),
        ({"model": "induction-2l", "half": 1}, 400, "half", "between 2 and 512"),
        ({"model": "induction-2l", "seed": -1}, 400, "seed", "between 0"),
        ({"model": "induction-2l", "step": 7}, 404, "step", "no snapshot at step 7; it has \\[0, 100"),
        ({"model": "induction-2l", "step": "last"}, 400, "step", "must be a snapshot's step"),
        ({"model": "induction-2l", "stride": 2}, 400, "stride", "unknown field 'stride'"),
    ],
)
def test_bad_requests_name_the_field(client, body, status, field, message):
    route = "/api/induction/snapshot" if "step" in body else "/api/induction/series"
    answer = client.post(route, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field
    assert re.search(message, answer.json()["error"]), answer.json()["error"]


def test_a_run_still_training_replays_its_snapshots_as_they_are_written(tmp_path):
    """A lab job trains in runs/NAME with lab-run.json beside it and no config.json until it ends: its
    snapshots are offered as they appear, and the series grows with them."""
    recipe = RECIPES["induction-2l"].with_overrides({"steps": "6", "snapshots": "every:2", "warmup_steps": "1"})
    run = tmp_path / "runs" / "live"
    model = Transformer(recipe.model_config()).init_weights(0)
    task = InductionTask(128, 24, 8, eval_size=8)
    run.mkdir(parents=True)
    (run / "lab-run.json").write_text(
        json.dumps(
            {
                "recipe": "induction-2l",
                "overrides": {"steps": 6, "warmup_steps": 1, "snapshots": "every:2"},
                "model_config": model.cfg.to_dict(),
            }
        )
    )
    Trainer(model, task, TrainConfig(**{**recipe.train, "steps": 4}), run_dir=run, progress=False).train()
    client = TestClient(create_app(LabConfig(runs_dir=tmp_path / "runs")), base_url="http://127.0.0.1:8000")
    first = client.post("/api/induction/series", json={"model": "run.live", "half": 20})
    assert first.status_code == 200, first.text
    assert first.json()["steps"] == [0, 2, 4] and first.json()["transition"] is None
    index = run / "snapshots" / "index.json"
    entries = json.loads(index.read_text())
    weights = run / "snapshots" / entries[-1]["file"]
    (run / "snapshots" / "step-0000006.safetensors").write_bytes(weights.read_bytes())  # the trainer writes on
    index.write_text(json.dumps([*entries, {**entries[-1], "step": 6, "file": "step-0000006.safetensors"}]))
    grown = client.post("/api/induction/series", json={"model": "run.live", "half": 20}).json()
    assert grown["steps"] == [0, 2, 4, 6]
    assert decode_tensor(grown["induction"])[3].tolist() == decode_tensor(grown["induction"])[2].tolist()
