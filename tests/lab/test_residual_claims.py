"""Every checkpoint on the Residual stream page, checked against the engine: each test reads its
checkpoint's query from the page's HTML, asks the page's route what the page would show, and checks
the reveal's claim on it (and on the toolkit directly). docs/lessons/residual-stream.md quotes the
same answers."""

from __future__ import annotations

import re
from html import unescape
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings.analysis import logit_lens
from llm_workings.lab.residual.settings import SETTINGS
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")

HTML = resources.files("llm_workings.lab").joinpath("static/residual.html").read_text()


def checkpoint_query(name: str) -> str:
    found = re.search(rf'id="checkpoint-{name}" data-query="([^"]+)"', HTML)
    assert found, f"no checkpoint-{name} on the page"
    return unescape(found.group(1))


def body_of(query: str) -> dict:
    """The request the page makes for a URL query (static/js/url-state.js's reading of it)."""
    values = {k: v[0] for k, v in parse_qs(urlsplit(query).query, keep_blank_values=True).items()}
    body = {"model": values.pop("model")}
    body["prompt"] = {"ids": [int(i) for i in values.pop("ids").split(",")]} if "ids" in values else {"text": values.pop("text")}
    for name, value in values.items():
        body[name] = int(value) if SETTINGS.by_name[name].kind == "int" else value
    return body


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


def shown(client, name: str) -> dict:
    answer = client.post("/api/residual/run", json=body_of(checkpoint_query(name)))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_copy_appears_only_in_the_final_stream(client, induction_model):
    """In the second copy, final_post ranks the real next token first at every position; 0_pre and 1_pre at none."""
    body = shown(client, "lens")
    ranks = decode_tensor(body["lens"]["target_rank"])  # [stream, pos]
    n, half = len(body["ids"]), (len(body["ids"]) - 1) // 2
    second_copy = slice(n - half, n - 1)  # positions whose next token is a repeat
    assert body["lens"]["labels"] == ["0_pre", "1_pre", "final_post"]
    assert (ranks[2, second_copy] == 0).all()
    assert (ranks[:2, second_copy] != 0).all()
    lens = logit_lens(induction_model, torch.tensor([body["ids"]]))
    assert np.array_equal(ranks, lens.target_rank[:, 0].numpy())


def test_layer_one_attention_writes_the_answer(client):
    """At the last position, L1 attn's direct contribution is more than the whole logit difference;
    every other bar is smaller than 0.25 in size."""
    dec = shown(client, "writer")["decompose"]
    assert dec["answer"]["id"] == 109
    bars = {b["label"]: b["value"] for b in dec["bars"]}
    assert bars["L1 attn"] > dec["actual"] > 6
    assert all(abs(v) < 0.25 for k, v in bars.items() if k != "L1 attn")
    assert 6.2 < dec["actual"] < 6.3 and 6.3 < bars["L1 attn"] < 6.4  # "about 6.3 of 6.2 logits"


def test_the_parts_add_up_to_the_logit_difference(client):
    """Split by head on austen-bpe, the bars add up to the model's logit difference within 0.0001."""
    dec = shown(client, "sum")["decompose"]
    assert any(b["label"] == "L0H0" for b in dec["bars"])
    assert abs(dec["sum"] - dec["actual"]) < 1e-4


def test_every_try_link_loads(client):
    """Each try-this link on the page is a view the route draws."""
    links = [unescape(h) for h in re.findall(r'<a class="try" href="([^"]+)"', HTML)]
    assert len(links) >= 4
    for link in links:
        answer = client.post("/api/residual/run", json=body_of(link))
        assert answer.status_code == 200, (link, answer.text)
