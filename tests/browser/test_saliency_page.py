"""The Saliency page in chromium, on induction-2l, austen-bpe and a random-weight GPT-2: every
token's score under each method is the engine's to the printed precision, the completeness numbers
are integrated gradients' own, the URL reproduces the view (method toggle included), bad input is
named with nothing half-drawn, and no request leaves 127.0.0.1."""

from __future__ import annotations

import math
from urllib.parse import quote, urlsplit

import pytest
import torch
from browser_helpers import is_local

from llm_workings.analysis import LogitDiff, attention_rollout, gradient_x_input, integrated_gradients
from llm_workings.lab.prompts import token_ids

pytestmark = pytest.mark.usefixtures("one_thread")

IDS = [0, 109, 81, 65, 35, 40, 6, 10, 3, 23, 104, 109, 81, 65, 35, 40, 6, 10, 3, 23, 104]
TEXT = "Mr. Darcy and Miss Bennet. Mr. Darcy and Miss"
METHODS = ("integrated_gradients", "gradient_x_input", "attention_rollout")
REFUSAL = "Failed to load resource: the server responded with a status of 4"


def open_page(tab, query: str):
    tab.page.goto(tab.base + "/saliency" + query)
    settle(tab)
    return tab


def settle(tab):
    tab.wait("document.body.dataset.ready === 'true' && window.saliencyPage.pending === 0")


def check_clean(tab, refused: bool = False):
    assert [e for e in tab.errors if not (refused and e.startswith(REFUSAL))] == []
    assert all(is_local(u) for u in tab.requests), [u for u in tab.requests if not is_local(u)]


def check_sig4(shown: str, value: float) -> None:
    """`shown` is `value` to 4 significant digits (JS's toPrecision(4))."""
    number = float(shown.replace("−", "-"))
    if value == 0:
        assert number == 0, f"{value} shown as {shown!r}"
        return
    half_unit = 0.5 * 10 ** (math.floor(math.log10(abs(value))) - 3)
    assert abs(number - value) <= half_unit * (1 + 1e-6), f"{value} shown as {shown!r}"


def chip_labels(tab) -> list[str]:
    return tab.page.evaluate(
        "() => [...document.querySelectorAll('#strip .lw-chip')].map((c) => c.querySelector('.lw-chip-label').textContent)"
    )


@pytest.mark.parametrize(
    "model_id, prompt",
    [("induction-2l", {"ids": IDS}), ("austen-bpe", {"text": TEXT}), ("cli.gpt2-random", {"text": TEXT})],
)
def test_every_score_is_the_engines(checkpoint_tab, checkpoint_lab, model_id, prompt):
    query = f"?model={model_id}&" + (f"ids={','.join(map(str, IDS))}" if "ids" in prompt else f"text={quote(TEXT)}")
    tab = open_page(checkpoint_tab, query + "&steps=32")
    with checkpoint_lab.app.state.models.hold(model_id) as held, held.lock:
        model = held.model
        ids = prompt["ids"] if "ids" in prompt else token_ids(model, held.tokenizer, TEXT)
        tokens = torch.tensor([ids])
        with torch.no_grad():
            top = model(tokens)[0, -1].topk(2).indices
        metric = LogitDiff(top[None], position=len(ids) - 1)
        expected = {
            "integrated_gradients": integrated_gradients(model, tokens, metric, steps=32),
            "gradient_x_input": gradient_x_input(model, tokens, metric),
            "attention_rollout": attention_rollout(model, tokens, position=len(ids) - 1),
        }
    for method in METHODS:
        tab.page.click(f"button.sl-method[data-method='{method}']")
        tab.wait(f"document.getElementById('strip').dataset.method === '{method}'")
        labels = chip_labels(tab)
        assert len(labels) == len(ids)
        for shown, value in zip(labels, expected[method].scores[0].tolist(), strict=True):
            check_sig4(shown, value)
    ig = expected["integrated_gradients"]
    for element, value in (
        ("#ig-metric", ig.metric),
        ("#ig-baseline-metric", ig.baseline_metric),
        ("#ig-sum", float(ig.scores.sum())),
        ("#ig-error", ig.completeness_error),
    ):
        check_sig4(tab.page.inner_text(element), value)
        assert float(tab.page.get_attribute(element, "data-value")) == pytest.approx(value, rel=1e-5, abs=1e-6)
    assert "method=attention_rollout" in tab.page.url
    check_clean(tab)


def test_the_url_reproduces_the_view(checkpoint_tab):
    tab = open_page(checkpoint_tab, f"?model=austen-bpe&text={quote(TEXT)}&target=loss&baseline=0&steps=16")
    tab.page.click("button.sl-method[data-method='gradient_x_input']")
    tab.wait("document.getElementById('strip').dataset.method === 'gradient_x_input'")
    before = (chip_labels(tab), tab.page.inner_text("#completeness"), tab.page.inner_text("#target-line"))
    address = urlsplit(tab.page.url)
    assert "method=gradient_x_input" in address.query and "target=loss" in address.query
    tab.page.goto(tab.base + address.path + "?" + address.query)
    settle(tab)
    assert tab.page.get_attribute("button.sl-method[aria-pressed='true']", "data-method") == "gradient_x_input"
    assert (chip_labels(tab), tab.page.inner_text("#completeness"), tab.page.inner_text("#target-line")) == before
    check_clean(tab)


def test_an_answer_of_two_tokens_is_named_and_nothing_is_drawn(checkpoint_tab):
    tab = checkpoint_tab
    tab.page.goto(tab.base + f"/saliency?model=austen-bpe&text={quote(TEXT)}&answer={quote(' Darcy Bennet')}")
    tab.wait("document.body.dataset.refused === 'true' && window.saliencyPage.pending === 0")
    assert "is 2 tokens" in tab.page.inner_text("#banner")
    assert tab.page.locator(".control[data-name='answer'].invalid").count() == 1
    assert tab.page.locator("#strip .lw-chip, #compare canvas, #completeness b").count() == 0
    check_clean(tab, refused=True)
