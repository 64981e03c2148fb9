"""The model picker in chromium, against a lab serving the zoo, two --model arguments (one of our
saved models, one missing path), a finished run and a run still training."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from browser_helpers import is_local

from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import serve_in_thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))  # the checkpoint builders the model tests use
from models_helpers import build_finished_run, build_our_model, build_training_run  # noqa: E402

pytestmark = pytest.mark.browser

MOUNT = """async (options) => {
  const { modelPicker } = await import("/static/js/views/model-picker.js");
  const el = document.createElement("div");
  el.id = "picker-under-test";
  document.body.prepend(el);
  window.__changes = [];
  const filter = options.filter === "big" ? (e) => (e.parameters || 0) > 500000 : options.filter;
  window.__picker = modelPicker(el, { value: options.value, filter, onChange: (id) => window.__changes.push(id) });
  await window.__picker.ready;
  return true;
}"""

OPTIONS = """() => [...document.querySelectorAll("#picker-under-test optgroup")].map((g) => ({
  group: g.label,
  options: [...g.querySelectorAll("option")].map((o) => ({ id: o.value, text: o.textContent, disabled: o.disabled, title: o.title })),
}))"""


@pytest.fixture(scope="module")
def models_lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("picker")
    ours = build_our_model(root / "my-model")
    runs = root / "runs"
    build_finished_run(runs, "tiny-run")
    build_training_run(runs, "half-done", step=40)
    server = serve_in_thread(LabConfig(models=(str(ours), str(root / "typo")), runs_dir=runs))
    yield server, runs
    server.shutdown()


@pytest.fixture
def picker_tab(browser, models_lab):
    server, _ = models_lab
    context = browser.new_context()
    page = context.new_page()
    seen = {"requests": [], "errors": []}
    page.on("request", lambda r: seen["requests"].append(r.url))
    page.on("console", lambda m: m.type == "error" and seen["errors"].append(m.text))
    page.on("pageerror", lambda e: seen["errors"].append(f"uncaught: {e}"))
    page.goto(server.url + "/")

    def mount(value=None, filter=None):
        page.evaluate(MOUNT, {"value": value, "filter": filter})
        return page

    yield mount, page, seen
    assert not seen["errors"], seen["errors"]
    assert all(is_local(url) for url in seen["requests"]), seen["requests"]
    context.close()


def test_grouped_by_source_with_task_and_size(picker_tab):
    mount, page, _ = picker_tab
    mount("austen-bpe")
    groups = page.evaluate(OPTIONS)
    assert [g["group"] for g in groups] == ["Bundled models", "From the command line", "Your training runs"]
    zoo = {o["id"]: o for o in groups[0]["options"]}
    assert list(zoo) == ["austen-bpe", "induction-2l", "modadd-113", "shakespeare-char"]
    assert zoo["shakespeare-char"]["text"] == "shakespeare-char · char-lm · 805k params"
    assert zoo["austen-bpe"]["text"] == "austen-bpe · bpe-lm · 1.3M params"
    cli = {o["id"]: o for o in groups[1]["options"]}
    assert set(cli) == {"cli.my-model", "cli.typo"}
    assert cli["cli.typo"]["disabled"] and "does not exist" in cli["cli.typo"]["title"]
    assert cli["cli.typo"]["text"].endswith("(unavailable)") and not cli["cli.my-model"]["disabled"]
    runs = {o["id"]: o for o in groups[2]["options"]}
    assert not runs["run.tiny-run"]["disabled"]
    assert runs["run.half-done"]["disabled"] and "step 40" in runs["run.half-done"]["title"]
    assert page.evaluate("document.querySelector('#picker-under-test select').value") == "austen-bpe"
    assert "Jane Austen" in page.locator("#picker-under-test .lw-model-note").inner_text()
    assert page.evaluate("window.__changes") == []  # the value given was offered: nothing to report


def test_a_choice_calls_on_change_with_the_id(picker_tab):
    mount, page, _ = picker_tab
    mount("austen-bpe")
    page.select_option("#picker-under-test select", "modadd-113")
    assert page.evaluate("window.__changes") == ["modadd-113"]
    assert page.evaluate("window.__picker.entry.task") == "modular-addition"
    assert "a + b mod 113" in page.locator("#picker-under-test .lw-model-note").inner_text()


@pytest.mark.parametrize(
    "filter, offered",
    [
        ({"hasTokenizer": True}, ["austen-bpe", "shakespeare-char", "cli.my-model", "run.tiny-run"]),
        ({"task": ["induction", "modular-addition"]}, ["induction-2l", "modadd-113"]),
        ("big", ["austen-bpe", "shakespeare-char"]),
    ],
)
def test_a_page_offers_only_the_models_that_fit_it(picker_tab, filter, offered):
    mount, page, _ = picker_tab
    mount("shakespeare-char", filter)
    assert [o["id"] for g in page.evaluate(OPTIONS) for o in g["options"]] == offered


def test_a_value_not_offered_falls_back_to_the_first_available_and_says_so(picker_tab):
    mount, page, _ = picker_tab
    mount("no-such-model", {"hasTokenizer": True})
    assert page.evaluate("window.__picker.value") == "austen-bpe"
    assert page.evaluate("window.__changes") == ["austen-bpe"]
    mount("induction-2l", {"hasTokenizer": True})  # a task model on a text page
    assert page.evaluate("window.__changes") == ["austen-bpe"]


def test_refresh_shows_a_run_that_just_finished(picker_tab, models_lab):
    mount, page, _ = picker_tab
    _, runs = models_lab
    mount("shakespeare-char")
    build_finished_run(runs, "just-finished")
    page.evaluate("window.__picker.refresh()")
    ids = [o["id"] for g in page.evaluate(OPTIONS) for o in g["options"]]
    assert "run.just-finished" in ids and page.evaluate("window.__picker.value") == "shakespeare-char"
