"""The training job for real: short induction-2l runs in a child process, streamed, cancelled, restarted
(pause, resume and a server stopped mid-run are in test_jobs_resume.py).

Each test spawns a fresh Python that loads torch (a few seconds on a busy two-core machine), so the
runs are kept to tens of steps.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path

import pytest
from jobs_helpers import events, serve, wait_for

from llm_workings.lab.jobs import JobCancelled, JobFailed
from llm_workings.lab.jobs.process import in_process
from llm_workings.lab.jobs.runs import typed_path

pytestmark = pytest.mark.slow
HERE = str(Path(__file__).parent)


def train(client, steps: int, **extra) -> dict:
    answer = client.post("/api/jobs", json={"kind": "train", "recipe": "induction-2l", "overrides": {"steps": steps}, **extra})
    assert answer.status_code == 202, answer.text
    return answer.json()


def test_a_run_streams_step_loss_and_speed_then_lands_whole_in_the_runs_folder(tmp_path):
    runs = tmp_path / "runs"
    with serve(runs) as (client, _):
        job = train(client, steps=30)
        assert job["params"]["name"] == "induction-2l-run1"
        with client.stream("GET", f"/api/jobs/{job['id']}/events") as stream:
            seen = events(stream)
            name, data = next(seen)
            while not (name == "progress" and "step" in data["metrics"]):
                name, data = next(seen)
            during = client.get(f"/api/jobs/{job['id']}").json()
            rest = list(seen)
    assert during["state"] == "running" and data["metrics"]["step"] < 30  # seen while it ran
    assert data["metrics"]["loss"] > 0 and data["metrics"]["tokens_per_second"] > 0
    steps = [d["metrics"]["step"] for n, d in rest if n == "progress"]
    assert steps == sorted(steps) and steps[-1] == 30
    final = rest[-1][1]
    assert final["state"] == "done" and final["result"]["run"] == "induction-2l-run1"
    assert sorted(p.name for p in runs.iterdir()) == ["induction-2l-run1"]  # nothing temporary left
    run = runs / "induction-2l-run1"
    for written in ("config.json", "model.safetensors", "card.json", "checkpoint.json", "lab-run.json"):
        assert (run / written).is_file()
    card = json.loads((run / "card.json").read_text())
    assert card["train_config"]["steps"] == 30 and card["overrides"]["steps"] == 30
    assert card["metrics"] == final["result"]["metrics"]
    # the command trains the same run into its real folder, not the hidden one it was trained in
    assert card["reproduce"].startswith("llmw train induction-2l --steps=30 ")
    assert card["reproduce"].endswith(f" --out {run}")  # absolute: this runs folder is outside the working directory


def test_a_runs_folder_is_named_as_the_user_types_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert typed_path(Path("runs") / "induction-2l-run1") == "runs/induction-2l-run1"
    assert typed_path(tmp_path / "runs" / "x") == "runs/x"
    assert typed_path(tmp_path.parent / "elsewhere") == str(tmp_path.parent / "elsewhere")


def test_cancel_stops_training_within_a_second_leaves_nothing_and_the_same_run_restarts(tmp_path):
    runs = tmp_path / "runs"
    with serve(runs) as (client, _):
        job = train(client, steps=2000, name="mine")
        wait_for(lambda: client.get(f"/api/jobs/{job['id']}").json()["metrics"].get("step", 0) >= 2, timeout=60)
        assert [p.name for p in runs.iterdir()] == ["mine"]  # it trains in place, as `llmw train --out` does
        listed = client.get("/api/models/run.mine")
        assert listed.status_code == 200 and listed.json()["available"] is False  # training: not loadable yet
        start = time.monotonic()
        client.post(f"/api/jobs/{job['id']}/cancel")
        wait_for(lambda: client.get(f"/api/jobs/{job['id']}").json()["state"] == "cancelled")
        took = time.monotonic() - start
        print(f"cancel took {took:.3f} s")
        assert took < 1.0
        assert list(runs.iterdir()) == []  # no half-written run, and no temporary directory

        again = train(client, steps=20, name="mine")  # the name is free again
        wait_for(lambda: client.get(f"/api/jobs/{again['id']}").json()["state"] == "done", timeout=120)
        assert [p.name for p in runs.iterdir()] == ["mine"]
        taken = client.post("/api/jobs", json={"kind": "train", "name": "mine"})
        assert taken.status_code == 409 and taken.json()["field"] == "name"


def test_the_server_answers_quickly_while_a_job_trains(tmp_path):
    with serve(tmp_path / "runs") as (client, _):

        def latencies(n: int) -> list[float]:
            out = []
            for _ in range(n):
                start = time.perf_counter()
                assert client.get("/api/jobs").status_code == 200
                out.append(time.perf_counter() - start)
                time.sleep(0.02)
            return out

        idle = latencies(20)
        job = train(client, steps=2000)
        wait_for(lambda: client.get(f"/api/jobs/{job['id']}").json()["metrics"].get("step", 0) >= 2, timeout=60)
        busy = latencies(40)
        assert client.get(f"/api/jobs/{job['id']}").json()["state"] == "running"  # measured while it trained
        client.post(f"/api/jobs/{job['id']}/cancel")
    print(f"GET /api/jobs median {statistics.median(idle) * 1e3:.1f} ms idle, {statistics.median(busy) * 1e3:.1f} ms training")
    assert statistics.median(busy) < 0.1


def test_overrides_that_cannot_train_are_refused_before_anything_runs(tmp_path):
    with serve(tmp_path / "runs") as (client, _):
        answer = client.post("/api/jobs", json={"kind": "train", "overrides": {"d_model": 30, "n_heads": 4}})
        assert answer.status_code == 400 and answer.json()["field"] == "overrides"
        assert "divisible" in answer.json()["error"]
        answer = client.post("/api/jobs", json={"kind": "train", "overrides": {"steps": 10, "warmup_steps": 50}})
        assert answer.status_code == 400 and "warmup_steps" in answer.json()["error"]
        assert client.get("/api/jobs").json()["jobs"] == []
    assert not (tmp_path / "runs").exists()


class Context:
    """Just enough of a JobContext to drive `in_process` directly."""

    def __init__(self) -> None:
        self.cancelled, self.pause_requested, self.points = False, False, []

    def progress(self, fraction, message="", **metrics):
        self.points.append((fraction, message, metrics))


@pytest.fixture
def targets_importable(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [HERE, os.environ.get("PYTHONPATH")])))


def test_a_child_relays_progress_result_and_failure(targets_importable):
    ctx = Context()
    assert in_process(ctx, "jobs_helpers:counting_target", {"n": 3}) == {"counted": 3}
    assert [m for _, _, m in ctx.points] == [{"i": 1}, {"i": 2}, {"i": 3}]
    with pytest.raises(JobFailed, match="RuntimeError: on purpose"):
        in_process(Context(), "jobs_helpers:failing_target", {"message": "on purpose"})


def test_a_child_that_ignores_cancel_is_killed_within_a_second(targets_importable):
    ctx, asked = Context(), []
    original = ctx.progress

    def progress(*args, **kwargs):  # ask for the cancel as soon as the child is running
        original(*args, **kwargs)
        ctx.cancelled = True
        asked.append(time.monotonic())

    ctx.progress = progress
    with pytest.raises(JobCancelled, match="killed"):
        in_process(ctx, "jobs_helpers:deaf_target", {})
    assert time.monotonic() - asked[0] < 1.0


def test_the_trainers_on_step_hook_reports_each_update_and_stops_it_by_raising(tmp_path):
    from llm_workings.train import InductionTask, TrainConfig, Trainer
    from llm_workings.transformer import Transformer, TransformerConfig

    cfg = TransformerConfig(d_model=16, n_layers=1, n_heads=2, d_vocab=16, n_ctx=17, attn_only=True, default_prepend_bos=False)
    reports = []

    def on_step(report):
        reports.append(report)
        if report.step == 3:
            raise JobCancelled("stop here")

    trainer = Trainer(
        Transformer(cfg).init_weights(0),
        InductionTask(16, 8),
        TrainConfig(steps=10, batch_size=4, eval_every=2),
        run_dir=tmp_path,
        progress=False,
        on_step=on_step,
    )
    with pytest.raises(JobCancelled):
        trainer.train()
    assert [r.step for r in reports] == [1, 2, 3] and all(r.steps == 10 for r in reports)
    assert all(r.loss > 0 and r.tokens_per_second > 0 for r in reports)
    assert [r.evaluation is not None for r in reports] == [False, True, False]
