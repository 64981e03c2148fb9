"""The Steering page in chromium: what it shows is the steering engine's, the URL brings the view
back, and nothing leaves 127.0.0.1."""

from __future__ import annotations

import pytest
from browser_helpers import check_shown, is_local

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_thread")]

READY = "document.body.dataset.ready === 'true' && window.steeringPage.pending === 0"
SHOWN = """() => ({
  plain: document.getElementById('plain').dataset.text,
  steered: document.getElementById('steered').dataset.text,
  summary: document.getElementById('vector-summary').textContent,
  cells: [...document.querySelectorAll('#sweep-table td')].map((td) => [td.dataset.key, Number(td.dataset.value), td.textContent]),
})"""


def api(tab, path, body):
    return tab.page.request.post(f"{tab.base}/api/steering/{path}", data=body).json()


def opened(tab, query):
    tab.open(query, path="/steering")
    tab.wait(READY, timeout=120)
    return tab.page.evaluate(SHOWN)


def test_the_generations_and_every_sweep_number_are_the_engines_and_the_url_brings_them_back(checkpoint_tab):
    tab = checkpoint_tab
    query = "?model=austen-bpe&coefficient=6&seed=2&new_tokens=16&measure=1"
    shown = opened(tab, query)
    body = {
        "model": "austen-bpe",
        "prompt": {"text": "She walked into the drawing-room, and"},
        "settings": {"coefficient": 6, "seed": 2, "new_tokens": 16},
    }
    out, sweep = api(tab, "generate", body), api(tab, "sweep", body)
    assert (shown["plain"], shown["steered"], shown["summary"]) == (
        out["plain"]["text"],
        out["steered"]["text"],
        out["vector"]["summary"],
    )
    assert len(shown["cells"]) == 5 * 17
    for key, value, text in shown["cells"]:
        name, i = key.split(".")
        assert value == pytest.approx(sweep[name][int(i)], rel=1e-12, abs=1e-15), key
        check_shown(text, float(value))
    assert "coefficient=6" in tab.page.url and "measure=1" in tab.page.url
    again = opened(tab, "?" + tab.page.url.split("?", 1)[1])
    assert again == shown
    assert all(is_local(url) for url in tab.requests)
    assert tab.errors == []


def test_pairs_on_a_random_gpt2_and_a_refusal_named_on_the_page(checkpoint_tab):
    tab = checkpoint_tab
    shown = opened(tab, "?model=cli.gpt2-random&source=pairs&layer=1&pairs=truth+%7C+fortune&text=It+is+a&new_tokens=8")
    body = {
        "model": "cli.gpt2-random",
        "prompt": {"text": "It is a"},
        "settings": {"source": "pairs", "layer": 1, "pairs": "truth | fortune", "new_tokens": 8},
    }
    out = api(tab, "generate", body)
    assert (shown["plain"], shown["steered"]) == (out["plain"]["text"], out["steered"]["text"])
    tab.page.fill("#pairs", "no bar")
    tab.wait("!document.getElementById('banner').hidden && window.steeringPage.pending === 0")
    assert "line 1 of the pairs is not 'positive | negative'" in tab.text("#banner")
    assert all(is_local(url) for url in tab.requests)


def test_a_checkpoint_runs_its_experiment_then_reveals(checkpoint_tab):
    tab = checkpoint_tab
    opened(tab, "?model=austen-bpe")
    tab.page.check("#checkpoint-generated input[data-correct]")
    tab.page.click("#checkpoint-generated button.run")
    tab.wait("!document.querySelector('#checkpoint-generated .reveal').hidden && window.steeringPage.pending === 0", timeout=120)
    ids = tab.page.evaluate(
        "[...document.querySelectorAll('#plain .lw-chip, #steered .lw-chip')].map((c) => c.closest('#plain') ? 'p' + c.dataset.id : 's' + c.dataset.id)"
    )
    plain = [i for i in ids if i[0] == "p"]
    steered = [i for i in ids if i[0] == "s"]
    assert plain[0][1:] == steered[0][1:] and plain != steered
    assert "positions=generated" in tab.page.url
    assert tab.errors == []


def test_an_sae_latent_shows_its_hook_and_hides_the_layer(checkpoint_tab):
    tab = checkpoint_tab
    shown = opened(tab, "?model=austen-bpe&source=sae&latent=276&new_tokens=6")
    body = {
        "model": "austen-bpe",
        "prompt": {"text": "She walked into the drawing-room, and"},
        "settings": {"source": "sae", "latent": 276, "new_tokens": 6},
    }
    out = api(tab, "generate", body)
    assert (shown["summary"], shown["steered"]) == (out["vector"]["summary"], out["steered"]["text"])
    assert "blocks.2.hook_resid_pre" in shown["summary"]
    assert not tab.page.is_visible('.control[data-name="layer"]') and tab.page.is_visible("#sae")
    assert tab.errors == []
