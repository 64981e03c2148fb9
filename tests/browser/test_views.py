"""The shared views (static/js/views/) mounted with known data on a lab page, checked as a person sees them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from browser_helpers import is_local

from llm_workings.lab.wire import decode_tensor, encode_tensor

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "src" / "llm_workings" / "lab" / "static"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
VIRIDIS_ENDS = ((68, 1, 84), (253, 231, 37))  # d3's interpolateViridis(0) and (1): #440154, #fde725
RDBU_BLUE_END = (5, 48, 97)  # #053061, where the lab's diverging RdBu puts its most negative value
ORANGES_ENDS = ((255, 245, 235), (127, 39, 4))  # #fff5eb, #7f2704

TOKENS = [
    ("The", 464),
    (" cat", 3797),
    ("\n", 198),
    ("\t", 197),
    ("  ", 220),
    ("\u200b", 50256),
    ("a\r", 64),
    ("", 0),
]
SHOWN = ["The", "·cat", "↵", "⇥", "··", "⟨U+200B⟩", "a⟨U+000D⟩", "∅"]


@pytest.fixture
def views(tab):
    """A lab page emptied to one white <div id="host"> the tests mount views into."""
    tab.open(path="/")
    tab.page.evaluate(
        """() => {
          document.body.replaceChildren();
          const host = document.createElement("div");
          host.id = "host";
          host.style.cssText = "width: 760px; padding: 12px; background: #fff";
          document.body.append(host);
          window.__events = [];
        }"""
    )
    yield tab
    assert tab.errors == [], f"console errors: {tab.errors}"
    off_host = [u for u in tab.requests if not is_local(u)]
    assert off_host == [], f"requests left 127.0.0.1: {off_host}"


def mount(tab, module: str, name: str, data, options: dict | None = None):
    """Mounts `name` from /static/js/views/`module` into #host as window.view; events land in window.__events."""
    tab.page.evaluate(
        """async ([module, name, data, options]) => {
          const views = await import(`/static/js/views/${module}`);
          const record = (kind) => (...args) => window.__events.push([kind, ...args.map((a) => a ?? null)]);
          window.view = views[name](document.getElementById("host"), data, {
            ...options, onHover: record("hover"), onSelect: record("select") });
        }""",
        [module, name, data, options or {}],
    )


def events(tab, kind: str) -> list:
    return [e[1:] for e in tab.page.evaluate("window.__events") if e[0] == kind]


def pixel(tab, selector: str, x: float, y: float) -> tuple[int, int, int]:
    """The colour drawn at CSS px (x, y) of a canvas."""
    return tuple(
        tab.page.evaluate(
            """([selector, x, y]) => {
              const canvas = document.querySelector(selector);
              const ratio = canvas.width / canvas.clientWidth;
              const d = canvas.getContext("2d").getImageData(Math.floor(x * ratio), Math.floor(y * ratio), 1, 1).data;
              return [d[0], d[1], d[2]];
            }""",
            [selector, x, y],
        )
    )


def tooltip_lines(tab) -> list[str]:
    tip = tab.page.locator(".lw-tooltip:visible")
    return tip.locator("div").all_inner_texts()


def exported(tab, kind: str) -> bytes:
    with tab.page.expect_download() as info:
        tab.page.click(f'button.lw-export[data-export="{kind}"]')
    download = info.value
    assert download.suggested_filename.endswith(f".{kind}")
    return Path(download.path()).read_bytes()


def check_exports(tab, texts: list[str]) -> None:
    """PNG, SVG and JSON downloads from the view's buttons: a real PNG, an SVG showing `texts`."""
    png = exported(tab, "png")
    assert png.startswith(PNG_MAGIC) and len(png) > 2000
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert width > 100 and height > 40
    svg = exported(tab, "svg").decode()
    root = ElementTree.fromstring(svg.split("?>", 1)[1])
    assert root.tag.endswith("svg")
    shown = {"".join(t.itertext()) for t in root.iter() if t.tag.endswith("text")}
    for text in texts:
        assert text in shown, f"{text!r} missing from the exported SVG ({sorted(shown)[:20]})"
    assert json.loads(exported(tab, "json"))["view"]


