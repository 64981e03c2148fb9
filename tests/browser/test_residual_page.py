"""The Residual stream page in chromium, on induction-2l (the logit lens on a repeated sequence),
austen-bpe and a random-weight GPT-2: every lens cell, bar and total is the toolkit's to the printed
precision, the URL reproduces the view, bad input is named with nothing half-drawn, and no request
leaves 127.0.0.1."""

from __future__ import annotations

import math
import unicodedata
from urllib.parse import quote, urlsplit

import pytest
import torch
from browser_helpers import is_local

from llm_workings.analysis import direct_logit_attribution, logit_lens
from llm_workings.lab.prompts import token_ids

pytestmark = pytest.mark.usefixtures("one_thread")

IDS = [0, 109, 81, 65, 35, 40, 6, 10, 3, 23, 104, 109, 81, 65, 35, 40, 6, 10, 3, 23, 104]
TEXT = "Mr. Darcy and Miss Bennet. Mr. Darcy and Miss"


def open_page(tab, query: str):
    tab.page.goto(tab.base + "/residual-stream" + query)
    settle(tab)
    return tab


def settle(tab):
    tab.wait("document.body.dataset.ready === 'true' && window.residualPage.pending === 0")


def check_clean(tab, refused: bool = False):
    """No console error (but, when `refused`, the browser's own line for the 4xx answer) and no
    request off this machine."""
    refusal = "Failed to load resource: the server responded with a status of 4"
    assert [e for e in tab.errors if not (refused and e.startswith(refusal))] == []
    assert all(is_local(u) for u in tab.requests), [u for u in tab.requests if not is_local(u)]


def check_probability(shown: str, value: float) -> None:
    """As static/js/residual/format.js prints it: 3 significant digits of a percentage, or 3 of e-notation."""
    if shown.endswith("%"):
        number = float(shown[:-1]) / 100
        tolerance = 0.5 * 10 ** (len(str(int(float(shown[:-1])))) - 3) / 100
    else:
        number, tolerance = float(shown), 0.005 * 10 ** int(shown.split("e")[1])
    assert abs(number - value) <= tolerance * (1 + 1e-6), f"{value} shown as {shown!r}"


def check_sig4(shown: str, value: float) -> None:
    """`shown` is `value` to 4 significant digits (d3's ".4g", JS's toPrecision(4))."""
    number = float(shown.replace("−", "-"))
    if value == 0:
        assert number == 0, f"{value} shown as {shown!r}"
        return
    half_unit = 0.5 * 10 ** (math.floor(math.log10(abs(value))) - 3)
    assert abs(number - value) <= half_unit * (1 + 1e-6), f"{value} shown as {shown!r}"


def cells(tab) -> list[dict]:
    return tab.page.evaluate(
        """() => [...document.querySelectorAll('#lens td.rs-cell')].map((c) => ({
            layer: Number(c.dataset.layer), pos: Number(c.dataset.pos), token: Number(c.dataset.token),
            value: Number(c.dataset.value), rank: Number(c.dataset.targetRank),
            top: c.querySelector('.rs-top').textContent, prob: c.querySelector('.rs-prob').textContent }))"""
    )


def bars(tab, scope: str) -> list[tuple[str, str]]:
    labels = tab.page.evaluate(
        f"() => [...document.querySelectorAll('{scope} .lw-bar')].map((g) => g.getAttribute('aria-label'))"
    )
    return [tuple(label.rsplit(": ", 1)) for label in labels]


def visible(text: str) -> str:
    """A token as views/common.js's visibleText shows it."""
    named = {" ": "·", "\n": "↵", "\t": "⇥"}
    invisible = ("Cc", "Cf", "Zl", "Zp", "Zs")
    shown = "".join(named.get(ch) or (f"⟨U+{ord(ch):04X}⟩" if unicodedata.category(ch) in invisible else ch) for ch in text)
    return shown or "∅"


