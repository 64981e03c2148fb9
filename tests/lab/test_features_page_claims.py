"""Every checkpoint on the Features page, read from features.html and checked against the SAE engine
through the page's own API (whose numbers the API tests show are the engine's)."""

from __future__ import annotations

import html
import re
from importlib import resources
from urllib.parse import parse_qs

import pytest
from fastapi.testclient import TestClient

from llm_workings.lab.server import create_app

pytestmark = pytest.mark.usefixtures("one_thread")

PAGE = (resources.files("llm_workings.lab") / "static" / "features.html").read_text()
SAE = "shakespeare-char-resid2-topk"
LETTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


def query_of(name: str) -> dict[str, str]:
    found = re.search(rf'id="checkpoint-{name}" data-query="([^"]*)"', PAGE)
    assert found, f"checkpoint {name} not in features.html"
    return {k: v[0] for k, v in parse_qs(html.unescape(found.group(1)).lstrip("?")).items()}


def post(client, path, **body):
    answer = client.post(f"/api/features/{path}", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def peak_on(client, text: str, latent: int) -> tuple[float, str]:
    """The latent's largest activation on `text`, and the character it is on."""
    out = post(client, "text", model="shakespeare-char", sae=SAE, prompt={"text": text}, latent=latent)
    values = out["latent_values"]
    best = max(range(len(values)), key=values.__getitem__)
    return values[best], out["str_tokens"][best]


def test_latent_13_predicts_capitals_and_fires_most_on_the_newline_inside_a_speech(client):
    query = query_of("sentences")
    assert (query["model"], query["sae"], query["latent"]) == ("shakespeare-char", SAE, "13")
    dash = post(client, "dashboard", model="shakespeare-char", sae=SAE, latent=13)
    assert [t["token"] for t in dash["top_logits"][:5]] == list("ABHWT")  # the question's claim
    chosen, plain, capitals = query["text"], "the king is dead and gone", "KING:\nNo more."
    assert f"text={plain.replace(' ', '+')}" in PAGE and "text=KING%3A%0ANo+more." in PAGE  # the reveal's links
    (best, where), (second, where2), (none, _) = (peak_on(client, t, 13) for t in (chosen, capitals, plain))
    assert where == where2 == "\n" and best > second > none == 0.0
    assert round(best, 1) == 5.8 and round(second, 1) == 4.8  # "about 5.8", "about 4.8"
    assert chosen[chosen.index("\n") + 1] == "w"  # the next letter there is lowercase


def test_a_topk_sae_fires_exactly_k_latents_on_every_token(client):
    query = query_of("k")
    out = post(client, "text", model=query["model"], sae=query["sae"], prompt={"text": query["text"]})
    assert all(len(t["latents"]) == 16 and min(t["values"]) > 0 for t in out["per_token"])
    density = post(client, "latents", model=query["model"], sae=query["sae"])["density"]
    assert len(density) == 1024 and sum(density) == pytest.approx(16)


def test_latents_13_and_418_are_neighbours_that_split_the_newlines_by_what_came_before(client):
    query = query_of("split")
    d13 = post(client, "dashboard", model=query["model"], sae=query["sae"], latent=13)
    d418 = post(client, "dashboard", model=query["model"], sae=query["sae"], latent=418)
    assert d13["neighbours"][0]["index"] == 418 and round(d13["neighbours"][0]["cosine"], 2) == 0.62
    assert [t["token"] for t in d418["top_logits"][:5]] == list("TWBAS")  # capitals too

    def before(dash):
        assert all(e["tokens"][e["position"] - e["start"]] == "\n" for e in dash["top_examples"][:10])
        return [e["tokens"][e["position"] - e["start"] - 1] for e in dash["top_examples"]]

    after_13, after_418 = before(d13), before(d418)
    assert len(after_13) == len(after_418) == 20 and all(c in ",;:" for c in after_13)  # "all twenty"
    assert all(c in LETTERS for c in after_418[:5])  # "418's five strongest follow a letter"
    assert 0.35 <= sum(c in LETTERS for c in after_418) / 20 < 0.5  # "almost half of its twenty"


def test_latent_0_fires_on_full_stops_and_pushes_up_a_newline_and_a_space(client):
    found = re.search(r'href="(\?[^"]*latent=0[^"]*)"', PAGE)
    query = {k: v[0] for k, v in parse_qs(html.unescape(found.group(1)).lstrip("?")).items()}
    dash = post(client, "dashboard", model=query["model"], sae=query["sae"], latent=0)
    assert all(e["tokens"][e["position"] - e["start"]] == "." for e in dash["top_examples"])
    assert [t["token"] for t in dash["top_logits"][:2]] == ["\n", " "]
    assert peak_on(client, query["text"], 0)[1] in ".?"


def test_every_try_link_opens_a_view_the_server_accepts(client):
    for href in re.findall(r'(?:href|data-query)="(\?[^"]*)"', PAGE):
        q = {k: v[0] for k, v in parse_qs(html.unescape(href).lstrip("?")).items()}
        prompt = {"ids": [int(i) for i in q["ids"].split(",")]} if "ids" in q else {"text": q.get("text", "a")}
        post(client, "text", model=q["model"], sae=q["sae"], prompt=prompt)
        if "latent" in q:
            post(client, "dashboard", model=q["model"], sae=q["sae"], latent=int(q["latent"]))