def test_vendored_d3_is_licensed_and_needs_no_import_map():
    d3 = STATIC / "vendor" / "d3"
    modules = sorted(d3.glob("*.js"))
    assert {m.stem for m in modules} >= {"d3-array", "d3-axis", "d3-scale", "d3-scale-chromatic", "d3-selection"}
    for module in modules:
        assert (d3 / f"LICENSE-{module.stem}").read_text().strip(), f"{module.name} has no licence beside it"
        for spec in re.findall(r"""^import .* from ['"]([^'"]+)['"]""", module.read_text(), re.M):
            assert spec.startswith("./") and (d3 / spec[2:]).exists(), f"{module.name} imports {spec!r}"
    views = STATIC / "js" / "views"
    for view in views.glob("*.js"):
        for spec in re.findall(r"""from ['"]([^'"]+)['"]""", view.read_text()):
            assert spec.startswith("."), f"{view.name} imports {spec!r}: the browser needs a relative path"


def test_token_strip_shows_each_token_visibly_and_selects_by_pointer_and_keyboard(views):
    values = [0.0, 2.5, 5.0, 7.5, 10.0, 1.0, None, 3.0]
    data = {"tokens": [{"text": t, "id": i} for t, i in TOKENS], "values": values, "labels": ["x"] * 8}
    options = {"scale": {"scheme": "Oranges", "domain": [0, 10], "label": "surprise (bits)", "format": ".2f"}}
    mount(views, "token-strip.js", "tokenStrip", data, options)
    page = views.page
    chips = page.locator(".lw-chip")
    assert chips.locator(".lw-chip-text").all_inner_texts() == SHOWN
    assert chips.locator(".lw-id").all_inner_texts() == [str(i) for _, i in TOKENS]
    assert chips.locator(".lw-pos").all_inner_texts() == [str(p) for p in range(8)]
    # Colour follows the scale: the domain's ends are the scheme's ends; no value, no colour.
    colours = chips.evaluate_all("cs => cs.map(c => getComputedStyle(c).backgroundColor)")
    assert colours[0] == "rgb({}, {}, {})".format(*ORANGES_ENDS[0])
    assert colours[4] == "rgb({}, {}, {})".format(*ORANGES_ENDS[1])
    assert colours[6] == "rgb(255, 255, 255)"
    # A new row starts after the newline token.
    tops = chips.evaluate_all("cs => cs.map(c => c.getBoundingClientRect().top)")
    assert tops[2] == tops[0] and tops[3] > tops[2]

    chips.nth(1).hover()
    assert tooltip_lines(views) == ["·cat", "position 1 · id 3797", "x", "surprise (bits): 2.50"]
    assert events(views, "hover")[-1] == [1, {"text": " cat", "id": 3797}]
    chips.nth(3).click()
    assert events(views, "select") == [[3, {"text": "\t", "id": 197}]]
    assert chips.nth(3).get_attribute("aria-selected") == "true"
    assert page.locator('.lw-chip[aria-selected="true"]').count() == 1

    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert events(views, "select")[-1] == [5, {"text": "\u200b", "id": 50256}]
    assert page.evaluate("window.view.selected") == 5
    assert page.evaluate("document.activeElement.dataset.index") == "5"
    check_exports(views, ["·cat", "↵", "⟨U+200B⟩", "surprise (bits)"])


