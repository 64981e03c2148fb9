"""The job manager and its routes, with small jobs on threads: progress, queue, cancel, failure, streams."""

from __future__ import annotations

import os
import threading
import time

import pytest
from jobs_helpers import events, serve, wait_for

from llm_workings.lab.errors import ApiError
from llm_workings.lab.jobs import JobPaused


def gated(gate: threading.Event, result: object = "finished"):
    """A job that reports once, then waits for the test to let it finish."""

    def run(ctx):
        ctx.progress(0.5, "half way", loss=1.25)
        assert gate.wait(10), "the test never opened the gate"
        ctx.check_cancelled()
        return result

    return run


def until_cancelled(ctx):
    for i in range(100_000):
        ctx.check_cancelled()
        ctx.progress(i / 100_000, "spinning", i=i)
        time.sleep(0.005)


@pytest.fixture
def lab(tmp_path):
    """(an HTTP client, the job manager) of a served lab that runs one job at a time and queues two."""
    with serve(tmp_path / "runs", max_running=1, max_queued=2, keep_finished=3) as (client, app):
        yield client, app.state.jobs


def test_progress_arrives_while_the_job_runs_and_the_stream_ends_with_its_state(lab):
    client, jobs = lab
    gate = threading.Event()
    job = jobs.submit("test", gated(gate, {"answer": 42}))
    with client.stream("GET", f"/api/jobs/{job.id}/events") as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        seen = events(stream)
        name, data = next(seen)
        while name != "progress":
            name, data = next(seen)
        assert data["fraction"] == 0.5 and data["metrics"] == {"loss": 1.25} and data["message"] == "half way"
        assert client.get(f"/api/jobs/{job.id}").json()["state"] == "running"  # the event came before the end
        gate.set()
        rest = list(seen)  # the stream closes by itself after the final state
    assert rest[-1][0] == "state" and rest[-1][1]["state"] == "done" and rest[-1][1]["result"] == {"answer": 42}


def test_the_queue_shows_places_moves_up_on_cancel_and_refuses_beyond_its_cap(lab):
    client, jobs = lab
    gates = [threading.Event() for _ in range(3)]
    first, second, third = (jobs.submit("test", gated(g)) for g in gates)
    views = {v["id"]: v for v in client.get("/api/jobs").json()["jobs"]}
    assert views[first.id]["state"] == "running" and views[first.id]["place"] is None
    assert (views[second.id]["state"], views[second.id]["place"]) == ("queued", 1)
    assert (views[third.id]["state"], views[third.id]["place"]) == ("queued", 2)

    refused = client.post("/api/jobs", json={"kind": "train", "recipe": "induction-2l"})
    assert refused.status_code == 429
    assert "queue is full" in refused.json()["error"] and set(refused.json()) == {"error", "field"}

    cancelled = client.post(f"/api/jobs/{second.id}/cancel").json()
    assert cancelled["state"] == "cancelled" and cancelled["place"] is None
    assert client.get(f"/api/jobs/{third.id}").json()["place"] == 1

    gates[0].set()
    wait_for(lambda: client.get(f"/api/jobs/{third.id}").json()["state"] == "running")
    gates[2].set()
    wait_for(lambda: client.get(f"/api/jobs/{third.id}").json()["state"] == "done")
    assert client.get(f"/api/jobs/{first.id}").json()["result"] == "finished"


def test_a_queued_jobs_stream_shows_its_place_then_its_progress(lab):
    client, jobs = lab
    gates = [threading.Event(), threading.Event()]
    jobs.submit("test", gated(gates[0]))
    waiting = jobs.submit("test", gated(gates[1]))
    with client.stream("GET", f"/api/jobs/{waiting.id}/events") as stream:
        seen = events(stream)
        name, data = next(seen)
        assert (name, data["state"], data["place"]) == ("state", "queued", 1)
        gates[0].set()
        name, data = next(seen)
        while name != "progress":
            name, data = next(seen)
        assert data["message"] == "half way"
        gates[1].set()
        assert [d["state"] for n, d in seen if n == "state"][-1] == "done"


