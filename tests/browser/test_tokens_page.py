"""The Tokens and predictions page in chromium, on both bundled language models and on a Hugging Face
GPT-2 with random weights built here: what it shows is the tokenizer's tokens and the engine's numbers."""

from __future__ import annotations

import time
from urllib.parse import quote, urlsplit

import pytest

from llm_workings.lab.config import LabConfig
from llm_workings.lab.models.cache import ModelCache
from llm_workings.lab.prompts import token_ids
from llm_workings.lab.server import serve_in_thread
from llm_workings.lab.tokens import compute

pytestmark = pytest.mark.usefixtures("one_thread")

TEXT = "It is a truth universally acknowledged, that a single man"
CORPUS = (
    "It is a truth universally acknowledged, that a single man in possession of a good fortune must be in want of a wife. " * 3
)


def build_gpt2(path):
    """A GPT-2 checkpoint directory: random weights, a byte-level BPE tokenizer trained here, and
    <|endoftext|> as its BOS and EOS, so the page shows a BOS token first as it does for GPT-2."""
    import torch
    import transformers

    from llm_workings.tokenizers import BPETokenizer

    hf_tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=BPETokenizer.train(CORPUS, vocab_size=300).to_hf())
    hf_tokenizer.add_special_tokens({"bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>"})
    config = transformers.GPT2Config(
        n_embd=64,
        n_layer=2,
        n_head=4,
        n_positions=128,
        vocab_size=len(hf_tokenizer) + 20,  # rows no token spells, as padded vocabularies have
        bos_token_id=hf_tokenizer.bos_token_id,
        eos_token_id=hf_tokenizer.eos_token_id,
        initializer_range=0.2,
    )
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).eval().save_pretrained(path)
    hf_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    config = LabConfig(models=(str(build_gpt2(tmp_path_factory.mktemp("ckpt") / "gpt2-random")),))
    server = serve_in_thread(config)
    yield server, ModelCache(config)
    server.shutdown()


MODELS = ["shakespeare-char", "austen-bpe", "cli.gpt2-random"]


class Tab:
    def __init__(self, browser, base):
        self.context = browser.new_context(viewport={"width": 1440, "height": 900})
        self.page = self.context.new_page()
        self.base = base
        self.requests, self.errors = [], []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def open(self, query: str) -> Tab:
        self.page.goto(self.base + "/tokens" + query)
        self.wait("document.body.dataset.ready === 'true'")
        self.settle()
        return self

    def wait(self, expression: str, timeout: float = 60.0):
        end = time.monotonic() + timeout
        while not (value := self.page.evaluate(expression)):
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout}s waiting for {expression}")
            time.sleep(0.03)
        return value

    def settle(self) -> None:
        self.wait("window.tokensPage && window.tokensPage.pending === 0")

    def check_clean(self) -> None:
        assert self.errors == []
        hosts = {urlsplit(u).hostname for u in self.requests if not u.startswith(("data:", "blob:"))}
        assert hosts == {"127.0.0.1"}, hosts

    def chips(self) -> list[dict]:
        return self.page.evaluate(
            """() => [...document.querySelectorAll('#strip .lw-chip')].map((c) => ({
                id: Number(c.dataset.id), text: c.querySelector('.lw-chip-text').textContent,
                label: c.querySelector('.lw-chip-label')?.textContent ?? '' }))"""
        )

    def bars(self, scope: str) -> list[tuple[str, str]]:
        labels = self.page.evaluate(
            f"() => [...document.querySelectorAll('{scope} .lw-bar')].map((g) => g.getAttribute('aria-label'))"
        )
        return [tuple(label.rsplit(": ", 1)) for label in labels]


@pytest.fixture
def tab(browser, lab):
    tabs = []

    def make() -> Tab:
        tabs.append(Tab(browser, lab[0].url))
        return tabs[-1]

    yield make
    for t in tabs:
        t.context.close()


def engine(lab, model_id: str, text: str, k: int = 10):
    with lab[1].hold(model_id) as held:
        ids = token_ids(held.model, held.tokenizer, text)
        return held, ids, compute.predict(held.model, ids, k)


def check_probability(shown: str, value: float) -> None:
    """`shown` is `value` as the page prints a probability (static/js/tokens/format.js), to that precision."""
    if shown.endswith("%"):
        number, half_unit = float(shown[:-1]) / 100, 0.005 / 100
    else:
        number, half_unit = float(shown), 0.005 * 10 ** int(shown.split("e")[1])
    assert abs(number - value) <= half_unit * (1 + 1e-6), f"{value} shown as {shown!r}"


def visible(text: str) -> str:
    return text.replace(" ", "·").replace("\n", "↵")