@pytest.mark.parametrize(
    "model_id, prompt",
    [("induction-2l", {"ids": IDS}), ("austen-bpe", {"text": TEXT}), ("cli.gpt2-random", {"text": TEXT})],
)
def test_every_cell_and_bar_is_the_toolkits(checkpoint_tab, checkpoint_lab, model_id, prompt):
    query = f"?model={model_id}&" + (f"ids={','.join(map(str, IDS))}" if "ids" in prompt else f"text={quote(TEXT)}")
    tab = open_page(checkpoint_tab, query + "&split=heads&position=-2&layer=1")
    with checkpoint_lab.app.state.models.hold(model_id) as held, held.lock, torch.no_grad():
        model = held.model
        ids = prompt["ids"] if "ids" in prompt else token_ids(model, held.tokenizer, TEXT)
        tokens = torch.tensor([ids])
        lens = logit_lens(model, tokens, top_k=5)
        logits = model(tokens)[0, -2]
        answers = logits.topk(2).indices
        dla = direct_logit_attribution(model, tokens, answers[None], position=len(ids) - 2)
        text = held.tokenizer.token_text if held.tokenizer is not None else (lambda t: [str(i) for i in t])

    shown = cells(tab)
    assert len(shown) == len(lens.labels) * len(ids)
    for cell in shown:
        layer, pos = cell["layer"], cell["pos"]
        token = int(lens.top_tokens[layer, 0, pos, 0])
        assert cell["token"] == token and cell["top"] == visible(text([token])[0])
        assert cell["value"] == pytest.approx(float(lens.top_probs[layer, 0, pos, 0]), rel=1e-6)
        check_probability(cell["prob"], float(lens.top_probs[layer, 0, pos, 0]))
        assert cell["rank"] == int(lens.target_rank[layer, 0, pos])

    cell_bars = bars(tab, "#cell")  # stream 1 at position len - 2
    assert [float(v.rstrip("%")) / 100 for _, v in cell_bars] == pytest.approx(
        lens.top_probs[1, 0, len(ids) - 2].tolist(), abs=5e-6
    )

    shown_bars = bars(tab, "#dla")
    assert [label for label, _ in shown_bars] == dla.labels
    for (_, value), expected in zip(shown_bars, dla.values[:, 0].tolist(), strict=True):
        check_sig4(value, expected)
    total = float(logits[answers[0]] - logits[answers[1]])
    check_sig4(tab.page.inner_text("#dla-actual"), total)
    assert float(tab.page.get_attribute("#dla-sum", "data-value")) == pytest.approx(total, abs=1e-4)
    check_clean(tab)


def test_the_url_reproduces_the_view_and_a_click_selects_a_cell(checkpoint_tab):
    ids = ",".join(map(str, IDS))
    tab = open_page(checkpoint_tab, f"?model=induction-2l&ids={ids}&colour=rank")
    tab.page.click("#lens td.rs-cell[data-layer='1'][data-pos='5']")
    settle(tab)
    assert "layer=1" in tab.page.url and "position=5" in tab.page.url and "colour=rank" in tab.page.url
    before = (cells(tab), bars(tab, "#cell"), bars(tab, "#dla"))
    assert tab.page.locator("#lens td.lw-selected").get_attribute("data-pos") == "5"
    again = urlsplit(tab.page.url)
    tab.page.goto(tab.base + again.path + "?" + again.query)
    settle(tab)
    assert (cells(tab), bars(tab, "#cell"), bars(tab, "#dla")) == before
    check_clean(tab)


@pytest.mark.parametrize(
    "query, field, message",
    [
        (f"?model=austen-bpe&text={quote(TEXT)}&answer={quote(' Darcy Bennet')}", "answer", "is 2 tokens"),
        (f"?model=induction-2l&ids={','.join(map(str, IDS))}&layer=7", "layer", "out of range"),
    ],
)
def test_bad_input_is_named_and_nothing_is_drawn(checkpoint_tab, query, field, message):
    tab = checkpoint_tab
    tab.page.goto(tab.base + "/residual-stream" + query)
    tab.wait("document.body.dataset.refused === 'true' && window.residualPage.pending === 0")
    assert message in tab.page.inner_text("#banner")
    assert tab.page.locator(f".control[data-name='{field}'].invalid").count() == 1
    assert tab.page.locator("#lens td, #dla .lw-bar, #norms canvas").count() == 0
    check_clean(tab, refused=True)