def test_cancel_stops_a_running_job_within_a_second(lab):
    client, jobs = lab
    job = jobs.submit("test", until_cancelled)
    wait_for(lambda: client.get(f"/api/jobs/{job.id}").json()["seq"] > 3)
    start = time.monotonic()
    assert client.post(f"/api/jobs/{job.id}/cancel").json()["cancel_requested"] is True
    wait_for(lambda: client.get(f"/api/jobs/{job.id}").json()["state"] == "cancelled")
    assert time.monotonic() - start < 1.0


def test_a_failing_job_reports_failed_and_the_server_and_queue_go_on(lab):
    def boom(ctx):
        raise RuntimeError("the job broke on purpose")

    client, jobs = lab
    failing = jobs.submit("test", boom)
    after = jobs.submit("test", lambda ctx: "still working")
    wait_for(lambda: client.get(f"/api/jobs/{after.id}").json()["state"] == "done")
    view = client.get(f"/api/jobs/{failing.id}").json()
    assert view["state"] == "failed" and view["error"] == "RuntimeError: the job broke on purpose"
    assert client.get("/api/jobs").status_code == 200


def test_finished_jobs_are_kept_up_to_a_bound_and_then_forgotten(lab):
    client, jobs = lab
    done = []
    for i in range(5):
        done.append(jobs.submit("test", lambda ctx, i=i: i))
        wait_for(lambda: jobs.view(done[-1].id)["state"] == "done")
    assert [v["result"] for v in jobs.list()] == [2, 3, 4]
    with pytest.raises(ApiError) as forgotten:
        jobs.view(done[0].id)
    assert forgotten.value.status == 404
    assert client.get(f"/api/jobs/{done[0].id}").status_code == 404


def test_a_stream_does_not_hold_up_shutdown_and_shutdown_cancels_jobs(tmp_path):
    streamed = []
    with serve(tmp_path / "runs") as (client, app):  # leaving serve() asserts that the lab stops within 1.5 s
        job = app.state.jobs.submit("test", until_cancelled)

        def listen():
            with client.stream("GET", f"/api/jobs/{job.id}/events") as stream:
                streamed.extend(events(stream))

        listener = threading.Thread(target=listen)
        listener.start()
        wait_for(lambda: len(streamed) > 0)
    listener.join(3)
    assert not listener.is_alive()
    assert app.state.jobs.view(job.id)["state"] == "cancelled"
    with pytest.raises(ApiError) as refused:
        app.state.jobs.submit("test", until_cancelled)
    assert refused.value.status == 503


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/jobs/1-00000000", None, 404),
        ("GET", "/api/jobs/1-00000000/events", None, 404),
        ("POST", "/api/jobs/1-00000000/cancel", None, 404),
        ("GET", "/api/jobs/not-an-id", None, 400),
        ("POST", "/api/jobs", {"kind": "sweep"}, 400),
        ("POST", "/api/jobs", {"kind": "train", "recipe": "austen-bpe"}, 400),
        ("POST", "/api/jobs", {"kind": "train", "overrides": {"steps": 0}}, 400),
        ("POST", "/api/jobs", {"kind": "train", "overrides": {"steps": 10**6}}, 400),
        ("POST", "/api/jobs", {"kind": "train", "overrides": {"dropout": 0.1}}, 400),
        ("POST", "/api/jobs", {"kind": "train", "overrides": {"lr": "fast"}}, 400),
        ("POST", "/api/jobs", {"kind": "train", "name": "../escape"}, 400),
    ],
)
def test_bad_requests_get_a_4xx_json_error_naming_the_problem(lab, method, path, body, status):
    client, _ = lab
    answer = client.request(method, path, json=body)
    assert answer.status_code == status
    assert set(answer.json()) == {"error", "field"} and answer.json()["error"]


