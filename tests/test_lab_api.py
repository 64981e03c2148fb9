"""The lab's HTTP API: numbers equal the engine's, runs are exact and isolated, bad input is named."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import sys

import numpy as np
import pytest

from llm_workings.lab.backprop import routes
from llm_workings.lab.backprop import run as backprop_run
from llm_workings.lab.backprop.settings import SETTINGS
from llm_workings.lab.server import serve_in_thread
from llm_workings.nn import HIDDEN_ACTIVATIONS, LOSSES, MLP, OUTPUT_ACTIVATIONS, REGULARIZATIONS, MLPTrainer
from llm_workings.nn.functions import FUSED_OUTPUT_GRADIENT


@pytest.fixture(scope="module")
def server():
    srv = serve_in_thread()
    yield srv
    srv.shutdown()


def call(server, method, path, body=None, headers=None, raw: bytes | None = None):
    conn = http.client.HTTPConnection(server.host, server.port, timeout=30)
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
    resp = conn.getresponse()
    payload = resp.read()
    conn.close()
    kind = resp.getheader("Content-Type", "")
    return resp.status, (json.loads(payload) if kind.startswith("application/json") else payload), resp


def create(server, settings=None, **extra):
    status, state, _ = call(server, "POST", "/api/backprop/runs", {"settings": settings or {}, **extra})
    assert status == 201, state
    return state


def step(server, state, n=1, **extra):
    status, new, _ = call(server, "POST", f"/api/backprop/runs/{state['run_id']}/step", {"steps": n, **extra})
    assert status == 200, new
    return new


def engine_trainer(settings: dict) -> MLPTrainer:
    """The run the page describes, built directly from the engine."""
    s = SETTINGS.validate(settings)
    return backprop_run.trainer_for(s, backprop_run.dataset_for(s))


SPIRAL = {
    "dataset": "spiral",
    "samples": 300,
    "hidden": [6, 5],
    "batch_size": 16,
    "learning_rate": 0.1,
    "momentum": 0.5,
    "regularization": "l2",
    "reg_rate": 0.001,
    "seed": 11,
}


def test_schema_describes_every_setting(server):
    status, schema, _ = call(server, "GET", "/api/backprop/schema")
    assert status == 200
    names = [s["name"] for s in schema["settings"]]
    assert names == list(SETTINGS.defaults())
    assert set(schema["live"]) == {"learning_rate", "reg_rate"}
    assert schema["losses_for_output"]["softmax"] == ["cce"]


def test_schema_carries_the_maths_tables_of_every_engine_function(server):
    """The page's equations read these; each rule lives in Python once (nn/ or lab/backprop/maths.py)."""
    formulas = call(server, "GET", "/api/backprop/schema")[1]["formulas"]
    assert set(formulas["activations"]) == set(HIDDEN_ACTIVATIONS) | set(OUTPUT_ACTIVATIONS)
    assert formulas["activations"]["tanh"]["f"] == HIDDEN_ACTIVATIONS["tanh"].formula
    assert all(f["symbol"] and f["df"] for f in formulas["activations"].values())
    assert set(formulas["losses"]) == set(LOSSES) and all(f["dL_da"] for f in formulas["losses"].values())
    assert {tuple(pair) for pair in formulas["fused"]} == FUSED_OUTPUT_GRADIENT
    assert set(formulas["penalties"]) == set(REGULARIZATIONS) - {"none"}
    assert all("#W" in p["dR_dW"] for p in formulas["penalties"].values())


def test_trace_in_the_api_equals_the_engine(server):
    state = step(server, create(server, SPIRAL), 7, example=3)
    trainer = engine_trainer(SPIRAL)
    for _ in range(6):
        trainer.step()
    t = trainer.step(trace=True)
    tr = state["trace"]
    assert tr["step"] == 7 and tr["example"] == 3
    assert tr["batch_indices"] == t.batch_indices.tolist()
    assert tr["data_loss"] == t.data_loss and tr["reg_loss"] == t.reg_loss
    for ours, L in zip(tr["layers"], t.layers):
        assert ours["z"] == L.z[3].tolist() and ours["a"] == L.a[3].tolist()
        assert ours["dL_da"] == L.dL_da[3].tolist() and ours["dL_dz"] == L.dL_dz[3].tolist()
        assert ours["dL_dW"] == L.dL_dW.tolist() and ours["dR_dW"] == L.dR_dW.tolist()
        assert ours["W_after"] == L.W_after.tolist()
    assert state["network"]["weights"] == [W.tolist() for W in trainer.net.weights]


def test_step_back_across_a_checkpoint_is_exact(server):
    run = step(server, create(server, SPIRAL), 150)
    status, back, _ = call(server, "POST", f"/api/backprop/runs/{run['run_id']}/back", {"steps": 60})
    assert status == 200 and back["step"] == 90
    fresh = step(server, create(server, SPIRAL), 90)
    for key in ("network", "trace", "curves", "metrics", "heatmaps", "parameters"):
        assert back[key] == fresh[key], key
    again = step(server, back, 60)
    assert again["network"] == run["network"] and again["curves"] == run["curves"]


