"""The Inside a transformer page in chromium, on induction-2l, austen-bpe and random GPT-2, NeoX and
Llama checkpoints: every number shown at every stage is the engine's cache (or worked out from it)
to 1e-6 and printed at the lab's precision; the URL reproduces the view; bad input is refused by name."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from browser_helpers import check_shown, is_local

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lab"))
from inside_helpers import close, engine_number, full_run  # noqa: E402

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_thread")]

TEXT = "It is a truth universally acknowledged"
REPEATED = ",".join(map(str, [60, 65, 96, 121, 4, 18, 105, 121, 31, 39, 111, 54] * 2))
VIEWS = {
    "induction-2l": f"?model=induction-2l&ids={REPEATED}&position=17&layer=1&head=1&sharpen=2",
    "austen-bpe": f"?model=austen-bpe&text={quote(TEXT)}&position=4&layer=2&head=3",
    "cli.gpt2-random": f"?model=cli.gpt2-random&text={quote(TEXT)}&layer=1&head=2",
    "cli.neox-random": f"?model=cli.neox-random&text={quote(TEXT)}&position=3&head=1",
    "cli.llama-random": f"?model=cli.llama-random&text={quote(TEXT)}&position=5&layer=1&head=3",
}
SHOWN = """() => {
  const list = (s) => (s ? s.split(",").map(Number) : []);
  const nums = [...document.querySelectorAll("#stages .num")].map((e) => ({
    hook: e.dataset.hook ?? null, derived: e.dataset.derived ?? null, index: list(e.dataset.index),
    value: e.dataset.value, text: e.textContent }));
  const cells = [...document.querySelectorAll("#stages .item-vector")].flatMap((box) =>
    [...box.querySelectorAll(".lw-vcell")].map((c) => ({ hook: box.dataset.hook, derived: null,
      index: [...list(box.dataset.prefix), Number(c.dataset.index)], value: c.dataset.value })));
  const cellsOfMaps = window.insidePage.records.map((r) => ({ ...r, derived: null, value: String(r.value) }));
  return { nums, cells, maps: cellsOfMaps, walk: { position: window.insidePage.data.position,
    layer: window.insidePage.data.layer, head: window.insidePage.data.head, ids: window.insidePage.data.ids } };
}"""


def open_page(tab, query: str):
    tab.page.goto(tab.base + "/inside-a-transformer" + query)
    wait(tab, "document.body.dataset.ready === 'true' && window.insidePage.pending === 0")
    return tab


def wait(tab, expression: str, timeout: float = 60.0):
    end = time.monotonic() + timeout
    while not (value := tab.page.evaluate(expression)):
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {expression}")
        time.sleep(0.05)
    return value


def as_float(text: str) -> float:
    return {"Infinity": float("inf"), "-Infinity": float("-inf")}.get(text) or float(text)


def check_clean(tab) -> None:
    assert tab.errors == []
    assert all(is_local(u) for u in tab.requests), [u for u in tab.requests if not is_local(u)]


@pytest.mark.parametrize("model_id", [pytest.param(m, marks=pytest.mark.slow) if m == "cli.neox-random" else m for m in VIEWS])
def test_every_number_shown_is_the_engines_cache_at_the_printed_precision(checkpoint_tab, checkpoint_lab, model_id):
    tab = open_page(checkpoint_tab, VIEWS[model_id])
    shown = tab.page.evaluate(SHOWN)
    walk = shown["walk"]
    with checkpoint_lab.app.state.models.hold(model_id) as held:
        model = held.model
        logits, cache = full_run(model, walk["ids"])
        for n in shown["nums"] + shown["cells"] + shown["maps"]:
            expected = engine_number(model, logits, cache, walk, n["hook"], n["derived"], n["index"])
            assert close(as_float(n["value"]), expected), (n, expected)
    for n in shown["nums"]:
        check_shown(n["text"], as_float(n["value"]))
    assert len(shown["nums"]) > 40 and len(shown["cells"]) > 300
    # a colour strip's hover shows the entry's value at the same precision
    cell = tab.page.locator("#stage-qkv .lw-vcell").nth(3)
    cell.hover()
    tip = tab.page.locator("#stage-qkv .lw-tooltip:visible").inner_text()
    assert tip.splitlines()[0] == "d_head 3"
    check_shown(tip.splitlines()[1].split(": ")[1], as_float(cell.get_attribute("data-value")))
    check_clean(tab)


def test_the_url_reproduces_the_view_and_a_clicked_token_is_followed(checkpoint_tab):
    tab = open_page(checkpoint_tab, VIEWS["cli.llama-random"])
    tab.page.click("#position-strip .lw-chip[data-index='2']")
    wait(tab, "window.insidePage.pending === 0 && window.insidePage.data.position === 2")
    tab.page.fill("#choice-head", "1")
    tab.page.press("#choice-head", "Enter")
    wait(tab, "window.insidePage.pending === 0 && window.insidePage.data.head === 1")
    url = tab.page.url
    assert "position=2" in url and "head=1" in url and "model=cli.llama-random" in url
    first = tab.page.evaluate(SHOWN)
    again = open_page(tab, url[len(tab.base) + len("/inside-a-transformer") :])
    assert again.page.evaluate(SHOWN) == first
    stages = tab.page.evaluate("[...document.querySelectorAll('#stages .stage')].map((s) => s.id)")
    assert stages == [f"stage-{s}" for s in ("embed", "ln1", "qkv", "scores", "z", "attn_out", "mlp", "unembed")]
    wiring = tab.page.inner_text("#wiring")
    assert "RMSNorm" in wiring and "gated MLP" in wiring and "sharing 2 key/value heads" in wiring
    check_clean(tab)


BAD = [
    (f"?model=induction-2l&ids={','.join(['3'] * 60)}", "the prompt is 60 tokens; induction-2l reads at most 49 tokens"),
    ("?model=austen-bpe&text=", "the prompt is empty"),
    (f"?model=austen-bpe&text={quote(TEXT)}&layer=7", "layer 7 is out of range: austen-bpe has layers 0 to 3"),
    (f"?model=austen-bpe&text={quote(TEXT)}&head=4", "head 4 is out of range: austen-bpe has heads 0 to 3"),
    ("?model=austen-bpe&text=It+is&position=9", "position 9 is out of range: the prompt has 2 tokens"),
]


def test_bad_input_is_refused_naming_the_limit_and_the_page_recovers(checkpoint_tab):
    tab = open_page(checkpoint_tab, BAD[0][0])
    for query, message in BAD:
        tab.page.evaluate("(q) => window.insidePage.applyQuery(q)", query)
        wait(tab, "window.insidePage.pending === 0 && !document.getElementById('banner').hidden")
        assert message in tab.page.inner_text("#banner"), query
        assert tab.page.evaluate("document.querySelectorAll('#stages .stage').length") == 0
    tab.page.evaluate("(q) => window.insidePage.applyQuery(q)", VIEWS["austen-bpe"])
    wait(tab, "window.insidePage.pending === 0 && document.getElementById('banner').hidden")
    assert tab.page.evaluate("document.querySelectorAll('#stages .stage').length") == 8
    assert [e for e in tab.errors if "status of 4" not in e] == []  # chromium logs the refused requests themselves


def test_characters_the_tokenizer_cannot_spell_are_shown_as_what_it_made_of_them(checkpoint_tab, checkpoint_lab):
    text = "café ☃"
    tab = open_page(checkpoint_tab, f"?model=austen-bpe&text={quote(text)}")
    chips = tab.page.evaluate(
        "[...document.querySelectorAll('#position-strip .lw-chip')].map((c) => [Number(c.dataset.id), c.querySelector('.lw-chip-text').textContent])"
    )
    with checkpoint_lab.app.state.models.hold("austen-bpe") as held:
        ids = held.tokenizer.encode(text)
        strings = held.tokenizer.token_text(ids)
    assert [c[0] for c in chips] == ids
    assert [c[1] for c in chips] == [s.replace(" ", "·") for s in strings]
    check_clean(tab)


def test_a_checkpoint_sets_the_view_then_reveals_and_its_numbers_are_the_engines(checkpoint_tab, checkpoint_lab):
    tab = open_page(checkpoint_tab, "")
    checkpoint = "#checkpoint-sharpen"
    tab.page.click(f"{checkpoint} input[data-correct]")
    tab.page.click(f"{checkpoint} button.run")
    wait(tab, f"!document.querySelector('{checkpoint} .reveal').hidden && window.insidePage.pending === 0")
    assert "model=induction-2l" in tab.page.url and "sharpen=2" in tab.page.url
    assert "right" in tab.page.get_attribute(f"{checkpoint} .verdict", "class")
    shown = tab.page.evaluate(SHOWN)
    sharpened = [n for n in shown["nums"] if (n["derived"] or "").startswith("sharpened:")]
    assert len(sharpened) == len(shown["walk"]["ids"])
    with checkpoint_lab.app.state.models.hold("induction-2l") as held:
        logits, cache = full_run(held.model, shown["walk"]["ids"])
        for n in sharpened:
            assert close(
                as_float(n["value"]), engine_number(held.model, logits, cache, shown["walk"], None, n["derived"], n["index"])
            )
    check_clean(tab)
    # the two views this page added, mounted on their own: cells carry their values, exports work
    exported = tab.page.evaluate(
        """async () => {
          const { vectorStrip } = await import("/static/js/views/vector-strip.js");
          const { rotationPairs } = await import("/static/js/views/rotation-pairs.js");
          const a = document.body.appendChild(document.createElement("div"));
          const b = document.body.appendChild(document.createElement("div"));
          const strip = vectorStrip(a, { values: [-1, 0.5, 2], indices: [0, 5, 9] }, { axis: "d_model", title: "v" });
          const pairs = rotationPairs(b, { pairs: [{ label: "dims 0, 1", before: [1, 0], after: [0, 1], angle: 1.5708, trail: [[1, 0], [0, 1]] }] });
          await strip.ready;
          return { cells: strip.cells.map((c) => [c.dataset.index, c.dataset.value]), json: strip.exportJson(),
                   svg: strip.exportSvg(), pairs: pairs.exportJson(), pairsSvg: pairs.exportSvg(),
                   trail: b.querySelectorAll(".lw-trail").length };
        }"""
    )
    assert exported["cells"] == [["0", "-1"], ["5", "0.5"], ["9", "2"]]
    assert exported["json"]["indices"] == [0, 5, 9] and exported["json"]["values"] == [-1, 0.5, 2]
    assert exported["svg"].count("<rect") >= 3 and "lw-after" in exported["pairsSvg"]
    assert exported["pairs"]["pairs"][0]["angle"] == 1.5708 and exported["trail"] == 2
    check_clean(tab)
