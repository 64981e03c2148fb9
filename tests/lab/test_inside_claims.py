"""Every checkpoint and try-this link of the Inside a transformer page, its claim checked against the
engine: each test reads the checkpoint's query from inside.html, runs the walk it sets up, and checks
what the reveal says. docs/lessons/inside-a-transformer.md quotes the same answers."""

from __future__ import annotations

import re
from html import unescape
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import pytest
import torch

from llm_workings import zoo
from llm_workings.lab.models.tokenizer import text_tokenizer
from llm_workings.lab.prompts import token_ids
from llm_workings.transformer.rotary import Rotary

pytestmark = pytest.mark.usefixtures("one_thread")

HTML = resources.files("llm_workings.lab").joinpath("static/inside.html").read_text()


def query(href: str) -> dict:
    q = {k: v[0] for k, v in parse_qs(urlsplit(unescape(href)).query).items()}
    return q


def checkpoint(name: str) -> dict:
    found = re.search(rf'id="checkpoint-{name}" data-query="([^"]+)"', HTML)
    assert found, f"checkpoint-{name} is not on the page"
    return query(found.group(1))


def try_links() -> list[dict]:
    return [query(h) for h in re.findall(r'<a class="try" href="([^"]+)"', HTML)]


@pytest.fixture(scope="module")
def models():
    loaded = {}
    for name in ("induction-2l", "austen-bpe"):
        model, tokenizer = zoo.load(name)
        loaded[name] = (model.eval(), text_tokenizer(tokenizer) if tokenizer is not None else None)
    return loaded


def run(models, q: dict):
    model, tok = models[q["model"]]
    ids = [int(i) for i in q["ids"].split(",")] if "ids" in q else token_ids(model, tok, q["text"])
    with torch.no_grad():
        _, cache = model.run_with_cache(torch.tensor([ids]))
    return model, ids, cache


def entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp_min(1e-30).log()).sum(-1)


def test_a_querys_weights_sum_to_one_and_are_zero_exactly_after_it(models):
    q = checkpoint("sum")
    model, ids, cache = run(models, q)
    n = len(ids)
    for layer in range(model.cfg.n_layers):
        pattern = cache["pattern", layer][0]  # [head, query, key]
        assert torch.allclose(pattern.sum(-1), torch.ones(pattern.shape[:2]), atol=1e-6)
        future = torch.ones(n, n, dtype=torch.bool).triu(1)
        assert (pattern[:, future] == 0).all()
        assert (pattern[:, ~future] > 0).all()  # on this prompt every visible key gets some weight
        assert (pattern[:, 0, 0] == 1).all()  # the try-this link: position 0 sees only itself
    assert query(re.search(r'href="(\?[^"]*position=0[^"]*)"', HTML).group(1))["model"] == q["model"]


def test_doubling_the_scores_sharpens_every_pattern_and_keeps_each_favourite(models):
    q = checkpoint("sharpen")
    assert float(q["sharpen"]) == 2
    model, ids, cache = run(models, q)
    for layer in range(model.cfg.n_layers):
        scores = cache["attn_scores", layer][0].double()
        pattern, doubled = scores.softmax(-1), (2 * scores).softmax(-1)
        assert torch.allclose(doubled.sum(-1), torch.ones(doubled.shape[:2], dtype=torch.double))
        assert (doubled.argmax(-1) == pattern.argmax(-1)).all()
        assert (doubled.max(-1).values >= pattern.max(-1).values - 1e-12).all()
        assert (entropy(doubled) <= entropy(pattern) + 1e-12).all()
        quarter = (0.25 * scores).softmax(-1)  # the try-this link: a quarter flattens
        assert (entropy(quarter) >= entropy(pattern) - 1e-12).all()
    # and the weights do not simply double: the favourite of query 17 gains less than 2x
    favourite = pattern[int(q["head"]), 17].max()
    assert doubled[int(q["head"]), 17].max() < 2 * favourite


def test_attn_out_is_the_sum_of_every_heads_output_plus_the_bias(models):
    q = checkpoint("heads")
    for name in ("austen-bpe", "induction-2l"):
        model, ids, cache = run(models, {**q, "model": name, "ids": "1,2,3,4,5,6,7"} if name == "induction-2l" else q)
        for layer in range(model.cfg.n_layers):
            b_O = model.blocks[layer].attn.b_O
            summed = cache["result", layer].sum(2) + (0 if b_O is None else b_O.detach())
            assert torch.allclose(cache["attn_out", layer], summed, atol=1e-5)
            mean = cache["result", layer].mean(2)
            assert not torch.allclose(cache["attn_out", layer], mean, atol=1e-3)


def test_a_rotary_score_depends_only_on_the_distance_between_query_and_key(models):
    q = checkpoint("rotary")
    model, ids, cache = run(models, q)
    assert model.cfg.positions == "rotary" and "hook_pos_embed" not in model.hook_dict
    rotary = Rotary(model.cfg)
    gen = torch.Generator().manual_seed(0)
    qv, kv = torch.randn(1, 1, 1, model.cfg.d_head, generator=gen), torch.randn(1, 1, 1, model.cfg.d_head, generator=gen)
    position, key = int(q["position"]), 4
    score = (rotary(qv, position) * rotary(kv, key)).sum()
    moved = (rotary(qv, position + 5) * rotary(kv, key + 5)).sum()
    assert torch.allclose(score, moved, atol=1e-5)
    assert not torch.allclose(score, (rotary(qv, position + 5) * rotary(kv, key)).sum(), atol=1e-3)
    # the reveal's try-this link: head 2 of layer 0 is a previous-token head at positions 13 and 18
    pattern = cache["pattern", 0][0, int(q["head"])]
    for p in (13, 18):
        assert int(pattern[p].argmax()) == p - 1


def test_the_induction_try_link_attends_to_the_token_after_the_earlier_copy(models):
    link = next(q for q in try_links() if q.get("layer") == "1" and q.get("model") == "induction-2l" and "position" in q)
    model, ids, cache = run(models, link)
    position = int(link["position"])
    earlier = ids.index(ids[position])
    assert earlier < position and int(cache["pattern", 1][0, int(link["head"]), position].argmax()) == earlier + 1 == 6


def test_every_try_link_and_checkpoint_names_a_walk_the_lab_accepts():
    from fastapi.testclient import TestClient

    from llm_workings.lab.server import create_app

    client = TestClient(create_app(), base_url="http://127.0.0.1:8000")
    queries = try_links() + [query(h) for h in re.findall(r'data-query="([^"]+)"', HTML)]
    assert len(queries) >= 10
    for q in queries:
        prompt = {"ids": [int(i) for i in q["ids"].split(",")]} if "ids" in q else {"text": q["text"]}
        choice = {
            k: (float(v) if k == "sharpen" else int(v)) for k, v in q.items() if k in ("position", "layer", "head", "sharpen")
        }
        answer = client.post("/api/inside/walk", json={"model": q["model"], "prompt": prompt, **choice})
        assert answer.status_code == 200, (q, answer.text)
