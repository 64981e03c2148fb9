"""Every checkpoint and try-this link on the Patching page, run through the page's own routes from the
query the HTML holds, and its reveal's claim checked against what comes back.

Each test is named after the claim; docs/lessons/patching.md quotes the same numbers.
"""

from __future__ import annotations

import re
from html import unescape
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient

from llm_workings.lab.patching.presets import PRESETS
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")

HTML = unescape((resources.files("llm_workings.lab") / "static" / "patching.html").read_text(encoding="utf-8"))
TESTED: set[str] = set()  # the queries the tests below ran, to compare with every query in the page


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


def checkpoint(name: str) -> str:
    return re.search(rf'id="checkpoint-{name}" data-query="([^"]*)"', HTML).group(1)


def link(text: str) -> str:
    return re.search(rf'<a class="try" href="([^"]*)">{re.escape(text)}</a>', HTML).group(1)


def body(query: str) -> dict:
    """What the page posts for a query: the model's preset fills in the pair, as static/js/patching/state.js does."""
    TESTED.add(query)
    q = {k: v[0] for k, v in parse_qs(urlsplit(query).query).items()}
    out = {"model": q["model"], **{k: PRESETS[q["model"]][k] for k in ("clean", "corrupted", "answer", "wrong")}}
    out.update({k: q[k] for k in ("metric", "activation", "positions", "direction") if k in q})
    return out


def sweep(client, query: str) -> dict:
    out = client.post("/api/patching/sweep", json=body(query))
    assert out.status_code == 200, out.json()
    result = out.json()["result"]
    return {**result, "normalized": decode_tensor(result["normalized"]), "values": decode_tensor(result["values"])}


def test_on_induction_one_cell_restores_the_answer_entering_layer_1_at_the_position_after_the_earlier_copy(client):
    n = sweep(client, checkpoint("restore"))["normalized"]
    assert n.shape == (2, 17)
    assert np.unravel_index(n.argmax(), n.shape) == (1, 7) and n[1, 7] > 0.99
    others = n.copy()
    others[1, 7] = 0
    assert others.max() < 0.1  # no other cell restores much
    assert n[0].max() < 0.05  # entering layer 0, no position does
    assert n[0, 6] == pytest.approx(-0.84, abs=0.01)  # restoring the earlier copy makes it worse


def test_the_previous_token_head_reaches_the_induction_heads_through_their_keys(client):
    query = checkpoint("keys")
    q = parse_qs(urlsplit(query).query)
    posted = {k: v for k, v in body(query).items() if k not in ("activation", "positions")}  # as the page posts it
    out = client.post("/api/patching/path", json={**posted, "sender": q["sender"][0]}).json()
    n = decode_tensor(out["normalized"])
    assert out["rows"][0] == "L1 heads" and out["cols"] == ["q", "k", "v"]
    q_all, k_all, v_all = n[0]
    assert k_all < 0.05 and q_all > 0.99 and v_all > 0.99
    for h in range(4):  # one head's key alone costs a sixth to two thirds; its key always the most
        q_one, k_one, v_one = n[1 + h]
        assert 0.3 < k_one < 0.9 and k_one < min(q_one, v_one)


def test_attribution_patching_misses_the_cell_that_restores_induction(client):
    result = sweep(client, checkpoint("gradient"))
    assert abs(result["pearson"]) < 0.05  # "about 0.02"
    worst = result["disagreements"][0]
    assert (worst["row"], worst["col"]) == (1, 7) and abs(worst["estimate"]) < 0.1 and worst["actual"] > 0.99
    assert sweep(client, link("on the quotation pair"))["pearson"] == pytest.approx(0.85, abs=0.01)


def test_the_quotation_mark_is_read_at_its_position_then_carried_to_the_last_one(client):
    n = sweep(client, checkpoint("quote"))["normalized"]
    assert n[:, 0] == pytest.approx([0.92, 0.63, 0.37, 0.29], abs=0.01)
    assert n[3, 4] == pytest.approx(0.52, abs=0.01) and n[3].argmax() == 4


def test_modular_addition_moves_the_operand_to_the_equals_sign_in_attention(client):
    n = sweep(client, link("Modular addition after attention"))["normalized"]
    assert n[0, 2] > 0.99 and np.abs(n[0, :2]).max() < 0.01
    before = sweep(client, "?model=modadd-113")["normalized"]
    assert before[0, 0] > 0.99 and np.abs(before[0, 1:]).max() < 0.01


def test_the_speaker_cue_is_read_at_the_blank_line_and_ends_at_the_colon(client):
    query = link("A speaker cue")
    pair = client.post("/api/patching/pair", json=body(query)).json()
    assert pair["differs"] == [7, 8] and pair["clean_score"] > pair["corrupted_score"]
    n = sweep(client, query)["normalized"]
    assert n[0].argmax() in (7, 8) and n[-1].argmax() == n.shape[1] - 1


def test_each_head_at_each_position_is_a_row_per_head(client):
    result = sweep(client, link("Each head at each position"))
    assert result["rows"][:2] == ["L0H0", "L0H1"] and result["normalized"].shape == (8, 17)


def test_ablating_the_four_induction_heads_loses_the_clean_answer(client):
    query = link("Ablate all four layer-1 heads")
    components = parse_qs(urlsplit(query).query)["ablate"][0].split(",")
    out = client.post("/api/patching/ablate", json={**body(query), "components": components}).json()
    assert out["clean"] > 13 and out["value"] < 0.1 * out["clean"]


def test_probability_keeps_the_maps_shape_and_changes_its_numbers(client):
    by_probability = sweep(client, link("The same pair scored by probability"))
    by_logits = sweep(client, "?model=austen-bpe")
    a, b = by_probability["normalized"].flatten(), by_logits["normalized"].flatten()
    assert np.corrcoef(a, b)[0, 1] > 0.8 and not np.allclose(a, b, atol=0.01)


def test_an_mlp_on_an_attention_only_model_is_refused_by_name(client):
    out = client.post("/api/patching/sweep", json=body(link("An MLP on an attention-only model")))
    assert out.status_code == 422 and "attention-only" in out.json()["error"] and out.json()["field"] == "activation"


def test_every_query_on_the_page_is_tested():
    """Runs last in this module: the page's checkpoints and links are exactly the queries above."""
    queries = set(re.findall(r'(?:href|data-query)="(\?[^"]*)"', HTML))
    assert queries <= TESTED, queries - TESTED
