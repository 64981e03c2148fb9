"""Every checkpoint on the Saliency page, checked against the engine: each test reads its
checkpoint's query from the page's HTML, asks the page's route what the page would show, and checks
the reveal's claim on it. docs/lessons/saliency.md quotes the same answers."""

from __future__ import annotations

import re
from html import unescape
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient

from llm_workings.lab.saliency.settings import SETTINGS
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")

HTML = resources.files("llm_workings.lab").joinpath("static/saliency.html").read_text()


def checkpoint_query(name: str) -> str:
    found = re.search(rf'id="checkpoint-{name}" data-query="([^"]+)"', HTML)
    assert found, f"no checkpoint-{name} on the page"
    return unescape(found.group(1))


def body_of(query: str, **changes) -> dict:
    """The request the page makes for a URL query (the method toggle is the page's alone)."""
    values = {k: v[0] for k, v in parse_qs(urlsplit(query).query, keep_blank_values=True).items()} | changes
    values.pop("method", None)
    body = {"model": values.pop("model")}
    body["prompt"] = {"ids": [int(i) for i in values.pop("ids").split(",")]} if "ids" in values else {"text": values.pop("text")}
    for name, value in values.items():
        body[name] = int(value) if SETTINGS.by_name[name].kind == "int" else value
    return body


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


def shown(client, query: str, **changes) -> dict:
    answer = client.post("/api/saliency/run", json=body_of(query, **changes))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    body["scores"] = {name: decode_tensor(m["scores"]) for name, m in body["methods"].items()}
    return body


def test_both_gradient_methods_credit_the_token_to_copy(client):
    """IG and gradient x input put most on position 11; IG credits the first 104 (position 10) by
    more than 1 logit where gradient x input sees under 0.1; rollout's top two are 11 and 20, about equal."""
    body = shown(client, checkpoint_query("copy"))
    assert body["answer"]["id"] == 109 and body["ids"][10] == 104 and body["ids"][11] == 109
    ig, gxi, rollout = (body["scores"][m] for m in ("integrated_gradients", "gradient_x_input", "attention_rollout"))
    assert ig.argmax() == 11 and gxi.argmax() == 11
    assert ig[10] > 1 and abs(gxi[10]) < 0.1
    assert sorted(np.argsort(rollout)[-2:].tolist()) == [11, 20]
    assert abs(rollout[11] - rollout[20]) < 0.05 and rollout[11] > 0.2


def test_a_zero_baseline_misses_by_about_one_percent_at_64_steps(client):
    """About 1% at 64 steps; under 0.1% at 128; from a token's embedding under 0.001%."""
    query = checkpoint_query("complete")
    assert 0.005 < shown(client, query)["integrated"]["relative_error"] < 0.02
    assert shown(client, query, steps="128")["integrated"]["relative_error"] < 0.001
    assert shown(client, query, baseline="0")["integrated"]["relative_error"] < 1e-5


def test_rollout_favours_the_first_token_and_ig_the_last(client):
    body = shown(client, checkpoint_query("sink"))
    assert [body["answer"]["text"], body["wrong"]["text"]] == [" Crawford", " Bingley"]
    assert body["str_tokens"][0] == "Mr" and body["scores"]["attention_rollout"].argmax() == 0
    assert body["scores"]["integrated_gradients"].argmax() == len(body["ids"]) - 1


def test_every_try_link_loads(client):
    links = [unescape(h) for h in re.findall(r'<a class="try" href="([^"]+)"', HTML)]
    assert len(links) >= 5
    for link in links:
        assert client.post("/api/saliency/run", json=body_of(link)).status_code == 200, link
