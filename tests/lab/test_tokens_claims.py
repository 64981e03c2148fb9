"""Every checkpoint on the Tokens page, checked against the engine on the bundled language models.

Each test is named after the claim the page reveals; docs/lessons/tokens.md quotes the same answers.
"""

from __future__ import annotations

import json
import re
from html import unescape
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import pytest
import torch

from llm_workings import zoo
from llm_workings.data import load_corpus
from llm_workings.lab.models.tokenizer import text_tokenizer
from llm_workings.lab.prompts import token_ids
from llm_workings.lab.tokens import compute
from llm_workings.transformer.generate import sampling_distribution

pytestmark = pytest.mark.usefixtures("one_thread")

LANGUAGE_MODELS = {"shakespeare-char": "tinyshakespeare", "austen-bpe": "austen"}
TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife."
# the page's try-this link for the repeat checkpoint, with the phrase it repeats
REPEAT_PHRASE = " Mr. Darcy and Miss Bennet"
REPEATED = REPEAT_PHRASE.strip() + "." + REPEAT_PHRASE + "."


@pytest.fixture(scope="module", params=list(LANGUAGE_MODELS))
def lm(request):
    model, tokenizer = zoo.load(request.param)
    return request.param, model.eval(), text_tokenizer(tokenizer)


def test_halving_the_temperature_gives_probability_to_the_already_likely_tokens(lm):
    """At every position the top token gains, the least likely loses, and the tokens that gain are
    exactly a run of the likeliest ones."""
    _, model, tok = lm
    with torch.no_grad():
        rows, _ = compute.windowed_logits(model, token_ids(model, tok, TEXT))
    for logits in rows:
        before = sampling_distribution(logits, 1.0, None, None)
        after = sampling_distribution(logits, 0.5, None, None)
        order = before.argsort(descending=True)
        gained = (after > before)[order]
        assert gained[0] and not gained[-1]
        first_loser = int((~gained).nonzero()[0])
        assert not gained[first_loser:].any()  # no token below a loser gains


