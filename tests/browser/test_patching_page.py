"""The Patching page in chromium, on induction-2l, austen-bpe and a Hugging Face GPT-2 with random weights
built here: every heatmap cell is the analysis toolkit's number (exactly, and as printed on hover), the
presets show their known answers, the URL redraws the same view, a sweep job can be cancelled part-way,
and bad input is refused by name with nothing half-drawn."""

from __future__ import annotations

from urllib.parse import quote

import pytest
import torch
from browser_helpers import check_shown, is_local

from llm_workings.analysis.ablation import ablate
from llm_workings.analysis.attribution_patching import attribution_patch
from llm_workings.analysis.metrics import LogitDiff
from llm_workings.analysis.patching import patch_heads, patch_residual
from llm_workings.analysis.path_patching import path_patch
from llm_workings.lab.prompts import token_ids

pytestmark = pytest.mark.usefixtures("one_thread")

GPT2 = "cli.gpt2-random"
GPT2_CLEAN = "It is a truth universally acknowledged, that a single man"
GPT2_CORRUPTED = "It is a truth universally acknowledged, that a single wife"


def open_page(tab, query: str):
    tab.page.goto(tab.base + "/patching" + query)
    tab.wait("document.body.dataset.ready === 'true'")
    settle(tab)
    return tab


def settle(tab) -> None:
    tab.wait("window.patchingPage.pending === 0")


def page_map(tab, kind: str) -> dict:
    return tab.page.evaluate(
        """(kind) => { const m = patchingPage.maps[kind];
            return m && {shape: m.values.shape, values: Array.from(m.values.data), normalized: Array.from(m.normalized.data),
                         rows: m.rows, pearson: m.pearson ?? null}; }""",
        kind,
    )


def shown_cells(tab, kind: str) -> list[dict]:
    """Select every cell of a map in turn and read the readout: the printed numbers and their data-value."""
    return tab.page.evaluate(
        """(kind) => { const view = patchingPage.views[kind]; const [rows, cols] = patchingPage.maps[kind].values.shape;
            const out = [];
            for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
              view.select(r, c);
              const n = document.getElementById('readout-normalized'), raw = document.getElementById('readout-raw');
              out.push({row: r, col: c, normalized: n.textContent, normalized_value: n.dataset.value, raw: raw.textContent});
            }
            return out; }""",
        kind,
    )


def grid(values: torch.Tensor) -> list[float]:
    """A toolkit result's values as the page lays them out (layer.head rows for three axes), row-major."""
    if values.ndim == 3:
        values = values.permute(0, 2, 1).flatten(0, 1)
    return values.float().flatten().tolist()


def assert_clean(tab) -> None:
    assert all(is_local(url) for url in tab.requests), [u for u in tab.requests if not is_local(u)]
    assert tab.errors == []


