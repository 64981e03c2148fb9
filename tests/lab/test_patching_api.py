"""The Patching page's routes: every number equals the analysis toolkit's on the same inputs, a large
sweep runs as a job whose progress carries each layer's row and which a cancel stops part-way, and
bad input gets a message that names it."""

from __future__ import annotations

import time

import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings.analysis.ablation import ablate
from llm_workings.analysis.attribution_patching import attribution_patch, pearson
from llm_workings.analysis.metrics import LogitDiff
from llm_workings.analysis.patching import patch_heads, patch_residual
from llm_workings.analysis.path_patching import path_patch
from llm_workings.lab.config import LabConfig
from llm_workings.lab.patching.pair import AnswerLoss, AnswerProbability
from llm_workings.lab.patching.presets import PRESETS
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")

DEEP = "cli.deep-random"
LONG_TEXT = "the quick brown fox jumps over the "  # 35 characters, one token each
OTHER_TEXT = "the quick brown cat jumps over the "


@pytest.fixture(scope="module")
def client(deep_model_dir):
    app = create_app(LabConfig(models=(str(deep_model_dir),)))
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        yield c


def preset(name: str, **extra) -> dict:
    return {"model": name, **{k: PRESETS[name][k] for k in ("clean", "corrupted", "answer", "wrong")}, **extra}


def tensors(name: str, model) -> tuple[torch.Tensor, torch.Tensor, LogitDiff]:
    p = PRESETS[name]
    ids = model.tokenizer.encode if model.tokenizer is not None else None

    def prompt(side):
        return torch.tensor([p[side]["ids"] if "ids" in p[side] else ids(p[side]["text"])])

    answer = [p["answer"]["id"] if "id" in p["answer"] else ids(p["answer"]["text"])[0]]
    wrong = [p["wrong"]["id"] if "id" in p["wrong"] else ids(p["wrong"]["text"])[0]]
    return prompt("clean"), prompt("corrupted"), LogitDiff(torch.tensor([answer + wrong]))


def test_the_schema_lists_settings_limits_and_a_preset_per_bundled_model(client):
    schema = client.get("/api/patching/schema").json()
    assert {s["name"] for s in schema["settings"]} == {"metric", "activation", "positions", "direction", "method"}
    assert set(schema["presets"]) == {"induction-2l", "shakespeare-char", "austen-bpe", "modadd-113"}
    assert schema["limits"]["tokens"] == 64


def test_the_pair_is_aligned_with_its_differences_and_both_runs_scores(client, austen_model):
    out = client.post("/api/patching/pair", json=preset("austen-bpe")).json()
    assert out["clean"]["str_tokens"] == ['"', "You", " are", " very", " kind"]
    assert out["corrupted"]["str_tokens"] == ["And", " you", " are", " very", " kind"]
    assert out["differs"] == [0, 1]
    assert out["answer"]["text"] == ',"' and out["wrong"]["text"] == ","
    clean, corrupted, metric = tensors("austen-bpe", austen_model)
    with torch.no_grad():
        assert out["clean_score"] == pytest.approx(float(metric(austen_model(clean))), abs=1e-5)
        assert out["corrupted_score"] == pytest.approx(float(metric(austen_model(corrupted))), abs=1e-5)
    assert out["clean_top"][0]["probability"] >= out["clean_top"][-1]["probability"]
    assert "mlp_out" in out["activations"]


@pytest.mark.parametrize(
    ("name", "activation", "positions"),
    [
        ("induction-2l", "resid_pre", "all"),
        ("austen-bpe", "mlp_out", "all"),
        ("induction-2l", "z", "each"),
        ("modadd-113", "pattern", "all"),
    ],
)
def test_a_sweep_is_the_toolkits_sweep_cell_for_cell(client, request, name, activation, positions):
    model = request.getfixturevalue(
        {"induction-2l": "induction_model", "austen-bpe": "austen_model", "modadd-113": "modadd_model"}[name]
    )
    out = client.post(
        "/api/patching/sweep", json=preset(name, activation=activation, positions=positions, background=False)
    ).json()
    result = out["result"]
    clean, corrupted, metric = tensors(name, model)
    if activation.startswith(("resid", "mlp", "attn")):
        expected = patch_residual(model, clean, corrupted, metric, activation, progress=False)
    else:
        expected = patch_heads(model, clean, corrupted, metric, activation, by_position=positions == "each", progress=False)
    values = expected.values if expected.values.ndim == 2 else expected.values.permute(0, 2, 1).flatten(0, 1)
    assert (decode_tensor(result["values"]) == values.numpy()).all()
    normalized = expected.normalized if expected.values.ndim == 2 else expected.normalized.permute(0, 2, 1).flatten(0, 1)
    assert (decode_tensor(result["normalized"]) == normalized.numpy()).all()
    assert result["rows"][0] == ("L0" if expected.values.ndim == 2 else "L0H0")
    estimate = attribution_patch(model, clean, corrupted, metric, activation, tuple(expected.axes[1:]))
    assert result["pearson"] == pytest.approx(pearson(estimate.values, expected.values), abs=1e-6)


