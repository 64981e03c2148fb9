"""The Induction page in chromium: scrubbing shows that snapshot's numbers (scores, losses, patterns
equal the toolkit's on its weights), the phase change is shaded where the card says, the URL
reproduces the view, and no request leaves 127.0.0.1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from browser_helpers import is_local

from llm_workings import zoo
from llm_workings.analysis import attention_patterns, head_scores, repeated_random_tokens

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def shown_as_4_digits(text: str, value: float) -> bool:
    return math.isclose(float(text), float(f"{value:.4g}"), rel_tol=1e-9)


def open_page(tab, query: str):
    tab.page.goto(tab.base + "/induction-heads" + query)
    tab.wait("document.body.dataset.ready === 'true' && window.inductionPage.pending === 0", timeout=240)
    return tab


def test_scrubbing_shows_the_snapshots_numbers_and_the_phase_change_where_the_card_puts_it(tab):
    open_page(tab, "?model=induction-2l&step=500")
    transition = zoo.card("induction-2l")["transition"]
    bands = tab.page.evaluate(
        "[...document.querySelectorAll('#loss-chart rect.lw-band, #scrubber .lw-scrub-band')].map(b => [b.dataset.from, b.dataset.to])"
    )
    assert bands == [[str(transition["start_step"]), str(transition["end_step"])]] * 2
    assert tab.page.evaluate("document.querySelector('#loss-chart line.lw-marker').dataset.x") == "500"
    tab.wait("window.inductionPage.allFetched !== undefined")
    assert tab.page.evaluate("window.inductionPage.allFetched") is True  # every snapshot fetched ahead
    tab.page.focus("input.lw-scrub-range")
    tab.page.keyboard.press("ArrowRight")  # drag one snapshot on: 500 -> 525
    tab.wait("document.querySelector('.lw-scrub-readout').dataset.step === '525'")
    assert "step=525" in tab.page.url
    tokens = repeated_random_tokens(128, batch=16, half=24, seed=0)
    model = zoo.load_snapshot("induction-2l", 525)
    scores = head_scores(model, tokens, kinds=("previous_token", "induction")).scores
    shown = tab.page.evaluate(
        """[...document.querySelectorAll('#score-table tr[data-head]')].map(r => [r.dataset.head,
            ...[...r.querySelectorAll('td')].map(td => [td.textContent, Number(td.dataset.value)])])"""
    )
    assert len(shown) == 8
    for head, (prev_text, prev), (ind_text, ind) in shown:
        layer, h = int(head[1]), int(head[3])
        assert prev == pytest.approx(float(scores["previous_token"][layer, h]), rel=1e-6) and shown_as_4_digits(prev_text, prev)
        assert ind == pytest.approx(float(scores["induction"][layer, h]), rel=1e-6) and shown_as_4_digits(ind_text, ind)
    with torch.no_grad():
        second = model(tokens, return_type="loss", loss_per_token=True)[:, 25:].mean().item()
    assert float(tab.page.get_attribute("#num-second", "data-value")) == pytest.approx(second, rel=1e-5)
    patterns = np.array(tab.page.evaluate("Array.from(window.inductionPage.snapshots.get(525).patterns.data)")).reshape(3, 49, 49)
    expected = attention_patterns(model, tokens[:1])[:, 0]
    for i, (layer, head) in enumerate([(0, 2), (1, 0), (1, 1)]):
        np.testing.assert_allclose(patterns[i], expected[layer, head].numpy(), atol=1e-3)
    drawn = tab.page.evaluate("window.inductionPage.patternViews.length")
    assert drawn == 3 and "L1H0, the induction head, at step 525" in tab.text("#patterns")
    # the URL reproduces the view
    url = tab.page.url
    again = open_page(tab, url[url.index("?") :])
    assert again.page.evaluate("document.querySelector('.lw-scrub-readout').dataset.step") == "525"
    assert float(again.page.get_attribute("#num-second", "data-value")) == pytest.approx(second, rel=1e-5)
    assert all(is_local(u) for u in tab.requests), [u for u in tab.requests if not is_local(u)]
    assert tab.errors == []


def test_the_checkpoint_hides_the_losses_then_reveals_them(tab):
    open_page(tab, "?model=induction-2l&blind=1")
    assert tab.page.evaluate("document.body.classList.contains('blind')")
    checkpoint = "#checkpoint-drop"
    tab.page.check(f"{checkpoint} input[data-correct]")
    tab.page.click(f"{checkpoint} button.run")
    tab.wait(f"!document.querySelector('{checkpoint} .reveal').hidden && window.inductionPage.pending === 0")
    assert not tab.page.evaluate("document.body.classList.contains('blind')")
    assert tab.page.evaluate("document.querySelector('.lw-scrub-readout').dataset.step") == "500"
    assert "that is what happened" in tab.text(f"{checkpoint} .verdict")
    assert all(is_local(u) for u in tab.requests) and tab.errors == []
