"""Pause, resume and a server stopped mid-run, through the lab: each resumed run repeats the losses of a
run that was never interrupted, exactly (the trainer's guarantee from the command line, shown here
through the job API), and a second run started meanwhile waits in the queue with its place. A child
whose server died without a word pauses itself, so even a killed lab leaves a resumable run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jobs_helpers import serve, wait_for

pytestmark = pytest.mark.slow
STEPS = 150
OVERRIDES = {"steps": STEPS, "eval_every": 50}
SRC = str(Path(__file__).resolve().parents[2] / "src")  # the child imports this checkout's package


def start(client, name: str, **extra) -> dict:
    answer = client.post("/api/jobs", json={"kind": "train", "recipe": "induction-2l", "name": name, **extra})
    assert answer.status_code == 202, answer.text
    return answer.json()


def view(client, job: dict) -> dict:
    return client.get(f"/api/jobs/{job['id']}").json()


def finish(client, job: dict) -> dict:
    wait_for(lambda: view(client, job)["state"] in ("done", "failed", "cancelled", "paused"), timeout=240)
    return view(client, job)


def record(run) -> dict:
    return json.loads((run / "checkpoint.json").read_text())["state"]


def test_paused_and_interrupted_runs_resume_to_the_uninterrupted_losses(tmp_path):
    runs = tmp_path / "runs"
    with serve(runs) as (client, _):
        straight = finish(client, start(client, "straight", overrides=OVERRIDES))
        assert straight["state"] == "done", straight["error"]

        paused = start(client, "paused", overrides=OVERRIDES)
        queued = start(client, "interrupted", overrides=OVERRIDES)  # one run at a time: this one waits
        assert (view(client, queued)["state"], view(client, queued)["place"]) == ("queued", 1)
        wait_for(lambda: view(client, paused)["metrics"].get("step", 0) >= 10, timeout=120)
        assert client.post(f"/api/jobs/{paused['id']}/pause").json()["pause_requested"] is True
        stopped = finish(client, paused)
        assert stopped["state"] == "paused" and 10 <= stopped["result"]["step"] < STEPS
        assert (runs / "paused" / "checkpoint.json").is_file() and not (runs / "paused" / "config.json").exists()
        entry = client.get("/api/models/run.paused").json()
        assert entry["available"] is False and f"step {stopped['result']['step']}" in entry["reason"]

        # the queued run started when the first paused; the server stops while it trains
        wait_for(lambda: view(client, queued)["metrics"].get("step", 0) >= 10, timeout=120)
    interrupted_at = json.loads((runs / "interrupted" / "checkpoint.json").read_text())["step"]
    assert 10 <= interrupted_at < STEPS  # stopping the lab paused the run, with a checkpoint of where it was

    with serve(runs) as (client, _):  # a new lab on the same runs folder
        listed = {run["name"]: run for run in client.get("/api/train/runs").json()["runs"]}
        assert set(listed) == {"paused", "interrupted"} and listed["interrupted"]["step"] == interrupted_at
        history = client.get("/api/train/runs/interrupted/history").json()
        assert history["step"] == interrupted_at and history["losses"] == record(runs / "straight")["losses"][:interrupted_at]
        for name in ("paused", "interrupted"):
            job = client.post("/api/jobs", json={"kind": "train", "resume": name}).json()
            assert job["params"]["resumed_from"] == listed[name]["step"]
            done = finish(client, job)
            assert done["state"] == "done", done["error"]
            assert done["result"]["model"] == f"run.{name}"
        assert client.get("/api/train/runs").json()["runs"] == []  # both finished
        assert client.get("/api/models/run.interrupted").json()["available"] is True

    expected = record(runs / "straight")
    for name in ("paused", "interrupted"):
        resumed = record(runs / name)
        assert len(resumed["losses"]) == STEPS
        assert resumed["losses"] == expected["losses"]  # exactly, step for step
        assert resumed["evals"] == expected["evals"]
        card = json.loads((runs / name / "card.json").read_text())
        assert card["metrics"] == json.loads((runs / "straight" / "card.json").read_text())["metrics"]


def test_a_child_whose_server_died_pauses_itself_with_a_checkpoint(tmp_path):
    """The lab killed outright (no shutdown): the child sees its stdin close and keeps the run resumable."""
    run = tmp_path / "runs" / "orphan"
    run.mkdir(parents=True)
    spec = {
        "target": "llm_workings.lab.jobs.training:train_recipe",
        "params": {"recipe": "induction-2l", "overrides": {"steps": 2000}, "out_dir": str(run), "reproduce_out": str(run)},
    }
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")])))
    child = subprocess.Popen(
        [sys.executable, "-m", "llm_workings.lab.jobs.child"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        child.stdin.write(json.dumps(spec) + "\n")
        child.stdin.flush()
        for line in child.stdout:  # until it has trained a few steps
            if json.loads(line).get("progress", [0, "", {}])[2].get("step", 0) >= 5:
                break
        child.stdin.close()  # what the child sees when its server dies
        last = [json.loads(line) for line in child.stdout][-1]
        assert child.wait(timeout=60) == 0
    finally:
        child.kill()
    assert last["done"]["paused"] is True
    assert 5 <= last["done"]["step"] == json.loads((run / "checkpoint.json").read_text())["step"] < 2000