def test_heatmap_hover_value_and_cell_colours_follow_the_scale(views):
    rows, cols = 5, 7
    values = [[(r * cols + c) / (rows * cols - 1) for c in range(cols)] for r in range(rows)]
    values[2][3] = None
    data = {"values": values, "rowLabels": ["a", " b", "c\n", "d", "e"], "colLabels": [f"k{c}" for c in range(cols)]}
    options = {
        "title": "Pattern",
        "rowTitle": "query",
        "colTitle": "key",
        "tokenLabels": True,
        "format": ".3f",
        "scale": {"label": "weight"},
    }
    mount(views, "heatmap.js", "heatmap", data, options)
    page = views.page

    def centre(r, c):
        box = page.evaluate("([r, c]) => window.view.cellBox(r, c)", [r, c])
        return box["x"] + box["size"] / 2, box["y"] + box["size"] / 2

    assert pixel(views, ".lw-cells", *centre(0, 0)) == VIRIDIS_ENDS[0]
    assert pixel(views, ".lw-cells", *centre(4, 6)) == VIRIDIS_ENDS[1]
    assert pixel(views, ".lw-cells", *centre(2, 3)) == (238, 240, 243)  # missing
    for r, c in [(1, 2), (3, 5), (4, 0)]:
        expected = tuple(page.evaluate("(v) => window.view.scale.rgba(v)", values[r][c]))
        assert pixel(views, ".lw-cells", *centre(r, c)) == expected
    legend_ends = page.evaluate(
        "() => { const s = [...document.querySelectorAll('.lw-legend stop')]; return [s[0], s.at(-1)].map(x => x.getAttribute('stop-color')); }"
    )
    assert legend_ends == ["rgb({}, {}, {})".format(*VIRIDIS_ENDS[0]), "rgb({}, {}, {})".format(*VIRIDIS_ENDS[1])]

    box = page.locator(".lw-cells").bounding_box()
    x, y = centre(1, 4)
    page.mouse.move(box["x"] + x, box["y"] + y)
    assert tooltip_lines(views) == ["query ·b", "key k4", f"weight: {values[1][4]:.3f}"]
    page.mouse.click(box["x"] + x, box["y"] + y)
    picked = events(views, "select")[-1][0]
    assert (picked["row"], picked["col"], picked["rowLabel"], picked["colLabel"]) == (1, 4, "·b", "k4")
    assert picked["value"] == pytest.approx(values[1][4])
    assert page.locator(".lw-selection").get_attribute("visibility") == "visible"
    page.mouse.move(0, 0)
    page.locator(".lw-cells").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    assert tooltip_lines(views)[:2] == ["query c↵", "key k5"]
    page.keyboard.press("Enter")
    assert (events(views, "select")[-1][0]["row"], events(views, "select")[-1][0]["col"]) == (2, 5)
    assert page.locator("svg.lw-frame text").all_text_contents()[:5] == ["a", "·b", "c↵", "d", "e"]
    check_exports(views, ["a", "·b", "k6", "query", "key", "weight"])


def test_diverging_heatmap_is_symmetric_about_zero(views):
    mount(views, "heatmap.js", "heatmap", {"values": [[-2.0, 0.0, 1.0]]}, {"scale": {"kind": "diverging"}})
    page = views.page
    assert page.evaluate("window.view.scale.domain") == [-2, 0, 2]
    assert pixel(views, ".lw-cells", *[page.evaluate("window.view.cellBox(0, 0).size") / 2] * 2) == RDBU_BLUE_END
    near_white = pixel(views, ".lw-cells", page.evaluate("window.view.cellBox(0, 1).x") + 2, 2)
    assert min(near_white) > 230


def test_small_multiples_share_one_scale_and_report_the_panel(views):
    panels = [
        {"title": "L0 H0", "values": [[0.0, 0.5], [0.25, 1.0]]},
        {"title": "L0 H1", "values": [[4.0, 0.5], [2.0, 3.0]]},
    ]
    mount(
        views,
        "small-multiples.js",
        "smallMultiples",
        {"panels": panels},
        {"cellSize": 20, "columns": 2, "scale": {"label": "score"}},
    )
    page = views.page
    assert page.evaluate("window.view.scale.domain") == [0, 4]
    assert page.locator(".lw-legend").count() == 1
    canvases = page.locator(".lw-cells")
    assert canvases.count() == 2
    # The same value (0.5) is the same colour in both panels, and 4.0 is the scale's top.
    assert pixel(views, ".lw-panel[data-panel='0'] .lw-cells", 30, 10) == pixel(
        views, ".lw-panel[data-panel='1'] .lw-cells", 30, 10
    )
    assert pixel(views, ".lw-panel[data-panel='1'] .lw-cells", 10, 10) == VIRIDIS_ENDS[1]
    assert pixel(views, ".lw-panel[data-panel='0'] .lw-cells", 10, 10) == VIRIDIS_ENDS[0]
    box = canvases.nth(1).bounding_box()
    page.mouse.move(box["x"] + 30, box["y"] + 30)
    assert tooltip_lines(views)[-1] == "score: 3"
    page.mouse.click(box["x"] + 30, box["y"] + 30)
    picked = events(views, "select")[-1][0]
    assert (picked["panel"], picked["row"], picked["col"], picked["value"]) == (1, 1, 1, 3)
    check_exports(views, ["L0 H0", "L0 H1", "score"])


