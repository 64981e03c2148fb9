"""The Grokking page in chromium: scrubbing shows that snapshot's numbers (accuracy, losses,
progress measures and the spectrum equal the toolkit's on its weights), grokking is shaded where the
card says, the URL reproduces the view, and no request leaves 127.0.0.1."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from browser_helpers import is_local

from llm_workings import zoo
from llm_workings.analysis.fourier import embedding_spectrum, key_frequencies
from llm_workings.analysis.progress_measures import snapshot_measures
from llm_workings.data.tasks import modular_addition

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def open_page(tab, query: str):
    tab.page.goto(tab.base + "/grokking" + query)
    tab.wait("document.body.dataset.ready === 'true' && window.grokkingPage.pending === 0", timeout=300)
    return tab


def test_scrubbing_shows_the_snapshots_numbers_and_grokking_where_the_card_puts_it(tab):
    open_page(tab, "?model=modadd-113&step=250")
    transition = zoo.card("modadd-113")["transition"]
    bands = tab.page.evaluate(
        "[...document.querySelectorAll('#accuracy-chart rect.lw-band, #scrubber .lw-scrub-band')].map(b => [b.dataset.from, b.dataset.to])"
    )
    assert bands == [[str(transition["start_step"]), str(transition["end_step"])]] * 2
    tab.page.click("button[data-scrub='forward']")  # step one snapshot on: 250 -> 300
    tab.wait("document.querySelector('.lw-scrub-readout').dataset.step === '300' && window.grokkingPage.pending === 0")
    assert "step=300" in tab.page.url
    final, _ = zoo.load("modadd-113")
    keys = key_frequencies(embedding_spectrum(final, 113))
    data = modular_addition(113, 0.3, 0)
    model = zoo.load_snapshot("modadd-113", 300)
    expected = snapshot_measures(model, 113, keys, torch.from_numpy(data.train_x), torch.from_numpy(data.train_y))
    for name, value in expected.items():
        cell = f"#num-{name}"
        assert float(tab.page.get_attribute(cell, "data-value")) == pytest.approx(value, rel=1e-6), name
        assert math.isclose(float(tab.text(cell)), float(f"{value:.4g}"), rel_tol=1e-9), name
    spectrum = tab.page.evaluate("window.grokkingPage.snapshots.get(300).spectrum")
    np.testing.assert_allclose(spectrum, embedding_spectrum(model, 113).numpy(), rtol=1e-6)
    assert tab.page.evaluate("window.grokkingPage.series.key_freqs") == keys
    url = tab.page.url
    again = open_page(tab, url[url.index("?") :])
    assert again.page.evaluate("document.querySelector('.lw-scrub-readout').dataset.step") == "300"
    assert all(is_local(u) for u in tab.requests), [u for u in tab.requests if not is_local(u)]
    assert tab.errors == []
