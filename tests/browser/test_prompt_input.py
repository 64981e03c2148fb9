"""The shared prompt box (static/js/prompt-input.js) in chromium: it shows what the server will read,
on the bundled models and on random GPT-2, NeoX and Llama checkpoints."""

from __future__ import annotations

import pytest
from browser_helpers import is_local

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("one_thread")]

MOUNT = """async ([model, value]) => {
  const { promptInput } = await import("/static/js/prompt-input.js");
  document.body.replaceChildren();
  const host = document.createElement("div");
  host.id = "host";
  document.body.append(host);
  window.__changes = [];
  window.__box = promptInput(host, { model, value, debounceMs: 10, onChange: (p, t) => window.__changes.push([p, t]) });
  await window.__box.ready;
}"""
CHIPS = "() => [...document.querySelectorAll('#host .lw-chip')].map((c) => Number(c.dataset.id))"


def served(tab, model, prompt):
    response = tab.page.request.post(tab.base + "/api/prompts/tokenize", data={"model": model, "prompt": prompt})
    return response.json()


@pytest.mark.parametrize("model", ["austen-bpe", "cli.gpt2-random", "cli.neox-random", "cli.llama-random"])
def test_the_box_shows_the_tokens_the_server_reads(checkpoint_tab, model):
    tab = checkpoint_tab.open(path="/")
    tab.page.evaluate(MOUNT, [model, {"text": "It is a truth"}])
    out = served(tab, model, {"text": "It is a truth"})
    assert tab.page.evaluate(CHIPS) == out["ids"]
    assert tab.page.evaluate("window.__box.tokenized.ids") == out["ids"]
    tab.page.fill("#host textarea", "a single man")
    tab.wait("window.__changes.length === 1")
    assert tab.page.evaluate(CHIPS) == served(tab, model, {"text": "a single man"})["ids"]
    assert all(is_local(url) for url in tab.requests)
    assert tab.errors == []


def test_repeated_random_tokens_switch_to_ids_and_a_bad_prompt_is_named(checkpoint_tab):
    tab = checkpoint_tab.open(path="/")
    tab.page.evaluate(MOUNT, ["induction-2l", {"ids": [1, 2, 3]}])
    assert tab.page.evaluate(CHIPS) == [1, 2, 3]
    assert tab.page.is_disabled("#host [data-mode=text]")  # induction-2l reads no text
    tab.page.click("#host .lw-prompt-repeat")
    tab.wait("window.__changes.length === 1")
    ids = tab.page.evaluate(CHIPS)
    assert len(ids) == 40 and ids[:20] == ids[20:]
    assert tab.page.input_value("#host textarea") == ", ".join(map(str, ids))
    tab.page.fill("#host textarea", "1, 2, 999")
    tab.wait("document.querySelector('#host .lw-prompt-error').textContent !== ''")
    assert "token id 999 is outside induction-2l's vocabulary" in tab.text("#host .lw-prompt-error")
    assert all(is_local(url) for url in tab.requests)
