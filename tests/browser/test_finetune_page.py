"""The Fine-tuning page in chromium: the rank checkpoint starts its run and reveals, a cancelled run
leaves nothing, the form is filled from the URL, a run started from the page streams its learning and forgetting, a paused run resumes (its curve
kept) and finishes; then every number the page shows equals the engine's as the API serves it (the
API tests check those against the engine itself), the URL reproduces the view, nothing leaves
127.0.0.1 and the console stays clean."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest
from browser_helpers import check_shown, same_number
from conftest import VIEWPORT, LabPage

from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import serve_in_thread

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PANEL = "#job-panel"
SHORT = "?rank=2&alpha=4&batch_size=4&steps=30&eval_every=10"


@pytest.fixture
def finetune_tab(browser, tmp_path):
    lab = serve_in_thread(LabConfig(runs_dir=tmp_path / "runs"))
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    tab = LabPage(page, lab.url)
    page.on("request", lambda r: tab.requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and tab.errors.append(m.text))
    page.on("pageerror", lambda e: tab.errors.append(f"uncaught: {e}"))
    yield tab, tmp_path / "runs" / "fine-tuning", lab.url
    context.close()
    lab.shutdown()


def wait_state(tab: LabPage, state: str, timeout: float = 120) -> None:
    tab.wait(f"document.querySelector('{PANEL}').dataset.state === '{state}'", timeout=timeout)


def settled(tab: LabPage) -> None:
    tab.wait("!!window.finetunePage && window.finetunePage.pending === 0", timeout=120)


def shown_numbers(tab: LabPage, selector: str) -> list[tuple[str, str]]:
    return tab.page.evaluate(f"[...document.querySelectorAll('{selector}')].map(e => [e.dataset.value, e.textContent])")


def test_a_run_is_cancelled_paused_resumed_and_shows_the_engines_numbers(finetune_tab):
    tab, folder, base = finetune_tab
    page = tab.page
    api = httpx.Client(base_url=base, timeout=120)  # the first analysis of a run loads it and its task
    step = f"parseInt(document.querySelector('{PANEL} [data-metric=step]').textContent)"

    # the rank checkpoint: a prediction, then its run starts (rank 16) and the reveal shows; cancelled, it leaves nothing
    tab.open("", path="/fine-tuning")
    tab.wait("!!window.finetunePage")
    checkpoint = "#checkpoint-rank"
    page.check(f"{checkpoint} input[data-correct]")
    page.click(f"{checkpoint} button.run")
    tab.wait(f"!document.querySelector('{checkpoint} .reveal').hidden", timeout=30)
    assert "that is what happened" in page.locator(f"{checkpoint} .verdict").inner_text()
    assert page.input_value("#control-rank") == "16" and "rank=16" in page.url
    tab.wait(f"{step} >= 1", timeout=120)
    assert tab.page.evaluate("window.finetunePage.panel.job.params.settings.rank") == 16
    page.click(f"{PANEL} .lw-job-cancel")
    wait_state(tab, "cancelled", timeout=10)
    assert not folder.exists() or not any(folder.iterdir())

    # a refused setting is named, and nothing starts
    tab.open("?targets=mlp.gate", path="/fine-tuning")
    tab.wait("!!window.finetunePage")
    page.click(f"{PANEL} .lw-job-start")
    tab.wait(f"document.querySelector('{PANEL} .lw-job-status').textContent.startsWith('Not started')")
    assert "no linear map 'mlp.gate'; it has attn.qkv" in page.locator(f"{PANEL} .lw-job-status").inner_text()

    # a short run: paused after its step-10 evaluation, resumed, finished
    tab.open(SHORT, path="/fine-tuning")
    tab.wait("!!window.finetunePage")
    for control, value in (("rank", "2"), ("alpha", "4"), ("batch_size", "4"), ("steps", "30"), ("eval_every", "10")):
        assert page.input_value(f"#control-{control}") == value, control  # the form is the URL's
    page.click(f"{PANEL} .lw-job-start")
    tab.wait("!!document.querySelector('.ft-evals tr[data-step=\"10\"]')", timeout=120)
    page.click(f"{PANEL} .lw-job-pause")
    wait_state(tab, "paused", timeout=15)
    (name,) = [p.name for p in folder.iterdir()]
    paused_at = api.get(f"/api/fine-tuning/runs/{name}").json()["step"]
    assert 10 <= paused_at < 30
    assert page.locator(f"{PANEL} .lw-job-status").inner_text().startswith(f"Paused at step {paused_at}")
    page.click(f"{PANEL} .lw-job-resume")
    wait_state(tab, "done", timeout=180)
    tab.wait("!document.getElementById('after-panel').hidden", timeout=60)
    settled(tab)

    # learning and forgetting: the base at step 0, then each evaluation, across the pause
    run = api.get(f"/api/fine-tuning/runs/{name}").json()
    assert [e["step"] for e in run["evals"]] == [10, 20, 30]
    expected = [run["baseline"]] + run["evals"]
    for key, column in (("target_val_loss", "target"), ("original_val_loss", "original")):
        shown = shown_numbers(tab, f".ft-evals td.{column}")
        assert len(shown) == 4
        for (value, text), want in zip(shown, expected, strict=True):
            assert same_number(value, want[key]), (key, value, want[key])
            check_shown(text, want[key])

    # generations: base, fine-tuned and merged, the last two the same text
    out = api.post("/api/fine-tuning/generate", json={"run": name, "prompt": {"text": "ROMEO:"}, "seed": 0}).json()
    for key in ("base", "tuned", "merged"):
        assert page.locator(f".ft-generation[data-model={key}] pre").inner_text() == "ROMEO:" + out[key]["text"]
    assert out["tuned"]["ids"] == out["merged"]["ids"]

    # ΔW of the module picked, and the λ slider's two losses
    page.select_option("#module", "blocks.1.mlp.out")
    tab.wait("location.search.includes('module=blocks.1.mlp.out')")
    spectra = api.post("/api/fine-tuning/spectra", json={"run": name}).json()
    module = next(m for m in spectra["modules"] if m["name"] == "blocks.1.mlp.out")
    for value, text in shown_numbers(tab, "#module-figures .figure"):
        assert any(same_number(value, module[k]) for k in ("relative_norm", "rank", "effective_rank"))
        check_shown(text, float(value))
    assert module["rank"] == 2
    rows = api.post("/api/fine-tuning/lambda", json={"run": name}).json()["rows"]
    page.fill("#lambda", str([r["scale"] for r in rows].index(0.5)))
    page.dispatch_event("#lambda", "input")
    tab.wait("location.search.includes('lambda=0.5')")
    at = next(r for r in rows if r["scale"] == 0.5)
    for selector, key in (("#lambda-target", "target_val_loss"), ("#lambda-original", "original_val_loss")):
        ((value, text),) = shown_numbers(tab, selector)
        assert same_number(value, at[key])
        check_shown(text, at[key])

    # the run is listed, to be shown again later
    tab.wait(f"!!document.querySelector('#run-list li[data-run=\"{name}\"] .ft-open')", timeout=10)

    # the URL redraws the same view
    url = page.url
    page.goto(url)
    settled(tab)
    tab.wait("document.getElementById('lambda-value').textContent === 'λ = 0.5'", timeout=60)
    assert page.input_value("#module") == "blocks.1.mlp.out"
    assert same_number(shown_numbers(tab, "#lambda-target")[0][0], at["target_val_loss"])

    # the one refused start is the browser's only console line: its 400
    assert tab.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
    assert {urlsplit(u).hostname for u in tab.requests} == {"127.0.0.1"}