def test_the_preview_is_attribution_patching(client, induction_model):
    out = client.post("/api/patching/preview", json=preset("induction-2l")).json()
    clean, corrupted, metric = tensors("induction-2l", induction_model)
    expected = attribution_patch(induction_model, clean, corrupted, metric, "resid_pre", ("pos",))
    assert out["kind"] == "estimate"
    assert decode_tensor(out["values"]) == pytest.approx(expected.values.numpy(), abs=1e-5)


def test_path_patching_and_ablation_are_the_toolkits(client, induction_model):
    clean, corrupted, metric = tensors("induction-2l", induction_model)
    out = client.post("/api/patching/path", json=preset("induction-2l", sender="L0H2", direction="noise")).json()
    assert out["rows"] == ["L1 heads", "L1H0", "L1H1", "L1H2", "L1H3"] and out["cols"] == ["q", "k", "v"]
    values = decode_tensor(out["values"])
    together = path_patch(induction_model, clean, corrupted, metric, [f"L1H{h}.k" for h in range(4)], ["L0H2"], "noise")
    alone = path_patch(induction_model, clean, corrupted, metric, ["L1H3.v"], ["L0H2"], "noise")
    assert values[0, 1] == pytest.approx(float(together.values[0]), abs=1e-5)
    assert values[4, 2] == pytest.approx(float(alone.values[0]), abs=1e-5)
    out = client.post("/api/patching/ablate", json=preset("induction-2l", components=["L1H0", "L1H1"], method="mean")).json()
    assert out["value"] == pytest.approx(ablate(induction_model, clean, ["L1H0", "L1H1"], "mean", metric), abs=1e-5)
    assert out["clean"] == pytest.approx(13.585, abs=1e-3)


def test_neurons_are_ablated_with_heads_as_the_toolkit_does(client, austen_model):
    clean, _, metric = tensors("austen-bpe", austen_model)
    out = client.post("/api/patching/ablate", json=preset("austen-bpe", components=["L0N17", "L2H2"], method="mean")).json()
    assert out["value"] == pytest.approx(ablate(austen_model, clean, ["L0N17", "L2H2"], "mean", metric), abs=1e-5)
    assert out["value"] != pytest.approx(out["clean"], abs=1e-4)


def test_probability_and_loss_score_the_answer_after_the_last_token(client, austen_model):
    clean, corrupted, _ = tensors("austen-bpe", austen_model)
    answer = austen_model.tokenizer.encode(',"')[0]
    with torch.no_grad():
        p = austen_model(clean)[0, -1].softmax(-1)[answer]
    for metric, expected in (("probability", p), ("loss", -p.log())):
        out = client.post("/api/patching/pair", json=preset("austen-bpe", metric=metric)).json()
        assert out["clean_score"] == pytest.approx(float(expected), rel=1e-5)
    logits = torch.randn(3, 2, 4, 10)  # [runs, batch, pos, d_vocab]: batched agrees with one run at a time
    for metric in (AnswerProbability(7), AnswerLoss(7)):
        assert metric.batched(logits)[1] == pytest.approx(float(metric(logits[1])))


def sweep_job(client, **extra) -> str:
    body = {
        "model": DEEP,
        "clean": {"text": LONG_TEXT},
        "corrupted": {"text": OTHER_TEXT},
        "answer": {"text": "a"},
        "wrong": {"text": "t"},
    }
    out = client.post("/api/patching/sweep", json={**body, **extra}).json()
    assert out["result"] is None and out["estimated_seconds"] > 1.0, out  # big enough to be a job by itself
    return out["job"]["id"]


