"""The Train page in chromium: a live, shortened induction-2l run started from the page streams its loss
and evaluation curves, a cancelled run leaves nothing, a paused run resumes from the page (from the
panel, and after a reload from the list of paused runs) and ends in the model picker with its card;
a second run waits in the queue with its place shown."""

from __future__ import annotations

import json
import math
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import VIEWPORT, LabPage

from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import serve_in_thread

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PANEL = "#job-panel"


@pytest.fixture
def train_tab(browser, tmp_path):
    lab = serve_in_thread(LabConfig(runs_dir=tmp_path / "runs"))
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    tab = LabPage(page, lab.url)
    page.on("request", lambda r: tab.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and tab.errors.append(m.text))
    page.on("pageerror", lambda e: tab.errors.append(f"uncaught: {e}"))
    yield tab, tmp_path / "runs", lab.url
    context.close()
    lab.shutdown()


def panel_state(tab: LabPage) -> str | None:
    return tab.page.evaluate(f"document.querySelector('{PANEL}').dataset.state || null")


def wait_state(tab: LabPage, state: str, timeout: float = 120) -> None:
    tab.wait(f"document.querySelector('{PANEL}').dataset.state === '{state}'", timeout=timeout)


def settled(tab: LabPage) -> None:
    tab.wait("!!window.trainPage && window.trainPage.pending === 0")


def test_a_live_run_streams_is_cancelled_paused_resumed_and_joins_the_picker(train_tab):
    tab, runs, base = train_tab
    page = tab.page
    tab.open("?recipe=induction-2l&steps=2000", path="/train")
    settled(tab)
    # the form is the recipe's table, filled from the URL
    schema = httpx.get(base + "/api/train/schema").json()["recipes"][0]
    for row in schema["settings"]:
        expected = 2000 if row["name"] == "steps" else row["default"]
        assert float(page.input_value(f"#control-{row['name']}")) == expected, row["name"]

    # a long run streams, then is cancelled: nothing is left
    page.click(f"{PANEL} .lw-job-start")
    tab.wait(f"document.querySelector('{PANEL} [data-metric=step]').textContent.includes(' of 2000')", timeout=120)
    tab.wait(f"!!document.querySelector('{PANEL} .lw-job-chart svg')")
    loss = page.locator(f"{PANEL} [data-metric=loss]")
    assert loss.inner_text() == f"{float(loss.get_attribute('data-value')):.4f}"
    page.click(f"{PANEL} .lw-job-cancel")
    wait_state(tab, "cancelled", timeout=10)
    assert not any(runs.iterdir())

    # a shorter run: a second one waits in the queue, the first streams evaluations, is paused and resumed
    page.fill("#control-steps", "300")
    page.dispatch_event("#control-steps", "change")
    tab.wait("location.search.includes('steps=300')")
    page.click(f"{PANEL} .lw-job-start")
    tab.wait(f"document.querySelector('{PANEL}').dataset.state === 'running'", timeout=30)
    waiting = httpx.post(base + "/api/jobs", json={"kind": "train", "name": "second", "overrides": {"steps": 5}}).json()
    tab.wait("!!document.querySelector('#queue-list li[data-place=\"1\"]')", timeout=10)
    assert "second: waiting, place 1" in page.locator("#queue-list").inner_text()
    httpx.post(base + f"/api/jobs/{waiting['id']}/cancel")
    tab.wait(
        f"(() => {{ const m = document.querySelector('{PANEL} [data-metric=step]').textContent; return parseInt(m) >= 25; }})()",
        timeout=120,
    )
    tab.wait("!!document.querySelector('#eval-loss-chart svg')")  # the evaluation at step 25
    page.click(f"{PANEL} .lw-job-pause")
    wait_state(tab, "paused", timeout=15)
    paused_at = json.loads((runs / "induction-2l-run1" / "checkpoint.json").read_text())["step"]
    assert page.locator(f"{PANEL} .lw-job-status").inner_text().startswith(f"Paused at step {paused_at}")
    tab.wait("!!document.querySelector('#resumable-list li[data-run=\"induction-2l-run1\"]')", timeout=10)
    drawn = page.evaluate("window.trainPage.panel.curve.x.length")

    # resumed from the panel, paused again, then, on a reloaded page, resumed from the list of paused runs
    page.click(f"{PANEL} .lw-job-resume")
    wait_state(tab, "running", timeout=30)
    step = f"parseInt(document.querySelector('{PANEL} [data-metric=step]').textContent)"
    tab.wait(f"{step} >= {paused_at + 10}", timeout=120)
    assert page.evaluate("window.trainPage.panel.curve.x.length") > drawn  # the line went on from the pause
    page.click(f"{PANEL} .lw-job-pause")
    wait_state(tab, "paused", timeout=15)
    paused_again = json.loads((runs / "induction-2l-run1" / "checkpoint.json").read_text())["step"]
    assert paused_at < paused_again < 300
    page.reload()
    settled(tab)
    tab.wait("!!document.querySelector('#resumable-list li[data-run=\"induction-2l-run1\"] .tr-resume')", timeout=10)
    page.click("#resumable-list li[data-run='induction-2l-run1'] .tr-resume")
    tab.wait(f"{step} > {paused_again}", timeout=60)
    # the page started its line from the run's history: one point per step up to the pause
    assert page.evaluate(f"window.trainPage.panel.curve.x.slice(0, {paused_again})") == list(range(1, paused_again + 1))
    wait_state(tab, "done", timeout=180)
    assert page.locator(f"{PANEL} .lw-job-status").inner_text() == "Done: saved as the run induction-2l-run1"
    assert page.evaluate("window.trainPage.panel.curve.x.at(-1)") == 300
    snapshots = page.evaluate("[...document.querySelectorAll('#snapshot-list li[data-step]')].map(li => +li.dataset.step)")
    assert snapshots == [0, 100, 200, 300]  # the recipe's every:100, as they were written
    assert (
        page.get_attribute("#snapshot-list li[data-step='100'] a", "href")
        == "/induction-heads?model=run.induction-2l-run1&step=100"
    )

    # the finished run is selected in the picker, with its card's numbers
    tab.wait("document.querySelector('#runs-picker select')?.value === 'run.induction-2l-run1'", timeout=10)
    settled(tab)
    card = json.loads((runs / "induction-2l-run1" / "card.json").read_text())
    shown = page.evaluate(
        "[...document.querySelectorAll('#card dd .num')].map(e => [e.parentNode.dataset.metric, e.dataset.value, e.textContent])"
    )
    metrics = {k.replace("_", " "): v for k, v in card["metrics"].items()}
    assert {name for name, _, _ in shown} == {"parameters", *metrics}
    for name, value, text in shown:
        expected = card["parameters"] if name == "parameters" else metrics[name]
        assert float(value) == expected
        assert math.isclose(float(text), expected, rel_tol=5e-4), (name, text, expected)
    assert page.locator("#card [data-metric=reproduce]").inner_text().startswith("llmw train induction-2l --steps=300")

    assert tab.errors == []
    assert {urlsplit(url).hostname for url in tab.requests} == {"127.0.0.1"}
