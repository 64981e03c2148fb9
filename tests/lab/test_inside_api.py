"""The Inside page's walk through the whole app, on the bundled models and on random GPT-2, NeoX and
Llama checkpoints: every number it sends is the engine's cache (or worked out from it) to 1e-6, each
stage's snippet reproduces its numbers, and bad choices are refused naming the limit."""

from __future__ import annotations

import math

import pytest
import torch
from fastapi.testclient import TestClient
from inside_helpers import close, engine_number, full_run, shown_numbers

from llm_workings.lab.config import LabConfig
from llm_workings.lab.models.cache import ModelCache
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "It is a truth universally acknowledged"
REPEATED = [60, 65, 96, 121, 4, 18, 105, 121, 31, 39, 111, 54] * 2


@pytest.fixture(scope="module")
def lab(hf_checkpoint_paths):
    config = LabConfig(models=hf_checkpoint_paths)
    return TestClient(create_app(config), base_url="http://127.0.0.1:8000"), ModelCache(config)


CASES = [
    ("induction-2l", {"ids": REPEATED}, dict(position=17, layer=1, head=1, sharpen=2.0)),
    ("austen-bpe", {"text": TEXT}, dict(position=4, layer=2, head=3)),
    ("cli.gpt2-random", {"text": TEXT}, dict(layer=1, head=2)),
    ("cli.neox-random", {"text": TEXT}, dict(position=3, layer=0, head=1)),
    ("cli.llama-random", {"text": TEXT}, dict(position=5, layer=1, head=3, sharpen=0.5)),
]


def walk(client, model_id, prompt, **choice):
    answer = client.post("/api/inside/walk", json={"model": model_id, "prompt": prompt, **choice})
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize(("model_id", "prompt", "choice"), CASES, ids=[c[0] for c in CASES])
def test_every_number_sent_is_the_engines_and_every_snippet_reproduces_its_stage(lab, model_id, prompt, choice):
    client, cache = lab
    body = walk(client, model_id, prompt, **choice)
    with cache.hold(model_id) as held:
        model = held.model
        logits, full = full_run(model, body["ids"])
        numbers = shown_numbers(body)
        assert len(numbers) > 100
        for hook, derived, index, value in numbers:
            expected = engine_number(model, logits, full, body, hook, derived, index)
            assert close(value, expected), (hook or derived, index, value, expected)
        namespace = {"model": model, "torch": torch, "tokens": torch.tensor([body["ids"]]), "logits": logits, "cache": full}
        namespace.update(pos=body["position"], layer=body["layer"], head=body["head"])
        for stage in body["stages"]:
            exec(stage["snippet"], namespace)  # its assert_close lines check it by hand
            for item in stage["items"]:
                if item.get("var") and item["kind"] in ("vector", "numbers"):
                    sent = decode_tensor(item["values"]).reshape(-1)
                    mine = namespace[item["var"]].reshape(-1).float().numpy()
                    if item["kind"] == "vector" and item["kept"]:
                        mine = mine[item["kept"]]
                    assert (sent == mine).all() or torch.allclose(torch.tensor(sent), torch.tensor(mine), atol=1e-6), (
                        stage["id"],
                        item["var"],
                    )
    wiring = body["wiring"]
    ids = [s["id"] for s in body["stages"]]
    assert ids == ["embed", "ln1", "qkv", "scores", "z", "attn_out"] + ([] if wiring["attn_only"] else ["mlp"]) + ["unembed"]
    hooks = {h for s in body["stages"] for h in s["hooks"]}
    assert ("hook_pos_embed" in hooks) == (wiring["positions"] == "learned")
    assert any("hook_rot_q" in h for h in hooks) == (wiring["positions"] == "rotary")
    assert any("hook_resid_mid" in h for h in hooks) == (not wiring["attn_only"] and not wiring["parallel_residual"])
    assert any("hook_pre_linear" in h for h in hooks) == wiring["gated_mlp"]
    mean_shown = any(d and d.startswith("mean:") for _, d, _, _ in shown_numbers(body))
    assert mean_shown == (wiring["norm"] == "layernorm")  # RMSNorm removes no mean