def wait_for(client, job_id: str, predicate, timeout: float = 60.0) -> dict:
    end = time.monotonic() + timeout
    while not predicate(view := client.get(f"/api/jobs/{job_id}?points=true").json()):
        assert time.monotonic() < end, view
        time.sleep(0.02)
    return view


def test_a_large_sweep_is_a_job_that_cancel_stops_between_layers(client):
    job = sweep_job(client)
    running = wait_for(client, job, lambda v: any("rows" in p["metrics"] for p in v["points"] or []))
    assert running["kind"] == "patching-sweep"
    client.post(f"/api/jobs/{job}/cancel")
    view = wait_for(client, job, lambda v: v["state"] in ("done", "cancelled", "failed"))
    assert view["state"] == "cancelled" and view["result"] is None
    layers = [p["metrics"]["layer"] for p in view["points"] if "rows" in p["metrics"]]
    assert layers == list(range(len(layers))) and 1 <= len(layers) < 8
    assert all(
        len(p["metrics"]["rows"]) == 1 and len(p["metrics"]["rows"][0]) == len(LONG_TEXT)
        for p in view["points"]
        if "rows" in p["metrics"]
    )


def test_a_job_s_rows_are_the_final_result_s_rows(client, induction_model):
    out = client.post("/api/patching/sweep", json=preset("induction-2l", background=True)).json()
    view = wait_for(client, out["job"]["id"], lambda v: v["state"] in ("done", "failed"))
    assert view["state"] == "done", view
    rows = [p["metrics"]["rows"][0] for p in view["points"] if "rows" in p["metrics"]]
    assert torch.tensor(rows).numpy() == pytest.approx(decode_tensor(view["result"]["values"]), abs=0)


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        (
            {"corrupted": {"text": "And so you are very kind"}},
            "corrupted",
            ["5 tokens and the corrupted prompt 6", "'And', ' so', ' you'", "'\"', 'You'"],
        ),
        ({"answer": {"text": " Mr. Darcy"}}, "answer", ["' Mr. Darcy' is 3 tokens", "' Mr', '.', ' Darcy'", "single"]),
        ({"wrong": {"text": ","}, "answer": {"text": ","}}, "wrong", ["same token"]),
        ({"activation": "kk"}, "activation", ["must be one of"]),
        ({"wrong": None}, "wrong", ["wrong answer"]),
    ],
)
def test_bad_pairs_are_refused_by_name(client, change, field, words):
    body = {k: v for k, v in {**preset("austen-bpe"), **change}.items() if v is not None}
    out = client.post("/api/patching/sweep", json=body)
    assert 400 <= out.status_code < 500
    error = out.json()
    assert error["field"] == field, error
    for word in words:
        assert word in error["error"], error


@pytest.mark.parametrize(
    ("route", "change", "field", "words"),
    [
        ("sweep", {"activation": "mlp_out"}, "activation", ["attention-only"]),
        ("preview", {"activation": "mlp_out"}, "activation", ["attention-only"]),
        ("path", {"sender": "L5H0"}, "sender", ["layer 5 is out of range [0, 2)"]),
        ("path", {"sender": "L0H7"}, "sender", ["head 7 is out of range [0, 4)"]),
        ("path", {"sender": "L1H0"}, "sender", ["last layer"]),
        ("ablate", {"components": ["L9H1"]}, "components", ["layer 9 is out of range"]),
        ("ablate", {"components": ["L0N3"]}, "components", ["attention-only"]),
        ("pair", {"answer": {"text": "a"}}, "answer", ["no text tokenizer", "token id"]),
        ("pair", {"answer": {"id": 500}}, "answer", ["outside induction-2l's vocabulary", "127"]),
        ("pair", {"corrupted": dict(PRESETS["induction-2l"]["clean"])}, "corrupted", ["score the same"]),
        ("sweep", {"corrupted": dict(PRESETS["induction-2l"]["clean"])}, "corrupted", ["score the same"]),
    ],
)
def test_what_the_model_lacks_is_refused_by_name(client, route, change, field, words):
    body = {**preset("induction-2l"), "sender": "L0H2", **change}
    if route != "path":
        body.pop("sender")
    out = client.post(f"/api/patching/{route}", json=body)
    assert out.status_code == 422, out.json()
    assert out.json()["field"] == field
    for word in words:
        assert word in out.json()["error"]