def test_the_lab_removes_the_hidden_run_folders_a_killed_lab_left_and_no_others(tmp_path):
    """At start, a .tmp- folder nothing has written to for an hour is a dead lab's; one written to
    recently may be another lab's, training now, and is kept, as is everything that is not one."""
    from llm_workings.lab.config import LabConfig
    from llm_workings.lab.server import create_app

    runs = tmp_path / "runs"
    hours_ago = time.time() - 2 * 3600

    def folder(name: str, *files: str, stale: bool = True) -> None:
        (runs / name).mkdir(parents=True)
        for file in files:
            (runs / name / file).parent.mkdir(parents=True, exist_ok=True)
            (runs / name / file).write_text("x")
        for path in sorted((runs / name).rglob("*"), reverse=True) + [runs / name]:
            if stale:
                os.utime(path, (hours_ago, hours_ago))

    folder(".tmp-induction-2l-run1-abc", "checkpoint.json", "snapshots/step-10.safetensors")
    folder(".tmp-induction-2l-run2-def", "checkpoint.json", stale=False)  # another lab, training now
    folder(".tmp-modadd-113-run1-ghi", "snapshots/step-20.safetensors")
    os.utime(runs / ".tmp-modadd-113-run1-ghi" / "snapshots" / "step-20.safetensors")  # written just now, deep down
    folder("induction-2l-run1", "card.json")  # a finished run, however old
    (runs / ".tmp-notes").write_text("a file, not a run")
    os.utime(runs / ".tmp-notes", (hours_ago, hours_ago))

    create_app(LabConfig(runs_dir=runs))
    assert sorted(p.name for p in runs.iterdir()) == [
        ".tmp-induction-2l-run2-def",
        ".tmp-modadd-113-run1-ghi",
        ".tmp-notes",
        "induction-2l-run1",
    ]
    create_app(LabConfig(runs_dir=tmp_path / "no-runs-yet"))  # a lab with no runs folder starts
    assert not (tmp_path / "no-runs-yet").exists()


def pausable(ctx):
    """Works until asked to pause, then stops with where it got to, as a training run does."""
    for i in range(100_000):
        if ctx.pause_requested:
            raise JobPaused({"step": i})
        ctx.check_cancelled()
        ctx.progress(i / 100_000, "working", step=i)
        time.sleep(0.005)


def test_pause_ends_a_job_paused_with_its_result_and_only_a_running_job_pauses(lab):
    client, jobs = lab
    gate = threading.Event()
    job, waiting = jobs.submit("test", pausable), jobs.submit("test", gated(gate))
    wait_for(lambda: client.get(f"/api/jobs/{job.id}").json()["metrics"].get("step", 0) >= 3)
    refused = client.post(f"/api/jobs/{waiting.id}/pause")
    assert refused.status_code == 409 and "queued; only a running job can be paused" in refused.json()["error"]
    asked = client.post(f"/api/jobs/{job.id}/pause").json()
    assert asked["pause_requested"] is True and asked["cancel_requested"] is False
    wait_for(lambda: client.get(f"/api/jobs/{job.id}").json()["state"] == "paused")
    paused = client.get(f"/api/jobs/{job.id}").json()
    assert paused["result"]["step"] >= 3 and paused["error"] is None
    wait_for(lambda: client.get(f"/api/jobs/{waiting.id}").json()["state"] == "running")  # paused is final: the next starts
    gate.set()


def test_shutdown_asks_running_jobs_to_pause_so_a_pausable_one_keeps_its_work(tmp_path):
    with serve(tmp_path / "runs") as (client, app):
        jobs = app.state.jobs
        keeps = jobs.submit("test", pausable)
        wait_for(lambda: jobs.view(keeps.id)["metrics"].get("step", 0) >= 1)
        jobs.max_running = 2
        plain = jobs.submit("test", until_cancelled)  # knows only cancel: shutdown still stops it
        wait_for(lambda: jobs.view(plain.id)["state"] == "running")
    assert jobs.view(keeps.id)["state"] == "paused" and jobs.view(plain.id)["state"] == "cancelled"