def test_induction_preset_every_cell_the_toolkits_and_the_known_answer(checkpoint_tab, checkpoint_lab):
    tab = open_page(checkpoint_tab, "?model=induction-2l&sweep=1")
    with checkpoint_lab.app.state.models.hold("induction-2l") as held:
        ids = tab.page.evaluate("[patchingPage.pair.clean.ids, patchingPage.pair.corrupted.ids]")
        clean, corrupted = torch.tensor([ids[0]]), torch.tensor([ids[1]])
        metric = LogitDiff(torch.tensor([[103, 126]]))
        expected = patch_residual(held.model, clean, corrupted, metric, progress=False)
        estimate = attribution_patch(held.model, clean, corrupted, metric)
    assert tab.page.locator("#pair td.differs").count() == 2 * 10  # positions 1..10, in both rows
    sweep = page_map(tab, "sweep")
    assert sweep["values"] == grid(expected.values) and sweep["normalized"] == grid(expected.normalized)
    assert page_map(tab, "estimate")["values"] == pytest.approx(grid(estimate.values), abs=1e-5)
    for cell, raw, norm in zip(shown_cells(tab, "sweep"), grid(expected.values), grid(expected.normalized)):
        check_shown(cell["raw"], raw)
        check_shown(cell["normalized"], norm)
        assert float(cell["normalized_value"]) == norm
    best = max(range(len(sweep["normalized"])), key=sweep["normalized"].__getitem__)
    assert divmod(best, sweep["shape"][1]) == (1, 7)  # the known answer: entering layer 1, position 7
    check_shown(tab.text("#pearson"), sweep["pearson"])
    # the URL holds the whole view: a fresh tab on it draws the same maps
    url = tab.page.url
    again = open_page(checkpoint_tab, "?" + url.split("?", 1)[1])
    assert page_map(again, "sweep")["values"] == sweep["values"]
    # docs/analysis.md's answer: the previous-token head L0H2 reaches the induction heads through their keys
    again.page.evaluate("patchingPage.applyQuery(document.getElementById('checkpoint-keys').dataset.query)")
    settle(again)
    q, k, v = page_map(again, "path")["normalized"][:3]  # the row "L1 heads": q, k, v
    assert k < 0.05 and q > 0.99 and v > 0.99
    assert_clean(tab)


def test_austen_heads_path_patching_and_ablation_are_the_toolkits(checkpoint_tab, checkpoint_lab):
    tab = open_page(checkpoint_tab, "?model=austen-bpe&activation=z&sweep=1&sender=L2H2")
    with checkpoint_lab.app.state.models.hold("austen-bpe") as held:
        tok = held.model.tokenizer
        clean = torch.tensor([tok.encode('"You are very kind')])
        corrupted = torch.tensor([tok.encode("And you are very kind")])
        metric = LogitDiff(torch.tensor([[tok.encode(',"')[0], tok.encode(",")[0]]]))
        heads = patch_heads(held.model, clean, corrupted, metric, progress=False)
        into_keys = path_patch(held.model, clean, corrupted, metric, [f"L3H{h}.k" for h in range(4)], ["L2H2"])
        ablated = ablate(held.model, clean, ["L2H2", "L3H1"], "zero", metric)
    assert page_map(tab, "sweep")["values"] == grid(heads.values)
    # known answers: the quotation is carried by heads L2H2 and L3H1 (each restores about a third)
    normalized = heads.normalized
    assert normalized[2, 2] > 0.3 and normalized[3, 1] > 0.25
    path = page_map(tab, "path")
    assert path["rows"][0] == "L3 heads"
    assert path["values"][1] == pytest.approx(float(into_keys.values[0]), abs=1e-5)  # row "L3 heads", column k
    # click a head on the z map: it becomes the sender; toggle two heads off and read the metric
    tab.page.evaluate("patchingPage.views.sweep.select(2, 1)")
    settle(tab)
    assert tab.page.input_value("#sender") == "L2H1" and "sender=L2H1" in tab.page.url
    assert page_map(tab, "path")["rows"] == ["L3 heads", "L3H0", "L3H1", "L3H2", "L3H3"]
    tab.page.click('#head-toggles button[data-head="L2H2"]')
    tab.page.click('#head-toggles button[data-head="L3H1"]')
    settle(tab)
    shown = tab.page.locator("#ablated-value")
    assert float(shown.get_attribute("data-value")) == pytest.approx(ablated, abs=1e-5)
    check_shown(shown.inner_text(), float(shown.get_attribute("data-value")))
    assert "ablate=L2H2%2CL3H1" in tab.page.url
    assert_clean(tab)