def test_panels_from_a_layers_by_heads_tensor(views):
    titles = views.page.evaluate(
        """async () => {
          const { panelsFromTensor } = await import("/static/js/views/small-multiples.js");
          const panels = panelsFromTensor({ shape: [2, 3, 2, 2], data: Float32Array.from({ length: 24 }, (_, i) => i) });
          return panels.map((p) => [p.title, Array.from(p.values.data)]);
        }"""
    )
    assert [t for t, _ in titles] == ["L0 H0", "L0 H1", "L0 H2", "L1 H0", "L1 H1", "L1 H2"]
    assert titles[4][1] == [16, 17, 18, 19]


def test_bar_chart_lengths_labels_hover_and_select(views):
    bars = [{"label": " the", "value": 0.4, "highlight": True}, {"label": "\n", "value": 0.2}, {"label": " a", "value": 0.1}]
    options = {"title": "Next token", "xLabel": "probability", "format": ".1%", "domain": [0, 1], "tokenLabels": True}
    mount(views, "bar-chart.js", "barChart", {"bars": bars}, options)
    page = views.page
    widths = page.locator(".lw-bar-rect").evaluate_all("rs => rs.map(r => r.getBBox().width)")
    assert widths[0] == pytest.approx(2 * widths[1], rel=1e-6) and widths[1] == pytest.approx(2 * widths[2], rel=1e-6)
    fills = page.locator(".lw-bar-rect").evaluate_all("rs => rs.map(r => r.getAttribute('fill'))")
    assert fills[0] != fills[1] == fills[2]
    labels = page.locator(".lw-bar text").all_text_contents()
    assert labels == ["·the", "40.0%", "↵", "20.0%", "·a", "10.0%"]
    page.locator(".lw-bar").nth(1).hover()
    assert tooltip_lines(views) == ["↵", "probability: 20.0%"]
    page.locator(".lw-bar").nth(2).click()
    assert events(views, "select")[-1][0] == 2
    page.locator(".lw-bar").nth(0).focus()
    page.keyboard.press("Enter")
    assert events(views, "select")[-1][0] == 0
    check_exports(views, ["·the", "40.0%", "probability"])


def test_line_chart_hover_shows_every_series_at_the_nearest_step(views):
    steps = list(range(0, 100, 10))
    data = {
        "series": [
            {"name": "train", "x": steps, "y": [1 / (s + 1) for s in steps]},
            {"name": "val", "x": steps, "y": [2 / (s + 1) for s in steps]},
        ]
    }
    mount(views, "line-chart.js", "lineChart", data, {"xLabel": "step", "yLabel": "loss", "format": ".4f"})
    page = views.page
    hit = page.locator(".lw-hit").bounding_box()
    page.mouse.move(hit["x"] + hit["width"] * 0.42, hit["y"] + hit["height"] / 2)  # step 37.8: nearest is 40
    assert tooltip_lines(views) == ["step 40", f"train: {1 / 41:.4f}", f"val: {2 / 41:.4f}"]
    assert events(views, "hover")[-1][0] == {"series": 0, "index": 4, "x": 40, "y": pytest.approx(1 / 41)}
    check_exports(views, ["train", "val", "step", "loss"])


