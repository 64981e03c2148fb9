"""The Train page's API and the training job's refusals, with nothing trained: the settings tables come
from the recipes, out-of-range settings are refused naming the field and its range, a p that is not
prime is allowed but flagged, and a runs folder that cannot be written is refused before a run starts."""

from __future__ import annotations

import json
import os

import pytest
from fastapi.testclient import TestClient
from jobs_helpers import wait_for

from llm_workings.lab.config import LabConfig
from llm_workings.lab.jobs.recipe_settings import LAB_RECIPES, is_prime
from llm_workings.lab.jobs.runs import write_record
from llm_workings.lab.server import create_app
from llm_workings.zoo import get_recipe


def client_for(runs_dir) -> TestClient:
    return TestClient(create_app(LabConfig(runs_dir=runs_dir)), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return client_for(tmp_path_factory.mktemp("train") / "runs")


def test_each_recipes_table_is_built_from_its_own_settings(client):
    schema = client.get("/api/train/schema").json()
    assert [r["name"] for r in schema["recipes"]] == list(LAB_RECIPES)
    assert schema["limits"]["max_running"] == 1  # one run at a time by default
    for entry in schema["recipes"]:
        recipe = get_recipe(entry["name"])
        assert entry["task"] == recipe.task
        for row in entry["settings"]:
            table = {"model": recipe.model, "train": recipe.train, "data": recipe.data}[row["group"]]
            assert row["default"] == table[row["name"]], (entry["name"], row["name"])
            assert row["min"] <= row["default"] <= row["max"]
    by_recipe = {r["name"]: {s["name"] for s in r["settings"]} for r in schema["recipes"]}
    assert {"p", "train_fraction"} <= by_recipe["modadd-113"]
    assert {"d_model", "n_layers", "n_heads", "n_ctx"} <= by_recipe["shakespeare-char"]  # its size


@pytest.mark.parametrize("recipe", LAB_RECIPES)
def test_every_setting_out_of_range_is_refused_naming_the_field_and_its_range(client, recipe):
    for row in client.get("/api/train/schema").json()["recipes"][LAB_RECIPES.index(recipe)]["settings"]:
        name, high = row["name"], row["max"] + (1 if row["kind"] == "int" else row["max"])
        for bad in (high, row["min"] - 1):
            for route, body in (
                ("/api/train/check", {"recipe": recipe, "overrides": {name: bad}}),
                ("/api/jobs", {"kind": "train", "recipe": recipe, "overrides": {name: bad}}),
            ):
                answer = client.post(route, json=body)
                assert answer.status_code == 400, (route, name, bad)
                assert answer.json()["field"] == name
                assert answer.json()["error"] == f"{name} must be between {row['min']:g} and {row['max']:g}; got {bad:g}"
    assert client.get("/api/jobs").json()["jobs"] == []  # nothing was queued


def test_unknown_and_mistyped_settings_are_refused_by_name(client):
    answer = client.post("/api/train/check", json={"recipe": "modadd-113", "overrides": {"batch_size": 8}})
    assert answer.status_code == 400 and answer.json()["field"] == "batch_size"
    assert "modadd-113 has no setting 'batch_size'" in answer.json()["error"] and "'p'" in answer.json()["error"]
    answer = client.post("/api/train/check", json={"recipe": "induction-2l", "overrides": {"steps": "many"}})
    assert answer.status_code == 400 and answer.json() == {"error": "steps must be an integer; got 'many'", "field": "steps"}
    answer = client.post("/api/train/check", json={"recipe": "austen-bpe"})
    assert answer.status_code == 400 and answer.json()["field"] == "recipe"
    # a combination the model cannot be built with is named too
    answer = client.post("/api/train/check", json={"recipe": "shakespeare-char", "overrides": {"d_model": 30}})
    assert answer.status_code == 400 and "not divisible by n_heads" in answer.json()["error"]


def test_a_p_that_is_not_prime_is_allowed_but_flagged_and_p_sets_the_vocabulary(client):
    assert [n for n in range(3, 30) if is_prime(n)] == [3, 5, 7, 11, 13, 17, 19, 23, 29]
    prime = client.post("/api/train/check", json={"recipe": "modadd-113", "overrides": {"p": 59}}).json()
    assert prime["warnings"] == [] and prime["overrides"] == {"p": 59, "d_vocab": 60}
    assert prime["data"]["p"] == 59 and prime["model"]["d_vocab"] == 60
    composite = client.post("/api/train/check", json={"recipe": "modadd-113", "overrides": {"p": 60}})
    assert composite.status_code == 200
    [warning] = composite.json()["warnings"]
    assert warning["field"] == "p" and warning["message"].startswith("p = 60 is not prime")


def test_a_runs_folder_that_cannot_be_written_is_refused_before_training_starts(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    client = client_for(blocker / "runs")
    answer = client.post("/api/jobs", json={"kind": "train", "overrides": {"steps": 5}})
    assert answer.status_code == 409 and answer.json()["field"] == "name"
    assert answer.json()["error"].startswith(f"the runs folder {blocker / 'runs'} is not writable")
    assert client.get("/api/jobs").json()["jobs"] == []
    if os.geteuid() != 0:  # root writes through permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        answer = client_for(locked).post("/api/jobs", json={"kind": "train", "overrides": {"steps": 5}})
        assert answer.status_code == 409 and "is not writable" in answer.json()["error"]


def test_resume_and_pause_refuse_what_cannot_be_resumed_or_paused(tmp_path):
    runs = tmp_path / "runs"
    client = client_for(runs)
    missing = client.post("/api/jobs", json={"kind": "train", "resume": "nothing-here"})
    assert missing.status_code == 404 and missing.json()["field"] == "resume"
    finished = runs / "done-run"
    finished.mkdir(parents=True)
    write_record(finished, "induction-2l", "induction", {"steps": 5}, {})
    (finished / "config.json").write_text(json.dumps({}))
    answer = client.post("/api/jobs", json={"kind": "train", "resume": "done-run"})
    assert answer.status_code == 409 and "has finished" in answer.json()["error"]
    answer = client.post("/api/jobs", json={"kind": "train", "resume": "done-run", "overrides": {"steps": 9}})
    assert answer.status_code == 400 and "keeps its settings" in answer.json()["error"]
    paused = runs / "paused-run"
    paused.mkdir()
    write_record(paused, "induction-2l", "induction", {"steps": 5}, {"n_layers": 2, "d_model": 64})
    listed = client.get("/api/train/runs").json()["runs"]
    assert listed == [
        {
            "name": "paused-run",
            "model": "run.paused-run",
            "recipe": "induction-2l",
            "overrides": {"steps": 5},
            "step": 0,
            "job": None,
        }
    ]
    entry = client.get("/api/models/run.paused-run").json()  # in the catalog, not loadable, with its sizes
    assert entry["available"] is False and entry["task"] == "induction" and entry["n_layers"] == 2
    assert client.get("/api/train/runs/paused-run/history").json() == {"name": "paused-run", "step": 0, "losses": [], "evals": []}
    assert client.get("/api/train/runs/nothing-here/history").status_code == 404
    job = client.app.state.jobs.submit("test", lambda ctx: None)
    wait_for(lambda: client.get(f"/api/jobs/{job.id}").json()["state"] == "done")
    answer = client.post(f"/api/jobs/{job.id}/pause")
    assert answer.status_code == 409 and "only a running job can be paused" in answer.json()["error"]