def test_live_change_replays_identically_from_the_url_log(server):
    run = step(server, create(server), 30)
    status, changed, _ = call(server, "POST", f"/api/backprop/runs/{run['run_id']}/set", {"settings": {"learning_rate": 2.0}})
    assert status == 200 and changed["settings"]["learning_rate"] == 2.0
    after = step(server, changed, 20)
    assert after["changes"] == [[30, "learning_rate", 2.0]]
    replayed = create(server, {}, step=50, changes=after["changes"])
    assert replayed["network"] == after["network"] and replayed["curves"] == after["curves"]
    assert replayed["trace"] == after["trace"]
    # Going back before the change restores the learning rate of that time.
    status, back, _ = call(server, "POST", f"/api/backprop/runs/{run['run_id']}/back", {"steps": 25})
    assert back["step"] == 25 and back["settings"]["learning_rate"] == 0.5 and back["changes"] == []


def test_runs_are_independent(server):
    a, b = create(server), create(server)
    a = step(server, a, 40)
    status, b_now, _ = call(server, "GET", f"/api/backprop/runs/{b['run_id']}")
    assert status == 200 and b_now["step"] == 0 and b_now["network"] == b["network"]
    assert a["network"] != b_now["network"]


def test_data_are_the_engines_dataset(server):
    run = create(server, SPIRAL)
    status, data, _ = call(server, "GET", f"/api/backprop/runs/{run['run_id']}/data")
    expected = backprop_run.dataset_for(SETTINGS.validate(SPIRAL))
    assert status == 200 and data == run["data"]
    assert data["train"]["X"] == expected.X_train.tolist() and data["test"]["y"] == expected.y_test.tolist()
    assert data["train"]["clean"] == expected.y_train_clean.tolist() and data["domain"] == list(expected.domain)


def test_a_deleted_run_is_gone(server):
    rid = create(server)["run_id"]
    status, body, _ = call(server, "DELETE", f"/api/backprop/runs/{rid}")
    assert status == 200 and body == {"deleted": rid}
    assert call(server, "GET", f"/api/backprop/runs/{rid}")[0] == 404
    assert call(server, "DELETE", f"/api/backprop/runs/{rid}")[0] == 200  # deleting twice is harmless


def test_history_and_example_are_the_callers_choice(server):
    run = step(server, create(server, SPIRAL), 3, history=False)
    assert run["parameters"] is None and run["trace"]["example"] == 0
    status, state, _ = call(server, "GET", f"/api/backprop/runs/{run['run_id']}?example=5&history=1")
    assert status == 200 and state["trace"]["example"] == 5 and state["parameters"]["steps"] == [0, 1, 2, 3]
    assert state["network"] == run["network"]  # reading a run leaves it where it was


def test_xor_panel_and_heatmaps_come_from_the_network(server):
    state = step(server, create(server), 300)
    net = MLP.from_dict(state["network"])
    probs = net.predict(np.array(state["xor"]["points"]))[:, 0]
    assert state["xor"]["outputs"] == probs.tolist()
    assert state["xor"]["accuracy"] == 1.0
    hm = state["heatmaps"]
    n = hm["output_resolution"]
    grid = np.frombuffer(base64.b64decode(hm["output"]["data"]), np.uint8).reshape(n, n)
    x0, x1, y0, y1 = hm["domain"]
    # Top-left cell is (x_min, y_max); bottom-right is (x_max, y_min).
    corners = np.array([[x0, y1], [x1, y0]])
    expected = net.predict(corners)[:, 0]
    decoded = hm["output"]["lo"] + (hm["output"]["hi"] - hm["output"]["lo"]) * np.array([grid[0, 0], grid[-1, -1]]) / 255
    np.testing.assert_allclose(decoded, expected, atol=0.5 / 255 + 1e-12)
    assert len(hm["neurons"]) == 2 and len(hm["neurons"][0]) == 4


def test_divergence_is_reported_in_the_state_and_training_stops(server):
    settings = {
        "dataset": "gaussians",
        "hidden": [8],
        "activation": "relu",
        "output": "linear",
        "loss": "mse",
        "learning_rate": 20.0,
        "batch_size": 10,
    }
    state = step(server, create(server, settings), 500)
    assert state["error"]["cause"] == "learning rate"
    assert state["step"] == state["error"]["step"] - 1
    assert "learning rate (20)" in state["error"]["message"]


def test_step_limit_stops_a_run(server, monkeypatch):
    monkeypatch.setattr(backprop_run, "MAX_STEPS", 15)
    state = step(server, create(server), 40)
    assert state["step"] == 15 and state["error"]["cause"] == "step limit"


def test_a_batch_larger_than_the_training_set_is_capped_with_a_notice(server):
    status, state, _ = call(server, "POST", "/api/backprop/runs", {"settings": {"dataset": "xor", "batch_size": 30}})
    assert status == 201
    assert state["run_settings"]["batch_size"] == 4 and state["settings"]["batch_size"] == 4
    assert state["notices"] == ["Batch size 30 is more than the 4 training points, so each step uses all 4."]
    assert step(server, state, 1)["trace"]["batch_size"] == 4