def test_the_first_prediction_has_the_least_context_and_the_highest_loss_on_average(lm):
    """Loss falls as the context grows: the prediction made from one token is the worst on average."""
    name, model, tok = lm
    corpus = load_corpus(LANGUAGE_MODELS[name]).val
    n_ctx = model.cfg.n_ctx
    ids = tok.encode(corpus[:100_000])
    step = (len(ids) - n_ctx) // 256
    windows = torch.tensor([ids[s : s + n_ctx] for s in range(0, 256 * step, step)])
    with torch.no_grad():
        losses = model(windows, return_type="loss", loss_per_token=True)  # [windows, n_ctx - 1]
    by_position = losses.mean(0)
    assert by_position[0] == by_position.max()
    assert by_position[0] > 1.1 * by_position[n_ctx // 2 :].mean()


def test_a_repeated_phrase_is_less_surprising_the_second_time_only_for_a_model_that_learned_to_copy(lm):
    """austen-bpe predicts the second "Mr. Darcy and Miss Bennet" better than the first; the smaller
    shakespeare-char, which has not learned to copy, does not (the induction lesson is about this)."""
    name, model, tok = lm
    first_part = tok.encode(REPEAT_PHRASE.strip() + ".")
    phrase = tok.encode(REPEAT_PHRASE)
    ids = token_ids(model, tok, REPEATED)
    assert ids[len(first_part) : len(first_part) + len(phrase)] == phrase
    surprise = compute.predict(model, ids, k=1).surprise_bits  # surprise[j - 1] belongs to token j
    first = surprise[: len(first_part) - 2].mean()  # tokens 1 .. end of the first phrase
    second = surprise[len(first_part) : len(first_part) + len(phrase) - 1].mean()  # the same tokens again
    if name == "austen-bpe":
        assert second < first - 0.3
        assert surprise[-1] > surprise[len(first_part) - 2]  # but the final full stop is darker than the first
    else:
        assert second >= first


def test_top_p_keeps_few_tokens_where_the_model_is_sure_and_many_where_it_is_not(lm):
    _, model, tok = lm
    ids = token_ids(model, tok, TEXT)
    with torch.no_grad():
        rows, _ = compute.windowed_logits(model, ids)
    entropy = [compute.reshape(r, 1.0, None, None, k=1).entropy_before for r in rows]
    surest, least_sure = (
        rows[min(range(len(rows)), key=entropy.__getitem__)],
        rows[max(range(len(rows)), key=entropy.__getitem__)],
    )
    kept_sure = compute.reshape(surest, 1.0, None, 0.9, k=1).kept
    kept_unsure = compute.reshape(least_sure, 1.0, None, 0.9, k=1).kept
    assert kept_sure * 5 <= kept_unsure


def test_temperature_zero_writes_the_same_text_whatever_the_seed(lm):
    _, model, tok = lm
    ids = token_ids(model, tok, "It is")
    runs = {tuple(compute.continue_text(model, ids, 0.0, None, None, seed=s, max_new_tokens=15)) for s in range(4)}
    assert len(runs) == 1
    greedy = list(ids)
    for _ in range(15):
        greedy.append(int(compute.logits_after(model, greedy).argmax()))
    assert list(runs.pop()) == greedy[len(ids) :]


def test_the_same_seed_writes_the_same_text_and_another_seed_another(lm):
    _, model, tok = lm
    ids = token_ids(model, tok, "It is")
    runs = [tuple(compute.continue_text(model, ids, 1.0, None, None, seed=s, max_new_tokens=20)) for s in (7, 7, 8)]
    assert runs[0] == runs[1] != runs[2]


def test_halving_the_temperature_squares_the_probabilities(lm):
    _, model, tok = lm
    logits = compute.logits_after(model, token_ids(model, tok, TEXT))
    p = sampling_distribution(logits, 1.0, None, None).double()
    torch.testing.assert_close(sampling_distribution(logits, 0.5, None, None).double(), p**2 / (p**2).sum(), atol=1e-6, rtol=1e-4)


def test_top_k_one_writes_what_temperature_zero_writes(lm):
    _, model, tok = lm
    ids = token_ids(model, tok, "It is")
    greedy = compute.continue_text(model, ids, 0.0, None, None, seed=0, max_new_tokens=12)
    assert compute.continue_text(model, ids, 1.0, 1, None, seed=5, max_new_tokens=12) == greedy


def test_top_p_one_half_keeps_one_or_two_tokens_where_sure_and_dozens_where_not():
    model, tokenizer = zoo.load("austen-bpe")
    model.eval()
    with torch.no_grad():
        rows, _ = compute.windowed_logits(model, tokenizer.encode(TEXT))
    kept = [compute.reshape(row, 1.0, None, 0.5, k=1).kept for row in rows]
    assert min(kept) <= 2 and max(kept) >= 24


def test_after_it_is_is_an_easy_guess_for_austen_bpe():
    model, tokenizer = zoo.load("austen-bpe")
    ids = tokenizer.encode("It is")
    assert len(ids) == 2
    assert compute.predict(model.eval(), ids, k=1).next_prob[0] > 0.2


# the character model on the page's starting text (static/js/tokens/state.js DEFAULT_TEXT) and its links
STARTING_TEXT = "ROMEO:\nBut soft, what light through yonder window breaks?\nIt is the east, and Juliet is the sun."


@pytest.fixture(scope="module")
def char_model():
    model, tokenizer = zoo.load("shakespeare-char")
    return model.eval(), text_tokenizer(tokenizer)


def test_the_j_of_juliet_is_the_darkest_chip_and_the_letters_after_it_are_pale(char_model):
    model, tok = char_model
    surprise = compute.predict(model, tok.encode(STARTING_TEXT), k=1).surprise_bits
    j = STARTING_TEXT.index("Juliet")
    assert int(surprise.argmax()) == j - 1 and surprise[j - 1] > 10  # surprise[j - 1] is token j's
    assert surprise[j] < 1 and surprise[j + 1] < 1


def test_o_after_r_is_hard_to_guess(char_model):
    model, tok = char_model
    assert compute.predict(model, tok.encode(STARTING_TEXT[:2]), k=1).next_prob[0] < 0.02


def test_a_typo_is_more_than_twice_as_surprising(char_model):
    model, tok = char_model
    right, typo = (
        compute.predict(model, tok.encode(f"Wherefore art thou {name}?"), k=1).surprise_bits[-6:-1].mean()
        for name in ("Romeo", "Rmoeo")
    )
    assert typo > 2 * right


def test_the_page_links_to_the_texts_these_tests_check():
    """The checkpoints' and links' URLs in tokens.html, and the page's starting text, are the ones tested here."""
    static = resources.files("llm_workings.lab") / "static"
    html = unescape((static / "tokens.html").read_text(encoding="utf-8"))
    queries = [parse_qs(urlsplit(q).query) for q in re.findall(r'(?:href|data-query)="(\?[^"]*)"', html)]
    texts = {(q["model"][0], q.get("text", [STARTING_TEXT])[0]) for q in queries if "model" in q}
    assert ("austen-bpe", REPEATED) in texts and ("shakespeare-char", REPEATED) in texts
    assert ("shakespeare-char", "Wherefore art thou Romeo?") in texts and (
        "shakespeare-char",
        "Wherefore art thou Rmoeo?",
    ) in texts
    assert ("austen-bpe", TEXT) in texts  # the top-p link
    assert any(q.get("temperature") == ["0.5"] for q in queries)
    state_js = (static / "js" / "tokens" / "state.js").read_text(encoding="utf-8")
    assert f"DEFAULT_TEXT = {json.dumps(STARTING_TEXT)};" in state_js
