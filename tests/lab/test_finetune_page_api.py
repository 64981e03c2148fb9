"""The Fine-tuning page's API against the engine. Refusals need nothing trained: a rank of 0 or above a
map's width, a target the model lacks (with those it has), a model with no tokenizer, the model's own
corpus. A short LoRA run (slow) then shows the engine's numbers: the job's evaluations are what
`finetune` computes, the generations are the engine's with the adapter disabled, enabled and merged,
the spectra are `weight_changes`, and the λ rows are `TaskVector.apply_to` evaluated by the same task."""

from __future__ import annotations

import pytest
import torch
from fastapi.testclient import TestClient
from jobs_helpers import wait_for

from llm_workings import zoo
from llm_workings.finetune import TaskVector, finetune, load_adapter, merged_copy, weight_changes
from llm_workings.finetune.forgetting import domain_shift
from llm_workings.lab.config import LabConfig
from llm_workings.lab.finetune.compute import LAMBDAS
from llm_workings.lab.jobs.finetuning import EVAL_BATCH_SIZE, EVAL_BATCHES, FOLDER, check_settings, lora_config, train_config
from llm_workings.lab.server import create_app

SHORT = {"steps": 4, "eval_every": 2, "rank": 2, "alpha": 4, "batch_size": 8}


def client_for(runs_dir) -> TestClient:
    return TestClient(create_app(LabConfig(runs_dir=runs_dir)), base_url="http://127.0.0.1:8000")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    return client_for(tmp_path_factory.mktemp("finetune") / "runs")


def start(client, settings):
    return client.post("/api/jobs", json={"kind": "finetune", "settings": settings})


def test_the_schema_is_the_jobs_settings_table_with_a_short_default_run(client):
    schema = client.get("/api/fine-tuning/schema").json()
    rows = {row["name"]: row for row in schema["settings"]}
    assert rows["model"]["default"] == "shakespeare-char" and rows["corpus"]["default"] == "austen"
    assert rows["method"]["choices"] == ["full", "lora"]
    assert rows["steps"]["default"] == 40  # well under a minute on a laptop's CPU
    assert schema["lambdas"] == list(LAMBDAS) and 0.0 in LAMBDAS and 1.0 in LAMBDAS


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"rank": 0}, "rank", "rank must be between 1 and 4096; got 0"),
        ({"rank": 129}, "rank", "rank 129 is above the width of attn.qkv (384 x 128): a rank-r update of it needs r <= 128"),
        ({"targets": "attn.q,mlp.gate"}, "targets", "no linear map 'mlp.gate'; it has attn.qkv, attn.q, attn.k, attn.v, attn.o"),
        ({"model": "induction-2l"}, "model", "induction-2l has no tokenizer"),
        ({"model": "modadd-113"}, "model", "modadd-113 has no tokenizer"),
        ({"corpus": "tinyshakespeare"}, "corpus", "shakespeare-char was trained on tinyshakespeare"),
        ({"method": "adapter"}, "method", "method must be one of ['full', 'lora']"),
        ({"rank_": 2}, "rank_", "unknown setting 'rank_'"),
    ],
)
def test_bad_settings_are_refused_by_name_before_anything_runs(client, settings, field, words):
    answer = start(client, settings)
    assert answer.status_code == 400, answer.json()
    assert answer.json()["field"] == field
    assert words in answer.json()["error"]
    assert client.get("/api/jobs").json()["jobs"] == []


def test_a_run_that_does_not_exist_is_refused_by_every_route(client):
    assert client.post("/api/jobs", json={"kind": "finetune", "resume": "nothing-here"}).status_code == 404
    for route in ("spectra", "lambda"):
        answer = client.post(f"/api/fine-tuning/{route}", json={"run": "nothing-here"})
        assert answer.status_code == 404 and "no fine-tuning run 'nothing-here'" in answer.json()["error"]
    assert client.get("/api/fine-tuning/runs").json() == {"runs": []}


@pytest.fixture(scope="module")
def finished(client, tmp_path_factory):
    job = start(client, SHORT).json()
    wait_for(lambda: client.get(f"/api/jobs/{job['id']}").json()["state"] not in ("queued", "running"), timeout=180)
    view = client.get(f"/api/jobs/{job['id']}?points=true").json()
    assert view["state"] == "done", view["error"]
    return view


@pytest.fixture(scope="module")
def engine(finished, client):
    """The same run by the engine, in this process, and the run's own folder read back by the engine."""
    torch.manual_seed(0)
    settings = check_settings(SHORT)
    model, _ = zoo.load("shakespeare-char")
    task = domain_shift("shakespeare-char", "austen", EVAL_BATCHES, EVAL_BATCH_SIZE)
    before = task.evaluate(model)
    run = finetune(model, task, train_config(settings), lora=lora_config(settings), progress=False)
    base, _ = zoo.load("shakespeare-char")
    tuned, _ = zoo.load("shakespeare-char")
    runs_dir = client.app.state.config.runs_dir
    adapter = load_adapter(tuned, runs_dir / FOLDER / finished["result"]["run"])
    return {"before": before, "evals": run.train.evals, "task": task, "base": base, "tuned": tuned, "adapter": adapter}