def test_a_notice_says_when_a_view_was_thinned(views):
    mount(views, "heatmap.js", "heatmap", {"values": [[1.0]]}, {"notice": "thinned to fit: 64 of 512 positions"})
    notice = views.page.locator(".lw-notice")
    assert notice.is_visible() and notice.inner_text() == "thinned to fit: 64 of 512 positions"
    views.page.evaluate("window.view.setNotice('')")
    assert not notice.is_visible()


def test_every_view_hands_back_the_same_handle(views):
    """update keeps or replaces the notice and redraws the new data (the token strip, heatmap and small
    multiples drop a selection it no longer has); exports, header defaults and destroy alike in all five."""
    report = views.page.evaluate(
        """async () => {
          const load = (m) => import(`/static/js/views/${m}`);
          const { tokenStrip } = await load("token-strip.js");
          const { heatmap } = await load("heatmap.js");
          const { smallMultiples } = await load("small-multiples.js");
          const { lineChart } = await load("line-chart.js");
          const { barChart } = await load("bar-chart.js");
          const tokens = (n) => ({ tokens: Array.from({ length: n }, (_, i) => ({ text: `t${i}`, id: i })) });
          const matrix = (n) => ({ values: Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => r + c)) });
          const cases = {
            tokenStrip: [tokenStrip, tokens(3), tokens(1), (v) => v.select(2, { notify: false }), (j) => j.tokens.length],
            heatmap: [heatmap, matrix(3), matrix(1), (v) => v.select(2, 2, { notify: false }), (j) => j.values.length],
            smallMultiples: [smallMultiples, { panels: [{ title: "a", ...matrix(2) }, { title: "b", ...matrix(2) }] },
              { panels: [{ title: "a", ...matrix(2) }] }, (v) => v.select(1, 0, 0, { notify: false }), (j) => j.panels.length],
            lineChart: [lineChart, { series: [{ name: "s", y: [1, 2, 3] }] }, { series: [{ name: "s", y: [5] }] }, null, (j) => j.series[0].y.length],
            barChart: [barChart, { bars: [{ label: "a", value: 1 }, { label: "b", value: 2 }] }, { bars: [{ label: "a", value: 1 }] },
              null, (j) => j.bars.length],
          };
          const pngWidth = async (blob) => (await createImageBitmap(blob)).width;
          const host = document.getElementById("host");
          const out = {};
          for (const [name, [make, first, second, select, count]] of Object.entries(cases)) {
            const view = make(host, first, { notice: "first" });
            const notice = () => { const n = host.querySelector(".lw-notice"); return n.hidden ? null : n.textContent; };
            const r = { element: view.element === host.firstElementChild, label: host.querySelector(".lw-export").getAttribute("aria-label") };
            const css = () => [...document.querySelectorAll('link[rel="stylesheet"]')].filter((l) => l.href.endsWith("/css/views.css"));
            if (select) { select(view); r.selectedBefore = view.selected !== null; }
            view.update(second, {});
            r.kept = notice();
            r.count = count(view.exportJson());
            if (select) r.selectedAfter = view.selected;
            view.update(second, { notice: "second" });
            r.replaced = notice();
            view.setNotice("");
            r.cleared = notice();
            r.svg = view.exportSvg().startsWith("<?xml");
            const [one, two] = [await view.exportPng(1), await view.exportPng()];
            r.png = [one.type, await pngWidth(two) / await pngWidth(one)];  // exportPng waits for views.css itself
            await view.ready;
            r.styled = css().length === 1 && css()[0].sheet !== null;
            view.destroy();
            r.destroyed = host.childElementCount;
            out[name] = r;
          }
          return out;
        }"""
    )
    defaults = {
        "tokenStrip": "Tokens",
        "heatmap": "heatmap",
        "smallMultiples": "small-multiples",
        "lineChart": "line-chart",
        "barChart": "bar-chart",
    }
    for name, r in report.items():
        assert r["element"] and r["label"] == f"Export {defaults[name]} as SVG", name
        assert (r["kept"], r["replaced"], r["cleared"]) == ("first", "second", None), name
        assert r["count"] == 1 and r["svg"] and r["png"] == ["image/png", pytest.approx(2, rel=0.02)], name
        assert r["destroyed"] == 0 and r["styled"], name
        if "selectedBefore" in r:
            assert r["selectedBefore"] and r["selectedAfter"] is None, name
    mount(views, "bar-chart.js", "barChart", {"bars": [{"label": "a", "value": 1}]}, {"title": "Top k", "exportName": "top-k"})
    assert views.page.locator(".lw-export").first.get_attribute("aria-label") == "Export Top k as SVG"
    with views.page.expect_download() as info:
        views.page.click('button.lw-export[data-export="json"]')
    assert info.value.suggested_filename == "top-k.json"


