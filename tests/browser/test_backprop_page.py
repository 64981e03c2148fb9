"""The Backprop page as a learner uses it: play, step, step back, share, and get told what went wrong."""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit

import pytest
from browser_helpers import parse_shown

pytestmark = pytest.mark.browser


def shown_metric(tab, name: str) -> float:
    return parse_shown(tab.text(f'#metrics [data-key="metrics.{name}"]'))


def test_play_makes_the_loss_fall(tab):
    tab.open()
    start = tab.state()
    assert start["step"] == 0
    first_loss = shown_metric(tab, "train_loss")
    assert first_loss == pytest.approx(start["metrics"]["train_loss"], rel=1e-3)

    tab.page.select_option("#speed", "5")
    tab.page.click("#play")
    tab.wait("window.__lab.playing")
    tab.wait("window.__lab.state.step >= 150")
    tab.page.click("#play")  # pause
    tab.idle()

    end = tab.state()
    assert end["step"] >= 150
    assert tab.text("#step") == str(end["step"])
    assert end["metrics"]["train_loss"] < 0.8 * start["metrics"]["train_loss"]
    assert shown_metric(tab, "train_loss") == pytest.approx(end["metrics"]["train_loss"], rel=1e-3)
    assert shown_metric(tab, "train_loss") < 0.8 * first_loss
    train = [v for v in end["curves"]["train"] if v is not None]
    assert train[-1] < 0.8 * train[0]
    assert tab.page.evaluate("window.__lab.frames") > 10


def snapshot(tab) -> dict:
    return {
        "computation": tab.numbers("#computation"),
        "examples": tab.numbers("#examples"),
        "metrics": tab.numbers("#metrics"),
        "xor": tab.numbers("#xor"),
        "step": tab.text("#step"),
        "weights": tab.state()["network"]["weights"],
        "biases": tab.state()["network"]["biases"],
    }


def test_step_back_restores_exactly_the_earlier_numbers(tab):
    tab.open()
    tab.step_forward(4)
    before = snapshot(tab)
    assert before["step"] == "4"
    assert len(before["computation"]) > 50

    tab.step_forward()
    after = snapshot(tab)
    assert after["step"] == "5"
    assert after["computation"] != before["computation"]
    assert after["weights"] != before["weights"]

    tab.click("#back")
    assert snapshot(tab) == before  # DOM text, data-values and the weights themselves


def test_a_shared_url_replays_the_run_identically(tab, new_tab):
    tab.open("?dataset=circle&samples=100&batch_size=10&seed=7")
    tab.step_forward(5)
    box = "#control-learning_rate"
    tab.page.fill(box, "0.2")
    tab.page.press(box, "Enter")
    tab.idle()
    tab.wait("window.__lab.state.changes.length === 1")
    tab.page.select_option("#speed", "2")
    tab.page.click("#play")
    tab.wait("window.__lab.state.step >= 12")
    tab.page.click("#play")
    tab.idle()
    tab.click('#examples button[data-example="2"]')
    original = tab.state()
    assert original["trace"]["example"] == 2
    assert original["changes"] == [[5, "learning_rate", 0.2]]
    assert original["settings"]["learning_rate"] == 0.2
    url = tab.wait(f"location.search.includes('step={original['step']}') && location.href")
    assert "changes=5:learning_rate:0.2" in url and "learning_rate=0.5" in url and "seed=7" in url and "example=2" in url

    fresh = new_tab().open("?" + urlsplit(url).query)
    replay = fresh.state()
    assert replay["run_id"] != original["run_id"]
    for field in ("step", "changes", "network", "curves", "metrics", "trace"):
        assert replay[field] == original[field], field
    assert fresh.page.input_value(box) == "0.2"
    assert fresh.numbers("#computation") == tab.numbers("#computation")


