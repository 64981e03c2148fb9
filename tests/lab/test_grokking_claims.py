"""The Grokking lesson's claims, checked against the engine: the checkpoint's query is read from the
page's HTML and run through the page's routes, and what its reveal says must hold."""

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

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]
HTML = (resources.files("llm_workings.lab") / "static" / "grokking.html").read_text()


@pytest.fixture(scope="module")
def series():
    client = TestClient(create_app(), base_url="http://127.0.0.1:8000")
    answer = client.post("/api/grokking/series", json={"model": "modadd-113"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body, {name: decode_tensor(t) for name, t in body["measures"].items()}


def test_a_circuit_forms_on_the_plateau(series):
    found = re.search(r'id="checkpoint-plateau" data-query="\?([^"]+)"', HTML)
    query = {k: v[0] for k, v in parse_qs(found.group(1).replace("&amp;", "&")).items()}
    assert query == {"model": "modadd-113", "step": "200"}
    body, m = series
    at = {step: i for i, step in enumerate(body["steps"])}
    assert int(query["step"]) in at
    # "from step 50 to step 250, train accuracy is 100% and test accuracy stays at about 31%"
    for step in (50, 100, 150, 200, 250):
        assert m["train_accuracy"][at[step]] == 1.0 and 0.28 < m["test_accuracy"][at[step]] < 0.33
    # "test accuracy moves by less than 2 points, the restricted loss falls from above 2.7 to below 2.0"
    assert abs(m["test_accuracy"][at[200]] - m["test_accuracy"][at[50]]) < 0.02
    assert m["restricted_loss"][at[50]] > 2.7 and m["restricted_loss"][at[200]] < 2.0
    assert m["restricted_loss"][at[200]] < 0.5 * m["test_loss"][at[200]]  # it predicts held-out pairs better already
    share = decode_tensor(body["key_share"])
    assert all(0.2 < share[at[s]] < 0.3 for s in (50, 100, 150, 200))  # "holds steady at a quarter"
    assert share[at[300]] > share[at[200]] + 0.1  # "then climbs"
    assert all(share[i] > 0.5 for i in range(at[500], len(share)))  # "from step 500 on it is more than half"
    # "the excluded loss jumps from about 0.1 at step 200 to above 3 at step 300, and stays several times higher"
    assert 0.05 < m["excluded_loss"][at[200]] < 0.15 and m["excluded_loss"][at[300]] > 3
    assert all(m["excluded_loss"][i] > 3 * m["excluded_loss"][at[200]] for i in range(at[300], len(body["steps"])))
    # "test accuracy reaches 99% only at step 700", where the card ends grokking
    first_99 = next(s for s in body["steps"] if m["test_accuracy"][at[s]] >= 0.99)
    assert first_99 == 700 == zoo.card("modadd-113")["transition"]["end_step"]


def test_the_try_this_links(series):
    body, m = series
    at = {step: i for i, step in enumerate(body["steps"])}
    assert m["test_accuracy"][at[0]] < 0.02 and m["train_accuracy"][at[100]] == 1.0
    assert m["test_accuracy"][at[1500]] == 1.0
    assert np.isfinite(m["restricted_loss"]).all()