def test_views_refuse_bad_data_with_a_reason(views):
    messages = views.page.evaluate(
        """async () => {
          const { tokenStrip } = await import("/static/js/views/token-strip.js");
          const { heatmap } = await import("/static/js/views/heatmap.js");
          const host = document.getElementById("host");
          const attempts = [
            () => tokenStrip(host, { tokens: [{ text: "a", id: 1 }], values: [1, 2] }),
            () => heatmap(host, { values: [[1, 2], [3]] }),
            () => heatmap(host, { values: [[1]] }, { scale: { scheme: "Nope" } }),
          ];
          return attempts.map((f) => { try { f(); return "no error"; } catch (e) { return e.message; } });
        }"""
    )
    assert "values has 2 entries for 1 tokens" in messages[0]
    assert "same length" in messages[1]
    assert 'unknown colour scheme "Nope"' in messages[2]


def test_tensors_decode_in_the_browser_to_exactly_what_python_decodes(views):
    rng = np.random.default_rng(0)
    specials = [0.0, -0.0, np.inf, -np.inf, np.nan, 2.0**-24, 3 * 2.0**-24, 2.0**-14, 65504.0, -1.5, 1 / 3]
    cases = [
        encode_tensor(np.array(specials), "float16"),
        encode_tensor(rng.normal(size=(3, 5, 7)) * 100, "float16"),
        encode_tensor(rng.normal(size=(4, 9)) * 3 - 1, "uint8"),
        encode_tensor(np.full((2, 2), 0.7), "uint8"),
        encode_tensor(np.zeros((0, 3)), "float16"),
        encode_tensor(np.array([np.pi, -1e-40, 3.4e38, np.inf, np.nan], dtype=np.float32), "float32"),
    ]
    decoded = views.page.evaluate(
        """async (cases) => {
          const { decodeTensor } = await import("/static/js/views/tensor.js");
          return cases.map((c) => { const t = decodeTensor(c); return { shape: t.shape, bits: Array.from(new Uint32Array(t.data.buffer)) }; });
        }""",
        cases,
    )
    for case, got in zip(cases, decoded, strict=True):
        want = decode_tensor(case)
        assert got["shape"] == list(want.shape)
        bits = np.array(got["bits"], dtype=np.uint32).view(np.float32)
        flat = want.reshape(-1)
        assert np.array_equal(np.isnan(bits), np.isnan(flat))
        finite = ~np.isnan(flat)
        assert np.array_equal(bits[finite].view(np.uint32), flat[finite].view(np.uint32))  # bit for bit, -0 included
    ids = {"int32": np.array([-(2**31), -1, 0, 50256, 2**31 - 1]), "uint16": np.array([0, 1, 262, 65535])}
    got = views.page.evaluate(
        """async (cases) => {
          const { decodeTensor } = await import("/static/js/views/tensor.js");
          return cases.map((c) => { const t = decodeTensor(c); return [t.data.constructor.name, Array.from(t.data)]; });
        }""",
        [encode_tensor(v, dtype) for dtype, v in ids.items()],
    )
    assert got == [["Int32Array", ids["int32"].tolist()], ["Uint16Array", ids["uint16"].tolist()]]
    error = views.page.evaluate(
        """async () => {
          const { decodeTensor } = await import("/static/js/views/tensor.js");
          try { decodeTensor({ dtype: "float16", shape: [3], data: "AAAA" }); } catch (e) { return e.message; }
        }"""
    )
    assert error == "tensor data has 3 bytes; shape [3] of float16 needs 6"