def test_the_wiring_is_each_familys_config(lab):
    client, _ = lab
    wiring = {m: walk(client, m, {"text": TEXT})["wiring"] for m in ("cli.gpt2-random", "cli.neox-random", "cli.llama-random")}
    assert wiring["cli.gpt2-random"]["positions"] == "learned" and not wiring["cli.gpt2-random"]["parallel_residual"]
    assert (
        wiring["cli.neox-random"]["parallel_residual"] and wiring["cli.neox-random"]["rotary_dim"] == 8
    )  # rotary_pct 0.5 of d_head 16
    llama = wiring["cli.llama-random"]
    assert llama["norm"] == "rmsnorm" and llama["gated_mlp"] and llama["n_kv_heads"] == 2 and llama["positions"] == "rotary"


def test_a_wide_model_is_thinned_to_the_budget_only_where_shown_as_colour():
    """Vectors past the byte budget come by stride, each kept entry still the cache's exact number;
    printed numbers (scores, the top neurons and tokens) are never thinned."""
    from types import SimpleNamespace

    from llm_workings.lab.inside import compute, stages
    from llm_workings.lab.inside.wire import MATRIX_BYTES, VECTOR_BYTES
    from llm_workings.transformer import Transformer, TransformerConfig

    cfg = TransformerConfig(d_model=256, n_layers=1, n_heads=4, d_vocab=50, n_ctx=16, d_mlp=40_000, name="wide")
    model = Transformer(cfg).init_weights(seed=1).eval()
    ids = list(range(10))
    walk = compute.run_walk(model, ids, 9, 0, 1)
    entry = SimpleNamespace(id="wide", source="cli", format="ours", location="wide")
    body = stages.build(entry, model, walk, [str(i) for i in ids], False, None, 1.0).model_dump()
    assert body["thinned"] and all("kept to fit" in note for note in body["thinned"])
    vectors = [i for s in body["stages"] for i in s["items"] if i["kind"] == "vector"]
    thinned = [v for v in vectors if v["kept"]]
    assert thinned and all(v["of"] == 40_000 for v in thinned)
    assert all(len(v["values"]["data"]) <= VECTOR_BYTES for v in vectors)
    matrices = [i for s in body["stages"] for i in s["items"] if i["kind"] == "matrix"]
    assert matrices and all(len(m["values"]["data"]) <= MATRIX_BYTES for m in matrices)
    logits, cache = full_run(model, ids)
    for hook, derived, index, value in shown_numbers(body):
        assert close(value, engine_number(model, logits, cache, body, hook, derived, index)), (hook or derived, index)
    top = next(i for s in body["stages"] for i in s["items"] if i["kind"] == "table")
    assert len(top["row_labels"]) == stages.TOP_NEURONS


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        ({"model": "austen-bpe", "prompt": {"text": ""}}, 400, "prompt", "the prompt is empty"),
        ({"model": "induction-2l", "prompt": {"ids": list(range(60))}}, 413, "prompt", "induction-2l reads at most 49 tokens"),
        ({"model": "austen-bpe", "prompt": {"text": TEXT}, "layer": 4}, 422, "layer", "austen-bpe has layers 0 to 3"),
        ({"model": "austen-bpe", "prompt": {"text": TEXT}, "head": 7}, 422, "head", "austen-bpe has heads 0 to 3"),
        ({"model": "austen-bpe", "prompt": {"text": "It is"}, "position": 5}, 422, "position", "positions 0 to 1"),
        ({"model": "austen-bpe", "prompt": {"text": TEXT}, "layer": -1}, 400, "layer", "between 0 and 4096"),
        ({"model": "induction-2l", "prompt": {"text": TEXT}}, 422, "prompt", "give the prompt as ids from 0 to 127"),
        ({"model": "austen-bpe", "prompt": {"text": TEXT}, "sharpen": 100}, 400, "sharpen", "between 0.25 and 8"),
    ],
)
def test_bad_choices_are_refused_naming_the_limit(lab, body, status, field, message):
    answer = lab[0].post("/api/inside/walk", json=body)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field and message in answer.json()["error"], answer.json()


def test_characters_the_tokenizer_cannot_spell_come_back_as_what_it_made_of_them(lab):
    client, cache = lab
    text = "café ☃"
    body = walk(client, "austen-bpe", {"text": text})
    with cache.hold("austen-bpe") as held:
        ids = held.tokenizer.encode(text)
        assert body["ids"] == ids and body["str_tokens"] == held.tokenizer.token_text(ids)
    assert math.isfinite(sum(v for *_, v in shown_numbers(body) if math.isfinite(v)))
