"""The Induction lesson's claims, checked against the engine: each checkpoint's query is read from
the page's HTML and run through the page's routes, and what its reveal says must hold."""

from __future__ import annotations

import re
from importlib import resources
from urllib.parse import parse_qs

import numpy as np
import pytest
from fastapi.testclient import TestClient

from llm_workings import zoo
from llm_workings.lab.server import create_app
from llm_workings.lab.wire import decode_tensor

pytestmark = pytest.mark.usefixtures("one_thread")
HTML = (resources.files("llm_workings.lab") / "static" / "induction.html").read_text()


def checkpoint_query(name: str) -> dict[str, str]:
    found = re.search(rf'id="checkpoint-{name}" data-query="\?([^"]+)"', HTML)
    assert found, f"no checkpoint {name} in induction.html"
    return {k: v[0] for k, v in parse_qs(found.group(1).replace("&amp;", "&")).items()}


@pytest.fixture(scope="module")
def client():
    return TestClient(create_app(), base_url="http://127.0.0.1:8000")


def series_of(client, **settings):
    answer = client.post("/api/induction/series", json={"model": "induction-2l", **settings})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body, {
        k: decode_tensor(body[k]) for k in ("previous_token", "induction", "k_composition", "first_copy_loss", "second_copy_loss")
    }


def steepest(steps: list[int], values: np.ndarray, sign: int) -> tuple[int, int]:
    """The pair of consecutive snapshots between which `values` moves fastest per step (sign -1: falls)."""
    rates = [sign * (values[i + 1] - values[i]) / (steps[i + 1] - steps[i]) for i in range(len(steps) - 1)]
    i = int(np.argmax(rates))
    return steps[i], steps[i + 1]


def test_the_repeated_half_drops_where_the_head_scores_shoot_up(client):
    query = checkpoint_query("drop")
    assert query == {"model": "induction-2l", "step": "500"}
    body, t = series_of(client)
    steps = body["steps"]
    repeated = np.array(body["repeated_half_loss"])
    drop = steepest(steps, repeated, -1)
    assert drop == (475, 500)  # the reveal: "falls fastest between the snapshots at 475 and 500"
    assert steepest(steps, t["induction"][:, 1].max(1), +1) == drop  # layer 1's induction scores rise fastest there
    assert steepest(steps, t["previous_token"][:, 0, 2], +1) == drop  # and L0H2's previous-token score
    assert body["previous_head"] == 2 and body["induction_heads"] == [0, 1]
    transition = zoo.card("induction-2l")["transition"]
    assert (transition["start_step"], transition["end_step"]) == (425, 600)  # "between steps 425 and 600"
    assert transition["start_step"] <= drop[0] < drop[1] <= transition["end_step"]
    assert int(query["step"]) in steps
    # the wrong answers are wrong: before 300 and after 1000 the repeated half's loss moves slowly
    early, late = steps.index(300), steps.index(1000)
    assert repeated[0] - repeated[early] < 0.4 and repeated[late] - repeated[-1] < 0.3
    assert repeated[steps.index(450)] - repeated[steps.index(600)] > 3.5
    # before the change the scores sit near their starting values
    assert t["induction"][steps.index(425), 1].max() < 0.1 and t["previous_token"][steps.index(425), 0].max() < 0.1


def test_the_k_composition_into_layer_1_climbs_above_random_through_the_change(client):
    body, t = series_of(client)
    steps, baseline = body["steps"], body["composition_baseline"]
    from_previous = t["k_composition"][:, 2, :2]  # L0H2 -> L1H0, L1H1
    start, end = steps.index(425), steps.index(600)
    assert (from_previous[end] > 2 * baseline).all()
    assert (from_previous[end] > from_previous[start]).all()
    assert (abs(from_previous[0] - baseline) < 0.2 * baseline).all()  # at initialisation: random


def test_the_try_this_links(client):
    body, t = series_of(client)
    first, second = t["first_copy_loss"], t["second_copy_loss"]
    assert abs(first[0] - second[0]) < 0.05 and first[0] == pytest.approx(np.log(128), abs=0.05)  # the initialisation
    assert second[-1] < 0.05 * first[-1]
    other, t7 = series_of(client, seed=7)
    i = body["steps"].index(600)
    assert abs(t7["induction"][i, 1, :2] - t["induction"][i, 1, :2]).max() < 0.1  # other random tokens: the same heads
    short, ts = series_of(client, half=10)
    assert (ts["induction"][-1, 1, :2] > 0.8).all()  # shorter repeats: the induction heads still find them
    assert ts["second_copy_loss"][-1] < 0.2