def test_random_gpt2_sweep_is_the_toolkits(checkpoint_tab, checkpoint_lab):
    query = f"?model={GPT2}&clean={quote(GPT2_CLEAN)}&corrupted={quote(GPT2_CORRUPTED)}&answer=%20a&wrong=%20m&activation=resid_mid&sweep=1"
    tab = open_page(checkpoint_tab, query)
    assert tab.page.locator("#banner").is_hidden(), tab.text("#banner")
    with checkpoint_lab.app.state.models.hold(GPT2) as held:
        clean = torch.tensor([token_ids(held.model, held.tokenizer, GPT2_CLEAN)])
        corrupted = torch.tensor([token_ids(held.model, held.tokenizer, GPT2_CORRUPTED)])
        answers = [held.tokenizer.encode(" a")[0], held.tokenizer.encode(" m")[0]]
        expected = patch_residual(held.model, clean, corrupted, LogitDiff(torch.tensor([answers])), "resid_mid", progress=False)
    assert tab.page.evaluate("patchingPage.pair.clean.ids") == clean[0].tolist()  # the BOS first, as GPT-2 reads text
    assert page_map(tab, "sweep")["values"] == grid(expected.values)
    for cell, norm in zip(shown_cells(tab, "sweep"), grid(expected.normalized)):
        check_shown(cell["normalized"], norm)
    assert_clean(tab)


MAPS = ["sweep-map", "estimate-map", "path-map"]
EVERYTHING = [*MAPS, "pair", "scores", "ablation-readout"]


@pytest.mark.parametrize(
    ("query", "words", "empty"),
    [
        (
            "?model=austen-bpe&corrupted=And%20so%20you%20are%20very%20kind",
            ["5 tokens", "corrupted prompt 6", "'And', ' so'"],
            EVERYTHING,
        ),
        ("?model=austen-bpe&answer=%20Mr.%20Darcy", ["' Mr. Darcy' is 3 tokens", "single"], EVERYTHING),
        ("?model=induction-2l&activation=mlp_out", ["attention-only", "hook_mlp_out"], MAPS),
        ("?model=induction-2l&sender=L5H0", ["layer 5 is out of range [0, 2)"], ["path-map"]),
        ("?model=induction-2l&ablate=L0H9", ["head 9 is out of range [0, 4)"], ["ablation-readout"]),
    ],
)
def test_bad_input_is_refused_by_name_with_nothing_half_drawn(checkpoint_tab, query, words, empty):
    tab = open_page(checkpoint_tab, query)
    banner = tab.text("#banner")
    for word in words:
        assert word in banner, banner
    drawn = tab.page.evaluate("(ids) => ids.filter((id) => document.getElementById(id).childElementCount)", empty)
    assert drawn == [], banner
    refusals = "Failed to load resource: the server responded with a status of 4"  # chromium logs the refused request itself
    assert [e for e in tab.errors if not e.startswith(refusals)] == []


@pytest.mark.slow
def test_cancel_stops_a_sweep_job_part_way(deep_tab):
    text, other = "the quick brown fox jumps over the ", "the quick brown cat jumps over the "
    tab = open_page(deep_tab, f"?model=cli.deep-random&clean={quote(text)}&corrupted={quote(other)}&answer=a&wrong=t")
    tab.page.click("#run-sweep")
    tab.wait("patchingPage.maps.sweep && patchingPage.maps.sweep.values.data.some(Number.isFinite)")
    assert tab.page.locator("#sweep-progress").is_visible()
    tab.page.click("#cancel-sweep")
    settle(tab)
    assert "Cancelled after" in tab.text("#sweep-status")
    job = tab.page.evaluate("patchingPage.job")
    assert job["kind"] == "patching-sweep" and job["state"] == "cancelled"
    done = tab.page.evaluate(
        "(() => { const m = patchingPage.maps.sweep; return m.rows.map((_, r) => Number.isFinite(m.values.data[r * m.values.shape[1]])); })()"
    )
    assert 1 <= sum(done) < 8 and done == sorted(done, reverse=True)  # the first layers drawn, the rest never run
    assert "sweep=1" not in tab.page.url  # a cancelled sweep is not part of the view a URL reproduces
    assert_clean(tab)