@pytest.mark.slow
def test_the_jobs_learning_and_forgetting_are_the_engines(finished, engine):
    evaluated = [p["metrics"]["evaluated"] for p in finished["points"] if "evaluated" in p["metrics"]]
    assert [e["step"] for e in evaluated] == [0, 2, 4]
    assert evaluated[0] == {"step": 0, **engine["before"]}  # the base model: step 0
    for shown, expected in zip(evaluated[1:], engine["evals"], strict=True):
        for key in ("target_val_loss", "original_val_loss"):
            assert shown[key] == pytest.approx(expected[key], abs=1e-5), key
    assert finished["result"]["trainable"] == engine["adapter"].num_parameters()


@pytest.mark.slow
def test_generations_are_the_engines_base_tuned_and_merged(client, finished, engine):
    name = finished["result"]["run"]
    body = {"run": name, "prompt": {"text": "ROMEO:"}, "new_tokens": 30, "temperature": 0.8, "seed": 3}
    out = client.post("/api/fine-tuning/generate", json=body).json()
    tokenizer = engine["base"].tokenizer
    tokens = torch.tensor([tokenizer.encode("ROMEO:")])
    kwargs = dict(max_new_tokens=30, temperature=0.8, seed=3, stop_at_eos=False, crop_context=True)

    def new(model):
        return model.generate(tokens, **kwargs)[0, tokens.shape[1] :].tolist()

    assert out["base"]["ids"] == new(engine["base"])
    assert out["tuned"]["ids"] == new(engine["tuned"])
    assert out["merged"]["ids"] == new(merged_copy(engine["tuned"]))
    assert out["tuned"]["text"] == tokenizer.decode(out["tuned"]["ids"])
    assert out["merged_is_tuned"] is False


@pytest.mark.slow
def test_spectra_and_the_task_vector_are_the_engines(client, finished, engine):
    name = finished["result"]["run"]
    spectra = client.post("/api/fine-tuning/spectra", json={"run": name}).json()
    expected = weight_changes(engine["base"], engine["tuned"]).to_dict()
    assert [m["name"] for m in spectra["modules"]] == [m["name"] for m in expected["modules"]]
    for shown, want in zip(spectra["modules"], expected["modules"], strict=True):
        assert shown["rank"] == want["rank"] == 2  # every map is adapted by the default targets, at rank 2
        assert shown["intruders"] == want["intruders"]
        assert shown["singular_values"][:4] == pytest.approx(want["singular_values"][:4], abs=1e-9)
    rows = client.post("/api/fine-tuning/lambda", json={"run": name}).json()["rows"]
    assert [r["scale"] for r in rows] == list(LAMBDAS)
    vector = TaskVector.between(engine["base"], engine["tuned"])
    for row in rows[::3]:
        want = engine["task"].evaluate(vector.apply_to(engine["base"], row["scale"]).eval())
        assert row["target_val_loss"] == pytest.approx(want["target_val_loss"], abs=1e-9)
        assert row["original_val_loss"] == pytest.approx(want["original_val_loss"], abs=1e-9)
    at = {r["scale"]: r for r in rows}
    assert at[0.0]["original_val_loss"] == pytest.approx(engine["before"]["original_val_loss"], abs=1e-6)  # λ = 0: the base
    last = finished["result"]["evals"][-1]
    assert at[1.0]["target_val_loss"] == pytest.approx(last["target_val_loss"], abs=1e-5)  # λ = 1: the fine-tuned model
    listed = client.get("/api/fine-tuning/runs").json()["runs"]
    assert [(r["name"], r["finished"]) for r in listed] == [(name, True)]


@pytest.mark.slow
def test_a_full_fine_tuning_run_changes_every_direction_and_has_nothing_to_merge(client):
    job = start(client, {"method": "full", "lr": 1e-3, "steps": 2, "eval_every": 2, "batch_size": 4}).json()
    assert job["params"]["name"] == "shakespeare-char-austen-full-run1"
    wait_for(lambda: client.get(f"/api/jobs/{job['id']}").json()["state"] not in ("queued", "running"), timeout=180)
    view = client.get(f"/api/jobs/{job['id']}").json()
    assert view["state"] == "done", view["error"]
    name = view["result"]["run"]
    assert view["result"]["trainable"] == sum(p.numel() for p in zoo.load("shakespeare-char")[0].parameters())
    out = client.post("/api/fine-tuning/generate", json={"run": name, "prompt": {"text": "KING:"}, "seed": 1}).json()
    assert out["merged_is_tuned"] is True and out["merged"]["ids"] == out["tuned"]["ids"]
    base, _ = zoo.load("shakespeare-char")
    tokens = torch.tensor([base.tokenizer.encode("KING:")])
    kwargs = dict(max_new_tokens=80, temperature=0.8, seed=1, stop_at_eos=False, crop_context=True)
    assert out["base"]["ids"] == base.generate(tokens, **kwargs)[0, tokens.shape[1] :].tolist()
    modules = client.post("/api/fine-tuning/spectra", json={"run": name}).json()["modules"]
    assert all(m["rank"] > 2 for m in modules)  # two AdamW steps already change every map in many directions
