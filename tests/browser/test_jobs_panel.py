"""The home page's "Train your own model" panel, in chromium: a real induction-2l run started, streamed,
cancelled and restarted from the page, finishing into the runs folder and the model picker."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from conftest import VIEWPORT, LabPage

from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import serve_in_thread

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PANEL = "#job-panel"


@pytest.fixture
def home(browser, tmp_path):
    """The home page of a lab whose runs folder is this test's own."""
    lab = serve_in_thread(LabConfig(runs_dir=tmp_path / "runs"))
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    tab = LabPage(page, lab.url)
    page.on("request", lambda r: tab.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and tab.errors.append(m.text))
    page.on("pageerror", lambda e: tab.errors.append(f"uncaught: {e}"))
    page.goto(lab.url + "/")
    tab.wait(f"!!document.querySelector('{PANEL} .lw-job-start')")
    yield tab, tmp_path / "runs"
    context.close()
    lab.shutdown()


def state(tab: LabPage) -> str | None:
    return tab.page.evaluate(f"document.querySelector('{PANEL}').dataset.state || null")


def test_a_run_is_streamed_cancelled_and_restarted_from_the_page(home):
    tab, runs = home
    page = tab.page
    assert page.locator("#runs h2").text_content() == "Train your own model"
    assert page.locator(f"{PANEL} select[name=recipe]").input_value() == "induction-2l"

    page.fill(f"{PANEL} input[name=steps]", "2000")
    page.click(f"{PANEL} .lw-job-start")
    # progress is on the page while the run is still going
    tab.wait(f"document.querySelector('{PANEL} [data-metric=step]').textContent.includes(' of 2000')", timeout=90)
    assert state(tab) == "running"
    assert float(page.locator(f"{PANEL} [data-metric=loss]").inner_text()) > 0
    assert page.locator(f"{PANEL} .lw-job-status").inner_text().startswith("Training: step ")
    tab.wait(f"!!document.querySelector('{PANEL} .lw-job-chart svg')")
    assert 0 < page.evaluate(f"document.querySelector('{PANEL} progress').value") < 1

    start = time.monotonic()
    page.click(f"{PANEL} .lw-job-cancel")
    tab.wait(f"document.querySelector('{PANEL}').dataset.state === 'cancelled'", timeout=5)
    print(f"cancelled on the page {time.monotonic() - start:.2f} s after the click")
    # the job's one-second bound is checked in tests/lab/test_jobs_training.py; here the click, the
    # stream's poll and a busy machine's scheduling come on top
    assert time.monotonic() - start < 3.0
    assert page.locator(f"{PANEL} .lw-job-status").inner_text() == "Cancelled: nothing was saved"
    assert not runs.exists() or list(runs.iterdir()) == []

    page.fill(f"{PANEL} input[name=steps]", "20")
    assert page.locator(f"{PANEL} .lw-job-start").inner_text() == "Restart"
    page.click(f"{PANEL} .lw-job-start")
    tab.wait(f"document.querySelector('{PANEL}').dataset.state === 'done'", timeout=180)
    assert page.locator(f"{PANEL} .lw-job-status").inner_text() == "Done: saved as the run induction-2l-run1"
    assert page.locator(f"{PANEL} [data-metric=step]").inner_text() == "20 of 20"
    assert sorted(p.name for p in runs.iterdir()) == ["induction-2l-run1"]
    assert (runs / "induction-2l-run1" / "card.json").is_file()
    # the finished run is offered, and selected, in the picker of training runs
    tab.wait("document.querySelector('#runs-picker select')?.value === 'run.induction-2l-run1'", timeout=10)

    assert tab.errors == []
    assert {urlsplit(url).hostname for url in tab.requests} == {"127.0.0.1"}