def test_two_tabs_train_independently(new_tab):
    a = new_tab().open()
    b = new_tab().open()
    a.step_forward(5)
    b.step_forward(2)
    sa, sb = a.state(), b.state()
    assert (sa["step"], sb["step"]) == (5, 2)
    assert sa["run_id"] != sb["run_id"]
    assert "run_id" not in a.page.url and sa["run_id"] not in a.page.url
    a.page.select_option("#speed", "5")
    a.page.click("#play")
    b.step_forward(3)  # while the other tab plays
    a.wait("window.__lab.state.step >= 40")
    a.page.click("#play")
    a.idle()
    assert b.state()["step"] == 5
    assert b.state()["network"] == sa["network"]  # same settings and seed, same step: same weights


def api_error(base: str, settings: dict, **body) -> dict:
    request = urllib.request.Request(
        base + "/api/backprop/runs",
        data=json.dumps({"settings": settings, **body}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as e:
        return json.loads(e.read())
    raise AssertionError(f"the server accepted {settings}")


@pytest.mark.parametrize(
    ("query", "settings", "field"),
    [
        ("?learning_rate=fast", {"learning_rate": "fast"}, "learning_rate"),
        ("?hidden=4,99", {"hidden": [4, 99]}, "hidden"),
        ("?dataset=mnist", {"dataset": "mnist"}, "dataset"),
        ("?temperature=2", {"temperature": "2"}, "temperature"),
        ("?step=ten", None, "step"),
    ],
)
def test_an_invalid_url_parameter_shows_the_servers_message(tab, query, settings, field):
    expected = api_error(tab.base, settings) if settings is not None else api_error(tab.base, {}, step="ten")
    assert expected["field"] == field
    tab.open(query)
    banner = tab.page.locator("#banner")
    assert banner.is_visible()
    text = banner.inner_text()
    assert expected["error"] in text
    assert field in text
    if tab.page.locator(f"#control-{field}").count():
        assert tab.page.locator(f'.control[data-name="{field}"]').get_attribute("class").split().count("invalid") == 1
    tab.page.click("#banner button")  # "Start with the defaults"
    tab.wait("window.__lab.state !== null && window.__lab.state.step === 0")
    tab.idle()
    assert not banner.is_visible()


def test_divergence_is_shown_and_stops_play(tab):
    tab.open("?output=linear&loss=mse&learning_rate=5&seed=1")
    tab.page.click("#play")
    tab.wait("window.__lab.state.error !== null")
    tab.idle()
    state = tab.state()
    assert not tab.page.evaluate("window.__lab.playing")
    banner = tab.page.locator("#banner")
    assert banner.is_visible()
    assert state["error"]["message"] in banner.inner_text()
    assert "diverged" in banner.inner_text()
    assert state["step"] < 20


def test_a_checkpoint_asks_first_then_runs_and_explains(tab):
    tab.open()
    cp = tab.page.locator("#checkpoint-no-hidden")
    run = cp.locator("button.run")
    assert run.is_disabled()
    assert not cp.locator(".reveal").is_visible()
    tab.page.select_option("#speed", "25")
    cp.locator("label", has_text="Three of the four").click()
    run.click()
    tab.wait("document.querySelector('#checkpoint-no-hidden .reveal').hidden === false")
    state = tab.state()
    assert state["step"] == 300
    assert state["network"]["sizes"] == [2, 1]
    assert round(state["metrics"]["train_loss"], 4) == 0.6931
    assert "Here is what happened" in cp.locator(".verdict").inner_text()
    assert "hidden=&" in tab.page.url or tab.page.url.split("hidden=")[1].startswith("&")


def test_try_this_links_set_the_controls_through_the_url(tab):
    tab.open()
    tab.page.click("a.try[href^='?hidden=16&']")
    tab.wait("window.__lab.state.network.sizes.join() === '2,16,1'")
    tab.idle()
    assert "hidden=16" in tab.page.url
    assert tab.text("#layers-count") == "1 hidden layer"
    tab.step_forward()
    # A 16-wide layer is followed one neuron at a time; clicking a neuron picks it.
    assert tab.page.locator(".neuron-picker select").count() >= 2
    box = tab.page.locator("#network").bounding_box()
    geo = tab.page.evaluate(
        "(() => { const g = window.__lab.page.network.geo; const u = g.columns[1].units[5]; return [u.x + g.size / 2, u.y + g.size / 2]; })()"
    )
    tab.page.mouse.click(box["x"] + geo[0], box["y"] + geo[1])
    tab.idle()
    keys = {n["key"] for n in tab.numbers("#computation")}
    assert "layers.0.z.5" in keys
    tab.page.go_back()
    tab.wait("window.__lab.state.network.sizes.join() === '2,4,1'")


def test_architecture_buttons_and_export(tab):
    tab.open()
    tab.page.click("#layers-add")
    tab.wait("window.__lab.state.network.sizes.join() === '2,4,4,1'")
    tab.page.click(".arch-column >> nth=1 >> button[aria-label^='Add a neuron']")
    tab.wait("window.__lab.state.network.sizes.join() === '2,5,4,1'")
    tab.idle()
    assert "hidden=5,4" in tab.page.url
    tab.step_forward()
    with tab.page.expect_download() as download:
        tab.page.click("#export")
    exported = json.loads(open(download.value.path()).read())
    assert exported["sizes"] == [2, 5, 4, 1]
    assert exported["weights"] == tab.state()["network"]["weights"]
    assert "MLP.from_dict" in tab.text("#export-python")
    tab.page.click("#export-close")


def test_edge_hover_shows_weight_and_gradient(tab):
    tab.open()
    tab.step_forward(3)
    point = tab.page.evaluate(
        """(() => { const n = window.__lab.page.network; const g = n.geo; const a = g.columns[1].units[2], b = g.columns[2].units[0];
            return [(a.x + g.size + b.x) / 2, (a.y + b.y) / 2 + g.size / 2]; })()"""
    )
    box = tab.page.locator("#network").bounding_box()
    tab.page.mouse.move(box["x"] + point[0], box["y"] + point[1])
    tooltip = tab.page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    state = tab.state()
    values = {n["key"]: float(n["value"]) for n in tab.numbers("#tooltip")}
    assert values["network.weights.1.0.2"] == state["network"]["weights"][1][0][2]
    assert values["trace.layers.1.dL_dW.0.2"] == state["trace"]["layers"][1]["dL_dW"][0][2]
    assert "W₂[0,2]" in tooltip.inner_text()


def test_a_forgotten_run_is_replayed_from_the_url(tab):
    tab.open("?seed=4")
    tab.step_forward(3)
    weights = tab.state()["network"]["weights"]
    old_id = tab.state()["run_id"]
    tab.page.evaluate("(id) => fetch(`/api/backprop/runs/${id}`, {method: 'DELETE'})", old_id)
    tab.page.click("#forward")  # the server answers 404: the page rebuilds the run from its URL
    tab.wait(f"window.__lab.state.run_id !== '{old_id}'")
    tab.idle()
    assert tab.state()["step"] == 3
    assert tab.state()["network"]["weights"] == weights
    assert not tab.page.locator("#banner").is_visible()
    tab.step_forward()
    assert tab.state()["step"] == 4


def test_switching_to_a_smaller_dataset_caps_the_batch_size_and_says_so(tab):
    tab.open("?dataset=spiral&batch_size=32")
    assert tab.state()["settings"]["batch_size"] == 32
    tab.page.select_option("select[name=dataset]", "xor")
    tab.wait("window.__lab.state.settings.dataset === 'xor'")
    tab.idle()
    assert tab.state()["settings"]["batch_size"] == 4
    assert "batch_size=4" in tab.page.url
    assert "more than the 4 training points" in tab.text("#banner")
    tab.step_forward()
    assert tab.state()["trace"]["batch_size"] == 4
    # The notice belongs to that run: the next run clears it.
    tab.click("#reset")
    assert not tab.page.locator("#banner").is_visible()
