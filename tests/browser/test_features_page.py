"""The Features page in chromium: every number shown is the SAE engine's, the URL brings the view
back, a click on a token or a latent opens what it names, and nothing leaves 127.0.0.1."""

from __future__ import annotations

import pytest
from browser_helpers import check_shown, is_local
from conftest import VIEWPORT, LabPage

from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import serve_in_thread

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_thread")]

READY = "document.body.dataset.ready === 'true' && window.featuresPage.pending === 0"
SHOWN = """() => ({
  numbers: [...document.querySelectorAll('.workbench [data-key]')].map((el) => [el.dataset.key, Number(el.dataset.value), el.textContent]),
  chips: [...document.querySelectorAll('#text-strip .lw-chip')].map((c) => [c.dataset.id, Number(c.dataset.value)]),
  examples: [...document.querySelectorAll('#top-examples .ft-example')].map((e) =>
    [Number(e.dataset.value), [...e.querySelectorAll('.lw-chip')].map((c) => Number(c.dataset.value))]),
  title: document.getElementById('dashboard-title').textContent,
})"""
SAE = "shakespeare-char-resid2-topk"
TEXT = "KING:\nNo more."


def api(tab, path, body):
    return tab.page.request.post(f"{tab.base}/api/features/{path}", data=body).json()


def opened(tab, query):
    tab.open(query, path="/features")
    tab.wait(READY, timeout=120)
    return tab.page.evaluate(SHOWN)


def test_the_dashboard_text_and_list_are_the_engines_and_the_url_brings_them_back(tab):
    query = f"?model=shakespeare-char&sae={SAE}&latent=13&sort=text&text=KING%3A%0ANo+more.&token=5"
    shown = opened(tab, query)
    body = {"model": "shakespeare-char", "sae": SAE}
    dash = api(tab, "dashboard", {**body, "latent": 13})
    text = api(tab, "text", {**body, "prompt": {"text": TEXT}, "latent": 13})
    latents = api(tab, "latents", body)
    assert shown["title"] == "Latent 13"
    assert [float(v) for _, v in shown["chips"]] == text["latent_values"]
    assert shown["examples"] == [[e["value"], e["values"]] for e in dash["top_examples"]]
    expected = {
        "dash.density": dash["density"],
        "dash.max_activation": dash["max_activation"],
        **{f"neighbours.{i}": n["cosine"] for i, n in enumerate(dash["neighbours"])},
        **{f"token.5.{i}": v for i, v in zip(text["per_token"][5]["latents"], text["per_token"][5]["values"])},
        **{f"text_max.{t['index']}": t["max"] for t in text["latents"][:40]},
        **{f"density.{t['index']}": latents["density"][t["index"]] for t in text["latents"][:40]},
    }
    seen = {}
    for key, value, shown_text in shown["numbers"]:
        seen[key] = value
        check_shown(shown_text, float(value))
    for key, value in expected.items():
        assert seen[key] == pytest.approx(value, rel=1e-12, abs=1e-15), key
    assert len([k for k in seen if k.startswith("text_max.")]) == min(40, len(text["latents"]))
    again = opened(tab, "?" + tab.page.url.split("?", 1)[1])
    assert again == shown
    assert all(is_local(url) for url in tab.requests)
    assert tab.errors == []


def test_clicks_open_a_tokens_latents_a_latents_dashboard_the_next_page_and_a_checkpoint(tab):
    opened(tab, f"?model=shakespeare-char&sae={SAE}&text=KING%3A%0ANo+more.")
    density = api(tab, "latents", {"model": "shakespeare-char", "sae": SAE})["density"]
    ranked = sorted(range(len(density)), key=lambda i: (-density[i], i))
    tab.page.click("#list-next")
    rows = tab.page.evaluate(
        "[...document.querySelectorAll('#latent-table tr[data-latent]')].map((r) => Number(r.dataset.latent))"
    )
    assert rows == ranked[40:80] and "from=40" in tab.page.url
    tab.page.click("#text-strip .lw-chip[data-index='5']")
    tab.wait("document.querySelectorAll('#token-latents button[data-latent]').length === 16")
    first = tab.page.get_attribute("#token-latents button[data-latent]", "data-latent")
    tab.page.click("#token-latents button[data-latent]")
    tab.wait(READY + f" && document.getElementById('dashboard-title').textContent === 'Latent {first}'")
    assert f"latent={first}" in tab.page.url and "token=5" in tab.page.url
    tab.page.check("#checkpoint-sentences input[data-correct]")
    tab.page.click("#checkpoint-sentences button.run")
    tab.wait("!document.querySelector('#checkpoint-sentences .reveal').hidden && " + READY, timeout=60)
    assert tab.page.evaluate(SHOWN)["title"] == "Latent 13" and "latent=13" in tab.page.url
    assert "right" in tab.page.get_attribute("#checkpoint-sentences .verdict", "class")
    assert tab.errors == []


def test_refusals_are_named_on_the_page(tab):
    opened(tab, f"?model=shakespeare-char&sae={SAE}&latent=4096")
    assert "latent 4096 is out of range" in tab.text("#banner")
    opened(tab, "?model=shakespeare-char&sae=nope")
    assert "unknown SAE 'nope'" in tab.text("#banner")
    opened(tab, f"?model=induction-2l&sae={SAE}")
    assert "blocks.2.hook_resid_pre" in tab.text("#banner")
    assert all(is_local(url) for url in tab.requests)


@pytest.mark.slow
def test_an_sae_trained_from_the_page_joins_the_list_and_opens(browser, tmp_path):
    lab = serve_in_thread(LabConfig(runs_dir=tmp_path / "runs"))
    context = browser.new_context(viewport=VIEWPORT)
    tab = LabPage(context.new_page(), lab.url)
    tab.page.on("request", lambda r: tab.requests.append(r.url))
    tab.page.on("console", lambda m: m.type == "error" and tab.errors.append(m.text))
    try:
        opened(tab, "?model=shakespeare-char&text=To+be")
        tab.page.click("#train-panel summary")
        for name, value in (("layer", "1"), ("k", "4"), ("steps", "10")):
            tab.page.fill(f"#train-settings input[name='{name}']", value)
            tab.page.dispatch_event(f"#train-settings input[name='{name}']", "change")
        tab.page.select_option("#train-settings select[name='d_sae']", "128")
        tab.page.click("#train-start")
        name = "trained.shakespeare-char-resid1-topk128-k4-run1"
        tab.wait(f"document.getElementById('sae').value === '{name}' && " + READY, timeout=120)
        assert (
            f"sae={name}" in tab.page.url and (tmp_path / "runs" / "saes" / name.removeprefix("trained.") / "card.json").is_file()
        )
        text = api(tab, "text", {"model": "shakespeare-char", "sae": name, "prompt": {"text": "To be"}})
        shown = tab.page.evaluate(SHOWN)
        assert [v for _, v in shown["chips"]] == [row["values"][0] for row in text["per_token"]]
        assert all(is_local(url) for url in tab.requests)
        assert tab.errors == []
    finally:
        context.close()
        lab.shutdown()
