"""The lab loads nothing from anywhere but its own server, and the browser logs no errors."""

from __future__ import annotations

import pytest
from browser_helpers import is_local

pytestmark = pytest.mark.browser


def test_pages_stay_on_this_machine_and_log_no_errors(tab):
    tab.open(path="/")
    assert tab.page.locator("#lesson-backprop").is_visible()
    tab.page.click("#lesson-backprop")
    tab.wait("!!(window.__lab && window.__lab.ready)")
    tab.idle()
    tab.step_forward(2)
    tab.click("#back")
    tab.page.select_option("#speed", "5")
    tab.page.click("#play")
    tab.wait("window.__lab.state.step >= 30")
    tab.page.click("#play")
    tab.idle()
    tab.page.hover("#network")
    tab.page.select_option("#control-activation", "relu")
    tab.idle()
    tab.page.select_option("#control-output", "linear")  # the loss must follow: bce does not fit
    tab.idle()
    assert tab.page.input_value("#control-loss") == "mse"
    assert [o for o in tab.page.eval_on_selector_all("#control-loss option", "os => os.map(o => o.value)")] == ["mse"]
    tab.page.click("#layers-add")
    tab.idle()
    tab.step_forward()
    with tab.page.expect_download():
        tab.page.click("#export")
    tab.page.click("#export-close")
    tab.page.click(".try-list a.try >> nth=0")
    tab.idle()
    # The math is typeset with the bundled KaTeX fonts.
    fonts = tab.page.evaluate("[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
    assert any(f.startswith("KaTeX") for f in fonts)

    assert tab.requests, "no requests were recorded"
    outside = [url for url in tab.requests if not is_local(url)]
    assert outside == []
    assert any("/static/vendor/katex/fonts/" in url for url in tab.requests)
    assert tab.errors == []