def test_export_loads_with_the_snippet(server, tmp_path):
    run = step(server, create(server), 100)
    status, export, _ = call(server, "GET", f"/api/backprop/runs/{run['run_id']}/export")
    assert status == 200
    (tmp_path / "network.json").write_text(json.dumps(export["network"]))
    out = subprocess.run([sys.executable, "-c", export["python"]], cwd=tmp_path, capture_output=True, text=True, check=True)
    expected = MLP.from_dict(run["network"]).predict(np.array([[0.0, 1.0]]))
    assert out.stdout.strip() == str(expected)


def test_evicted_runs_say_so(server, monkeypatch):
    first = create(server)
    monkeypatch.setattr(routes.RUNS, "capacity", 2)
    create(server), create(server)
    status, body, _ = call(server, "POST", f"/api/backprop/runs/{first['run_id']}/step", {"steps": 1})
    assert status == 404 and "reload the page" in body["error"]


@pytest.mark.parametrize(
    "body, field, words",
    [
        ({"settings": {"hidden": [4, 40]}}, "hidden", "hidden must be between 1 and 16; got 40"),
        ({"settings": {"hidden": [1] * 7}}, "hidden", "at most 6 entries"),
        ({"settings": {"learning_rate": 1000}}, "learning_rate", "learning_rate must be between"),
        ({"settings": {"learning_rate": "fast"}}, "learning_rate", "must be a finite number"),
        ({"settings": {"dataset": "mnist"}}, "dataset", "dataset must be one of"),
        ({"settings": {"colour": "red"}}, "colour", "unknown setting 'colour'"),
        ({"settings": {"output": "linear", "loss": "bce"}}, "loss", "does not fit output 'linear'"),
        ({"settings": {}, "step": 10**9}, "step", "step must be an integer between 0 and"),
        ({"settings": {}, "changes": [[3, "dataset", "xor"]]}, "changes", "only ['learning_rate', 'reg_rate'] can change"),
        ({"settings": {}, "changes": [[3, "learning_rate"]]}, "changes", "each change must be [step, setting, value]"),
        ({"settings": [], "step": 1}, "settings", "settings must be a JSON object"),
        ({"sneaky": 1}, "sneaky", "unknown field 'sneaky'"),
    ],
)
def test_invalid_run_payloads_name_the_field(server, body, field, words):
    status, error, _ = call(server, "POST", "/api/backprop/runs", body)
    assert status == 400
    assert error["field"] == field and words in error["error"]


def test_other_bad_requests(server):
    run = create(server)
    rid = run["run_id"]
    status, error, _ = call(server, "POST", f"/api/backprop/runs/{rid}/step", {"steps": 5000})
    assert status == 400 and error["field"] == "steps" and "between 1 and 1000" in error["error"]
    status, error, _ = call(server, "POST", f"/api/backprop/runs/{rid}/set", {"settings": {"dataset": "moons"}})
    assert status == 400 and "cannot change mid-run" in error["error"]
    status, error, _ = call(server, "POST", "/api/backprop/runs", raw=b"{not json")
    assert status == 400 and "not valid JSON" in error["error"]
    status, error, _ = call(server, "POST", "/api/backprop/runs", raw=b"x" * (70 * 1024))
    assert status == 413 and "limit" in error["error"]
    status, error, _ = call(server, "GET", "/api/backprop/runs/nope/export")
    assert status == 404
    status, error, _ = call(server, "DELETE", "/api/backprop/schema")
    assert status == 405 and "use GET" in error["error"]
    status, error, _ = call(server, "POST", f"/api/backprop/runs/{rid}/step", {"steps": 1, "history": "no"})
    assert status == 400 and error["field"] == "history"
    status, error, _ = call(server, "GET", f"/api/backprop/runs/{rid}?example=x")
    assert status == 400 and error["field"] == "example"


def test_host_header_and_origin_are_checked(server):
    port = server.port
    status, error, _ = call(server, "GET", "/api/backprop/schema", headers={"Host": f"attacker.example:{port}"})
    assert status == 403 and "Host header" in error["error"]
    status, _, _ = call(server, "GET", "/api/backprop/schema", headers={"Host": f"localhost:{port}"})
    assert status == 200
    status, error, _ = call(server, "POST", "/api/backprop/runs", {"settings": {}}, headers={"Origin": "http://attacker.example"})
    assert status == 403 and "cross-origin" in error["error"]
    status, _, _ = call(server, "POST", "/api/backprop/runs", {"settings": {}}, headers={"Origin": f"http://127.0.0.1:{port}"})
    assert status == 201


def test_static_files_are_confined_and_carry_a_strict_policy(server):
    status, body, resp = call(server, "GET", "/static/../server.py")
    assert status == 404
    status, body, resp = call(server, "GET", "/static/%2e%2e/server.py")
    assert status == 404
    status, body, resp = call(server, "GET", "/api/backprop/schema")
    assert "default-src 'self'" in resp.getheader("Content-Security-Policy")
