"""The Attention heads page in chromium, on induction-2l, austen-bpe and random-weight GPT-2 and Llama
checkpoints built here: the grid's patterns are run_with_cache's, its scores head_scores', the URL
brings the same view back, nothing leaves 127.0.0.1 and no console error is logged."""

from __future__ import annotations

import math
from urllib.parse import quote, urlsplit

import numpy as np
import pytest
import torch

from llm_workings.analysis.circuits import copying_scores
from llm_workings.analysis.heads import attention_patterns, head_scores

pytestmark = pytest.mark.usefixtures("one_thread")

REPEATED = [108, 81, 65, 34, 39, 5, 9, 2, 22, 104, 83, 116, 64, 77, 124, 93, 80, 69, 71, 119] * 2
TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune must be in want of a wife."
PROMPTS = {
    "induction-2l": f"ids={','.join(map(str, REPEATED))}",
    "austen-bpe": f"text={quote(TEXT)}",
    "cli.gpt2-random": f"text={quote(TEXT)}",
    "cli.llama-random": f"text={quote(TEXT)}",
}
KINDS = ("previous_token", "duplicate_token", "induction", "entropy")


def open_page(tab, query: str):
    tab.page.goto(f"{tab.base}/attention-heads{query}")
    settle(tab)
    return tab


def settle(tab) -> None:
    tab.wait("document.body.dataset.ready === 'true' && window.headsPage.pending === 0", timeout=60)


def check_clean(tab) -> None:
    assert tab.errors == []
    hosts = {urlsplit(u).hostname for u in tab.requests if not u.startswith(("data:", "blob:"))}
    assert hosts == {"127.0.0.1"}, hosts


def shown_score(text: str, value: float) -> None:
    """`text` is `value` as format.js prints a score: three decimals, or a dash for NaN."""
    if math.isnan(value):
        assert text == "—"
    else:
        assert text == f"{value:.3f}", (text, value)


def page_patterns(tab) -> tuple[list[int], np.ndarray, float]:
    """The prompt's ids, the grid's patterns as the page unpacked them [heads, n, n], and the quantisation step."""
    ids, heads, flat, lo, hi = tab.page.evaluate(
        """() => { const g = window.headsPage.grid;
            return [g.prompt.ids, g.heads, g.patterns.map((p) => Array.from(p)), g.patternsMin, g.patternsMax]; }"""
    )
    n = len(ids)
    assert heads == list(range(len(flat)))
    return ids, np.array(flat, dtype=np.float32).reshape(len(flat), n, n), (hi - lo) / 255


def stats(tab) -> list[dict]:
    return tab.page.evaluate(
        """() => [...document.querySelectorAll('#grid .lw-panel')].map((box) => ({
            title: box.querySelector('.lw-panel-title').textContent,
            stats: Object.fromEntries([...box.querySelectorAll('.lw-panel-stat')].map((s) =>
                [s.dataset.name, [s.dataset.value, s.querySelector('b').textContent]])) }))"""
    )


@pytest.mark.slow  # 12-18 s a model: two page loads, a sort, a head opened, a query pinned and hovered
@pytest.mark.parametrize("model_id", list(PROMPTS))
def test_the_grid_shows_run_with_caches_patterns_and_head_scores_and_its_url_brings_it_back(
    checkpoint_tab, checkpoint_lab, model_id
):
    tab = open_page(checkpoint_tab, f"?model={model_id}&{PROMPTS[model_id]}")
    ids, patterns, step = page_patterns(tab)
    with checkpoint_lab.app.state.models.hold(model_id) as held:
        model = held.model
        tokens = torch.tensor([ids])
        expected = attention_patterns(model, tokens)[:, 0]  # [layer, head, q, k]
        scores = head_scores(model, tokens).scores
        copying = copying_scores(model) if model.cfg.d_vocab <= 512 else None
    n_layers, n_heads = expected.shape[:2]
    np.testing.assert_allclose(patterns, expected.reshape(n_layers * n_heads, len(ids), len(ids)).numpy(), atol=step / 2 + 1e-6)

    panels = stats(tab)
    assert [p["title"] for p in panels] == [f"L{layer}H{head}" for layer in range(n_layers) for head in range(n_heads)]
    for panel in panels:
        layer, head = (int(x) for x in panel["title"][1:].split("H"))
        for kind in KINDS:
            value = float(scores[kind][layer, head])
            data_value, text = panel["stats"][kind]
            assert (data_value == "null") if math.isnan(value) else float(data_value) == value
            shown_score(text, value)

    # sort by induction, open the best head, pin a query: the URL carries it all
    tab.page.select_option("#sort", "induction")
    settle(tab)
    titles = [p["title"] for p in stats(tab)]
    order = sorted(range(n_layers * n_heads), key=lambda i: (-float(scores["induction"].flatten()[i].nan_to_num(-1e9)), i))
    assert titles == [f"L{i // n_heads}H{i % n_heads}" for i in order]
    tab.page.click("#grid .lw-panel[data-panel='0'] .lw-panel-title")
    settle(tab)
    query = len(ids) - 3
    tab.page.click(f"#lines .lw-lines-query .lw-lines-chip[data-index='{query}']")
    settle(tab)
    best = order[0]
    layer, head = best // n_heads, best % n_heads
    state = tab.page.evaluate("window.headsPage.state")
    assert (state["layer"], state["head"], state["sort"], state["query"]) == (layer, head, "induction", query)
    check_one_head(tab, expected[layer, head], scores, layer, head, query, copying)
    url = tab.page.url
    assert f"layer={layer}" in url and f"head={head}" in url and "sort=induction" in url and f"query={query}" in url

    again = open_page(tab, "?" + urlsplit(url).query)
    assert again.page.evaluate("window.headsPage.state") == state
    assert page_patterns(again)[0] == ids
    check_one_head(again, expected[layer, head], scores, layer, head, query, copying)
    check_clean(tab)


