"""The Attention heads page's routes through the whole app: what they send is the toolkit's patterns,
scores and circuits, and every bad request is a 4xx that names its field and the limit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings.analysis.circuits import copying_scores, full_OV, full_QK
from llm_workings.analysis.heads import attention_patterns, head_scores
from llm_workings.lab.config import LabConfig
from llm_workings.lab.heads import compute, wire
from llm_workings.lab.heads.settings import MAX_TOKENS
from llm_workings.lab.prompts import Prompt
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor, encode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune"


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    from hf_checkpoints import build_checkpoint

    return build_checkpoint("llama", tmp_path_factory.mktemp("ckpt") / "llama-random")


@pytest.fixture(scope="module")
def client(llama_dir):
    with TestClient(create_app(LabConfig(models=(str(llama_dir),))), base_url="http://127.0.0.1:8000") as c:
        yield c


@pytest.fixture(scope="module")
def repeated(client):
    return client.post("/api/prompts/repeated", json={"model": "induction-2l", "seed": 0}).json()["ids"]


def held(client, model_id):
    return client.app.state.models.hold(model_id)


def reference_patterns(model, ids):
    """The toolkit's patterns (a run_with_cache of every hook_pattern), [layer, head, q, k]."""
    return attention_patterns(model, torch.tensor([ids]))[:, 0]


def unpack(body):
    """The grid's packed lower triangles back to [heads sent, n, n] patterns (what page.js does)."""
    n = len(body["prompt"]["ids"])
    packed = decode_tensor(body["patterns"])
    rows, cols = np.tril_indices(n)
    full = np.zeros((packed.shape[0], n, n), dtype=np.float32)
    full[:, rows, cols] = packed
    return full


def grid(client, model_id, **prompt):
    answer = client.post("/api/heads/grid", json={"model": model_id, "prompt": prompt})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_schema_lists_the_settings_sorts_and_limits(client):
    schema = client.get("/api/heads/schema").json()
    assert [s["name"] for s in schema["settings"]] == ["layer", "head", "sort"]
    assert schema["sorts"] == ["layer", "previous_token", "duplicate_token", "induction", "entropy"]
    assert schema["limits"]["tokens"] == MAX_TOKENS and schema["induction_threshold"] == compute.INDUCTION_THRESHOLD


@pytest.mark.parametrize(("model_id", "prompt"), [("induction-2l", None), ("austen-bpe", TEXT), ("cli.llama-random", TEXT)])
def test_the_grid_sends_run_with_caches_patterns_and_head_scores_numbers(client, repeated, model_id, prompt):
    body = grid(client, model_id, **({"ids": repeated} if prompt is None else {"text": prompt}))
    with held(client, model_id) as h:
        ids = body["prompt"]["ids"]
        expected = reference_patterns(h.model, ids)
        scores = head_scores(h.model, torch.tensor([ids]))
    n_layers, n_heads, n, _ = expected.shape
    assert body["heads"] == list(range(n_layers * n_heads)) and body["thinned"] == []
    # the bytes are the engine's patterns quantised, and so within half a step of them
    packed = wire.lower_triangle(expected)
    assert body["patterns"]["data"] == encode_tensor(packed.numpy(), "uint8")["data"]
    step = (body["patterns"]["max"] - body["patterns"]["min"]) / 255
    np.testing.assert_allclose(unpack(body), expected.reshape(-1, n, n).numpy(), atol=step / 2 + 1e-7)
    for kind, values in scores.scores.items():
        assert np.array_equal(decode_tensor(body["scores"][kind]), values.numpy(), equal_nan=True), kind


def test_attention_by_distance_is_the_mean_of_each_diagonal(client, repeated):
    body = grid(client, "induction-2l", ids=repeated)
    with held(client, "induction-2l") as h:
        expected = reference_patterns(h.model, repeated)
    by_distance = decode_tensor(body["by_distance"])
    n = len(repeated)
    for d in (0, 1, 19, n - 1):
        diagonal = torch.diagonal(expected, offset=-d, dim1=-2, dim2=-1).mean(-1)
        np.testing.assert_allclose(by_distance[:, :, d], diagonal.numpy(), rtol=1e-5, atol=1e-7)