@pytest.mark.parametrize("model_id", MODELS)
def test_the_tokens_and_probabilities_shown_are_the_tokenizers_and_the_engines(tab, lab, model_id):
    t = tab().open(f"?model={model_id}&text={quote(TEXT)}")
    held, ids, pred = engine(lab, model_id, TEXT)
    chips = t.chips()
    assert [c["id"] for c in chips] == ids
    assert [c["text"] for c in chips] == [visible(s) for s in held.tokenizer.token_text(ids)]
    assert (ids[0] == held.tokenizer.inner.bos_token_id) == (model_id == "cli.gpt2-random")
    assert chips[0]["label"] == ""
    for chip, p in zip(chips[1:], pred.next_prob.tolist(), strict=True):
        check_probability(chip["label"], p)

    j = len(ids) // 2
    t.page.click(f"#strip .lw-chip[data-index='{j}']")
    t.settle()
    check_probability(t.page.inner_text("#actual-prob"), float(pred.next_prob[j - 1]))
    assert t.page.inner_text("#actual-loss") == f"{float(pred.next_loss[j - 1]):.3f} nats"
    assert t.page.inner_text("#actual-bits") == f"{float(pred.surprise_bits[j - 1]):.2f} bits"
    bars = t.bars("#topk")
    names = held.tokenizer.token_text(pred.top_ids[j - 1].tolist())
    assert len(bars) == 10
    shown_ids, vocab = t.page.evaluate(
        f"(() => {{ const d = window.tokensPage.data; return [Array.from(d.topIds.subarray({j - 1} * d.k, {j} * d.k)), d.vocab]; }})()"
    )
    assert shown_ids == pred.top_ids[j - 1].tolist() and [vocab[str(i)] for i in shown_ids] == names
    for (_, shown), p in zip(bars, pred.top_probs[j - 1].tolist(), strict=True):
        assert abs(float(shown.rstrip("%")) / 100 - p) <= 0.00005 * (1 + 1e-6)
    assert f"select={j}" in t.page.url
    t.check_clean()


@pytest.mark.parametrize("model_id", MODELS)
def test_the_sampling_panel_shows_the_engines_reshaped_distribution(tab, lab, model_id):
    t = tab().open(f"?model={model_id}&text={quote(TEXT)}&temperature=0.5&top_p=0.9")
    held, ids, _ = engine(lab, model_id, TEXT)
    logits = compute.logits_after(held.model, ids)
    expected = compute.reshape(logits, 0.5, None, 0.9, k=10)
    after = t.bars("#after")
    assert len(after) == 10
    for (_, shown), p in zip(after, expected.after.tolist(), strict=True):
        assert abs(float(shown.rstrip("%")) / 100 - p) <= 0.00005 * (1 + 1e-6)
    assert t.page.inner_text("#kept").startswith(f"{expected.kept:,} of {held.model.cfg.d_vocab:,} tokens")
    t.check_clean()


@pytest.mark.parametrize("model_id", MODELS)
def test_a_seeded_sample_comes_back_from_its_url(tab, lab, model_id):
    first = tab().open(f"?model={model_id}&text={quote(TEXT)}&temperature=0.9&seed=5&new_tokens=12")
    first.page.click("#sample")
    first.wait("!!document.getElementById('sampled-text')")
    first.settle()
    sampled, url = first.page.inner_text("#sampled-text"), first.page.url
    assert "sample=1" in url and "seed=5" in url
    held, ids, _ = engine(lab, model_id, TEXT)
    eos = getattr(held.model.tokenizer, "eos_token_id", None)
    new = compute.continue_text(held.model, ids, 0.9, None, None, seed=5, max_new_tokens=12, eos_token_id=eos)
    assert first.page.evaluate("window.tokensPage.continuation.ids") == new
    again = tab().open(urlsplit(url)._replace(scheme="", netloc="", path="").geturl())
    again.wait("!!document.getElementById('sampled-text')")
    assert again.page.inner_text("#sampled-text") == sampled
    first.check_clean()
    again.check_clean()


def test_a_bad_text_is_refused_by_name_and_the_page_recovers(tab, lab):
    t = tab().open("?model=shakespeare-char&text=caf%C3%A9")
    assert "outside this tokenizer's vocabulary" in t.page.inner_text("#banner")
    assert t.page.evaluate("document.getElementById('text').classList.contains('invalid')")
    t.page.fill("#text", "cafe")
    t.wait("document.getElementById('banner').hidden")
    t.settle()
    assert [c["id"] for c in t.chips()] == engine(lab, "shakespeare-char", "cafe")[1]
    assert [e for e in t.errors if "400" not in e] == []  # the refused request itself is logged by chromium


def test_a_checkpoint_sets_the_page_then_reveals_and_a_try_link_samples(tab, lab):
    t = tab().open("")
    checkpoint = "#checkpoint-temperature"
    t.page.click(f"{checkpoint} input[data-correct]")
    t.page.click(f"{checkpoint} button.run")
    t.wait(f"!document.querySelector('{checkpoint} .reveal').hidden")
    t.settle()
    assert "model=austen-bpe" in t.page.url and "temperature=0.5" in t.page.url
    assert "right" in t.page.get_attribute(f"{checkpoint} .verdict", "class")
    held, ids, _ = engine(lab, "austen-bpe", "It is a truth universally acknowledged")
    expected = compute.reshape(compute.logits_after(held.model, ids), 0.5, None, None, k=10)
    for (_, shown), p in zip(t.bars("#after"), expected.after.tolist(), strict=True):
        assert abs(float(shown.rstrip("%")) / 100 - p) <= 0.00005 * (1 + 1e-6)

    t.page.click("a.try[href*='temperature=0&']")
    t.wait("!!document.getElementById('sampled-text')")
    t.settle()
    assert "model=shakespeare-char" in t.page.url and "sample=1" in t.page.url
    greedy = t.page.inner_text("#sampled-text")
    t.page.click("#new-seed")
    t.wait("!!document.getElementById('sampled-text') && window.tokensPage.pending === 0 && location.search.includes('seed=')")
    t.settle()
    assert t.page.inner_text("#sampled-text") == greedy  # temperature 0: no draw is random
    t.check_clean()