def check_one_head(tab, pattern, scores, layer, head, query, copying) -> None:
    """The head in depth: its float32 pattern is the engine's to the bit, hovering a query colours the
    keys with that query's row, the scores and copying score are the engine's."""
    shown = tab.page.evaluate("Array.from(window.headsPage.head.pattern.data)")
    assert np.array_equal(np.array(shown, dtype=np.float32), pattern.flatten().numpy())
    tab.page.hover(f"#lines .lw-lines-query .lw-lines-chip[data-index='{query}']")
    keys = tab.page.evaluate(
        "[...document.querySelectorAll('#lines .lw-lines-key .lw-lines-chip')].map((c) => Number(c.dataset.value))"
    )
    assert np.array_equal(np.array(keys, dtype=np.float32), pattern[query].numpy())
    lines = tab.page.evaluate("window.headsPage.lines.lineCount")
    assert lines == int((pattern[query] >= 0.004).sum())
    for kind in KINDS:
        b = tab.page.locator(f"#head-scores b[data-kind='{kind}']")
        shown_score(b.inner_text(), float(scores[kind][layer, head]))
    if copying is not None:
        element = tab.page.locator("#copying-score")
        assert float(element.get_attribute("data-value")) == pytest.approx(float(copying[layer, head]), abs=1e-6)
        shown_score(element.inner_text(), float(element.get_attribute("data-value")))
    else:
        assert "drawn here only up to 512 tokens" in tab.page.inner_text("#circuits-note")


@pytest.mark.parametrize(
    ("query", "says"),
    [
        (f"?model=induction-2l&{PROMPTS['induction-2l']}&layer=7", "layer must be from 0 to 1: induction-2l has 2 layers; got 7"),
        (
            "?model=cli.llama-random&text=abc&layer=1&head=9",
            "head must be from 0 to 3: cli.llama-random has 4 heads a layer; got 9",
        ),
        (f"?model=induction-2l&ids={','.join(['3'] * 60)}", "the prompt is 60 tokens; induction-2l reads at most 49 tokens"),
        ("?model=austen-bpe&text=", "the prompt is empty"),
    ],
)
def test_bad_input_is_refused_with_a_message_naming_the_limit(checkpoint_tab, query, says):
    tab = open_page(checkpoint_tab, query)
    assert tab.page.is_visible("#banner")
    assert says in tab.page.inner_text("#banner .banner-message")
    # chromium logs each refused request itself; nothing else may reach the console
    assert all(e.startswith("Failed to load resource: the server responded with a status of 4") for e in tab.errors), tab.errors


def test_a_checkpoint_sets_its_view_and_reveals_after_a_prediction(checkpoint_tab):
    tab = open_page(checkpoint_tab, "?model=austen-bpe&text=It+is")
    checkpoint = "#checkpoint-induction"
    assert tab.page.is_hidden(f"{checkpoint} .reveal")
    tab.page.check(f"{checkpoint} input[data-correct]")
    tab.page.click(f"{checkpoint} button.run")
    tab.wait(f"!document.querySelector('{checkpoint} .reveal').hidden")
    settle(tab)
    state = tab.page.evaluate("window.headsPage.state")
    assert (state["model"], state["layer"], state["head"], state["sort"], state["query"]) == (
        "induction-2l",
        1,
        0,
        "induction",
        30,
    )
    assert tab.page.inner_text(f"{checkpoint} .verdict").endswith("that is what happened.")
    assert tab.page.evaluate("window.headsPage.lines.shown") == 30
    assert (
        tab.page.evaluate(
            "[...document.querySelectorAll('#lines .lw-lines-key .lw-lines-chip')].reduce((best, c, i, all) => Number(c.dataset.value) > Number(all[best].dataset.value) ? i : best, 0)"
        )
        == 11
    )
    check_clean(tab)