def test_the_grid_names_induction_2ls_layer_1_heads_as_induction_heads(client, repeated):
    body = grid(client, "induction-2l", ids=repeated)
    assert sorted(map(tuple, body["induction_heads"])) == [(1, 0), (1, 1), (1, 2), (1, 3)]
    induction = decode_tensor(body["scores"]["induction"])
    assert [induction[layer, head] for layer, head in body["induction_heads"]] == sorted(induction[1], reverse=True)


def test_a_prompt_that_repeats_nothing_has_no_induction_score_and_no_induction_heads(client):
    body = grid(client, "induction-2l", ids=list(range(10)))
    assert np.isnan(decode_tensor(body["scores"]["induction"])).all() and body["induction_heads"] == []


def test_a_grid_past_its_byte_budget_keeps_a_subset_of_heads_and_says_so(client, repeated):
    with held(client, "induction-2l") as h:
        result = compute.grid(h.model, torch.tensor([repeated]))
    prompt = Prompt(repeated, [str(i) for i in repeated], False)
    per_head = len(repeated) * (len(repeated) + 1) // 2
    out = wire.grid("induction-2l", prompt, result, 0.4, budget=4 * per_head * 4 // 3 + 4)
    assert out.heads == [0, 2, 5, 7] and out.patterns.shape == [4, per_head]
    assert out.thinned and out.thinned[0].startswith("head patterns: 4 of 8 kept")
    assert all(len(decode_tensor(t.model_dump()).ravel()) == 8 for t in out.scores.values())  # every head's scores


def test_one_head_in_depth_is_its_float32_pattern_and_the_toolkits_circuits(client, repeated):
    answer = client.post("/api/heads/head", json={"model": "induction-2l", "prompt": {"ids": repeated}, "layer": 1, "head": 2})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    with held(client, "induction-2l") as h:
        model = h.model
        expected = reference_patterns(model, repeated)[1, 2]
        qk, ov = full_QK(model)[1, 2].AB.detach(), full_OV(model)[1, 2].AB.detach()
        copying = copying_scores(model)
    assert np.array_equal(decode_tensor(body["pattern"]), expected.numpy())
    assert body["query"] == len(repeated) - 1 and body["key"] == int(expected[-1].argmax())
    circuits = body["circuits"]
    assert np.array_equal(decode_tensor(circuits["full_qk"]), qk.numpy().astype(np.float16).astype(np.float32))
    assert np.array_equal(decode_tensor(circuits["full_ov"]), ov.numpy().astype(np.float16).astype(np.float32))
    assert circuits["copying_score"] == pytest.approx(float(copying[1, 2]), abs=1e-6)


@pytest.mark.parametrize("model_id", ["induction-2l", "cli.llama-random"])
def test_the_rotary_curve_passes_through_the_score_the_model_computed(client, repeated, model_id):
    """q.k for the pair at distance query - key is the model's own hook_attn_scores entry, and moving both
    vectors the same number of places changes nothing (rotary scores depend on distance only)."""
    prompt = {"ids": repeated} if model_id == "induction-2l" else {"text": TEXT}
    body = client.post(
        "/api/heads/head", json={"model": model_id, "prompt": prompt, "layer": 1, "head": 3, "query": 12, "key": 4}
    )
    assert body.status_code == 200, body.text
    body = body.json()
    curve = decode_tensor(body["rotary_scores"])
    assert body["actual_score"] == pytest.approx(float(curve[8]), rel=1e-4, abs=1e-5)
    with held(client, model_id) as h:
        model = h.model
        ids = body["prompt"]["ids"]
        with torch.no_grad():
            _, cache = model.run_with_cache(torch.tensor([ids]))
        q, k = cache["blocks.1.attn.hook_q"][0, 12, 3], cache["blocks.1.attn.hook_k"][0, 4, 3 // model.cfg.group_size]
        rotary = model.blocks[1].attn.rotary
        for start in (0, 7, 20):  # the pair at positions (start + 8, start)
            q_at = rotary(q.reshape(1, 1, 1, -1), start + 8)[0, 0, 0]
            k_at = rotary(k.reshape(1, 1, 1, -1), start)[0, 0, 0]
            assert float(q_at @ k_at) / model.cfg.d_head**0.5 == pytest.approx(float(curve[8]), rel=1e-4, abs=1e-5)
    assert body["actual_score"] == pytest.approx(float(cache["blocks.1.attn.hook_attn_scores"][0, 3, 12, 4]), abs=1e-5)


def test_a_learned_position_model_has_no_rotary_curve_and_a_position_similarity(client):
    body = client.post("/api/heads/head", json={"model": "austen-bpe", "prompt": {"text": TEXT}, "layer": 0, "head": 0}).json()
    assert body["rotary_scores"] is None and body["circuits"] is None
    assert "4,096 tokens" in body["circuits_note"] and "512" in body["circuits_note"]
    positions = client.post("/api/heads/positions", json={"model": "austen-bpe"}).json()
    assert positions["positions"] == "learned" and positions["similarity"]["shape"] == [128, 128]
    with held(client, "austen-bpe") as h:
        w = torch.nn.functional.normalize(h.model.W_pos.detach(), dim=-1)
    step = (positions["similarity"]["max"] - positions["similarity"]["min"]) / 255
    np.testing.assert_allclose(decode_tensor(positions["similarity"]), (w @ w.T).numpy(), atol=step / 2 + 1e-6)
    rotary = client.post("/api/heads/positions", json={"model": "induction-2l"}).json()
    assert rotary["similarity"] is None and rotary["rotary_dim"] == 16


@pytest.mark.parametrize(
    ("route", "change", "status", "field", "says"),
    [
        ("grid", {"prompt": {"ids": []}}, 400, "prompt", "the prompt is empty"),
        ("grid", {"prompt": {"ids": list(range(60))}}, 413, "prompt", "the prompt is 60 tokens; induction-2l reads at most 49"),
        ("grid", {"prompt": {"text": "abc"}}, 422, "prompt", "induction-2l has no text tokenizer"),
        ("grid", {"prompt": {"ids": [3, 500]}}, 400, "prompt", "ids run from 0 to 127"),
        ("head", {"layer": 2}, 400, "layer", "layer must be from 0 to 1: induction-2l has 2 layers; got 2"),
        ("head", {"head": 4}, 400, "head", "head must be from 0 to 3: induction-2l has 4 heads a layer; got 4"),
        ("head", {"layer": 999}, 400, "layer", "between 0 and 255"),
        ("head", {"query": 10}, 400, "query", "query must be a position of the prompt, from 0 to 4; got 10"),
        ("head", {"query": 1, "key": 3}, 400, "key", "a token attends only backwards"),
        ("head", {"colour": "red"}, 400, "colour", "unknown field 'colour'"),
    ],
)
def test_bad_requests_name_the_field_and_the_limit(client, route, change, status, field, says):
    body = {"model": "induction-2l", "prompt": {"ids": [1, 2, 3, 4, 5]}, **({"layer": 0, "head": 0} if route == "head" else {})}
    answer = client.post(f"/api/heads/{route}", json={**body, **change})
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field and says in answer.json()["error"]


def test_a_prompt_past_the_pages_limit_is_refused_even_within_the_models_context(client, monkeypatch):
    monkeypatch.setattr("llm_workings.lab.heads.routes.MAX_TOKENS", 8)
    answer = client.post("/api/heads/grid", json={"model": "induction-2l", "prompt": {"ids": list(range(10))}})
    assert answer.status_code == 413 and answer.json()["error"] == "the prompt is 10 tokens; this page shows at most 8"
