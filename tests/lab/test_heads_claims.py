"""Every checkpoint on the Attention heads page, checked against the engine on the prompt its query sets.

Each test is named after the claim the page reveals; docs/lessons/attention-heads.md quotes the same numbers.
The prompts are read from the page's own HTML, so a changed link or prompt fails here.
"""

from __future__ import annotations

import re
from html import unescape
from importlib import resources
from urllib.parse import parse_qs, urlsplit

import pytest
import torch

from llm_workings import zoo
from llm_workings.analysis.circuits import copying_scores
from llm_workings.analysis.heads import attention_patterns, head_scores
from llm_workings.lab.config import LabConfig
from llm_workings.lab.heads import compute
from llm_workings.lab.models.cache import ModelCache
from llm_workings.lab.prompts import repeated_prompt

pytestmark = pytest.mark.usefixtures("one_thread")

HTML = unescape((resources.files("llm_workings.lab") / "static" / "attention-heads.html").read_text(encoding="utf-8"))


def checkpoint(name: str) -> dict:
    """The settings a checkpoint's "run" button applies: its data-query, parsed."""
    match = re.search(rf'id="checkpoint-{name}" data-query="\?([^"]*)"', HTML)
    assert match, f"no checkpoint-{name} on the page"
    query = {k: v[0] for k, v in parse_qs(match.group(1), keep_blank_values=True).items()}
    if "ids" in query:
        query["ids"] = [int(i) for i in query["ids"].split(",")]
    return query


def reveal(name: str) -> str:
    start = HTML.index(f'id="checkpoint-{name}"')
    return HTML[start : HTML.index("</div>\n      </div>", start)]


def tokens(query: dict) -> torch.Tensor:
    return torch.tensor([query["ids"]])


@pytest.fixture(scope="module")
def induction():
    return zoo.load("induction-2l")[0].eval()


@pytest.fixture(scope="module")
def austen():
    return zoo.load("austen-bpe")[0].eval()


def test_the_repeated_prompt_of_the_checkpoints_is_the_one_the_button_makes_first():
    """The page's default for induction-2l (the repeated-tokens button's seed 0) is the checkpoints' prompt."""
    with ModelCache(LabConfig()).hold("induction-2l") as held:
        made = repeated_prompt(held, None, seed=0, max_tokens=256).ids
    for name in ("previous", "induction", "copying", "rotary"):
        assert checkpoint(name)["ids"] == made
    assert made[:20] == made[20:] and len(set(made[:20])) == 20


def test_l0h2_is_the_previous_token_head_of_layer_0(induction):
    query = checkpoint("previous")
    assert (query["layer"], query["head"], query["sort"]) == ("0", "2", "previous_token")
    scores = head_scores(induction, tokens(query)).scores
    previous = scores["previous_token"][0]
    assert int(previous.argmax()) == 2
    assert f"{float(previous[2]):.3f}" == "0.952" and f"{float(previous[3]):.3f}" == "0.451"
    assert float(previous[2]) > 0.9 and sorted(previous.tolist())[-2] < 0.5
    entropy = scores["entropy"]
    assert int(entropy.argmin()) == 2 and f"{float(entropy[0, 2]):.3f}" == "0.238"  # the lowest of all heads
    assert "0.952" in reveal("previous") and "0.451" in reveal("previous") and "0.238" in reveal("previous")


def test_on_the_second_copy_layer_1s_strongest_head_attends_just_after_the_earlier_copy(induction):
    query = checkpoint("induction")
    ids = query["ids"]
    scores = head_scores(induction, tokens(query)).scores["induction"]
    strongest = int(scores[1].argmax())
    assert (query["layer"], query["head"]) == ("1", str(strongest)) and strongest == 0
    assert f"{float(scores[1, 0]):.3f}" == "0.926"
    assert f"{float(scores[1].min()):.3f}" == "0.848"
    pattern = attention_patterns(induction, tokens(query))[1, 0, strongest]  # [q, k]
    q = int(query["query"])
    assert (q, ids[q], ids[q - 20], ids[q - 19]) == (30, 83, 83, 116)
    assert int(pattern[q].argmax()) == q - 19  # token 11, just after the earlier 83
    second_copy = range(21, 40)  # every query of the second copy but its first
    assert all(int(pattern[i].argmax()) == i - 19 for i in second_copy)
    assert compute.induction_heads({"induction": scores}) == [(1, 0), (1, 1), (1, 3), (1, 2)]
    assert all(f in reveal("induction") for f in ("0.926", "0.848"))


def test_induction_2ls_layer_1_heads_copy_the_token_they_attend_to(induction):
    query = checkpoint("copying")
    copying = copying_scores(induction)
    assert (query["layer"], query["head"]) == ("1", "1")
    assert f"{float(copying[1, 1]):.3f}" == "0.992" and float(copying[1].min()) > 0.88
    assert "0.992" in reveal("copying") and "0.88" in reveal("copying")


def test_austen_bpe_has_no_induction_head_on_repeated_random_tokens(austen):
    query = checkpoint("austen")
    ids = query["ids"]
    assert ids[:20] == ids[20:] and len(set(ids[:20])) == 20
    with ModelCache(LabConfig()).hold("austen-bpe") as held:
        assert repeated_prompt(held, None, seed=0, max_tokens=256).ids == ids  # what the button makes first
    scores = head_scores(austen, tokens(query)).scores["induction"]
    assert f"{float(scores.max()):.3f}" == "0.048" and "0.048" in reveal("austen")
    assert compute.induction_heads({"induction": scores}) == []


def test_a_rotary_score_depends_only_on_the_distance(induction):
    """Moving the pair (query 30, key 11) along by 10 positions, or any number, leaves q.k unchanged,
    and at distance 19 the curve passes through the score the model computed."""
    query = checkpoint("rotary")
    q_pos, k_pos = int(query["query"]), int(query["key"])
    assert (q_pos, k_pos) == (30, 11)
    layer, head = int(query["layer"]), int(query["head"])
    detail = compute.head_detail(induction, tokens(query), layer, head, q_pos, k_pos)
    curve = detail.rotary_scores
    assert detail.actual_score == pytest.approx(float(curve[19]), rel=1e-4)
    with torch.no_grad():
        _, cache = induction.run_with_cache(tokens(query))
    q = cache[f"blocks.{layer}.attn.hook_q"][0, q_pos, head]
    k = cache[f"blocks.{layer}.attn.hook_k"][0, k_pos, head]
    rotary = induction.blocks[layer].attn.rotary
    for shift in (0, 10, 17):
        q_at = rotary(q.reshape(1, 1, 1, -1), q_pos + shift)[0, 0, 0]
        k_at = rotary(k.reshape(1, 1, 1, -1), k_pos + shift)[0, 0, 0]
        assert float(q_at @ k_at) * induction.blocks[layer].attn.scale == pytest.approx(detail.actual_score, rel=1e-4)


def test_austen_bpes_learned_positions_are_most_like_their_neighbours(austen):
    assert checkpoint("learned")["model"] == "austen-bpe"
    similarity = compute.position_similarity(austen, austen.cfg.n_ctx)
    n = similarity.shape[0]
    neighbours = torch.stack([similarity[i, i + 1] for i in range(n - 1)])
    half_apart = torch.stack([similarity[i, i + n // 2] for i in range(n - n // 2)])
    assert float(neighbours.min()) > 0.42 and f"{float(neighbours.mean()):.2f}" == "0.74"
    assert float(half_apart.max()) <= 0.21 and float(half_apart.mean()) < 0
    assert float(neighbours.min()) > float(half_apart.max())
    text = reveal("learned")
    assert "above 0.42" in text and "0.74" in text and "0.21" in text


def test_the_try_this_links_set_prompts_the_page_reads():
    """Each try-this link names a model and a prompt that the claims above do not cover: they must at least load."""
    links = [parse_qs(urlsplit(h).query) for h in re.findall(r'<a class="try" href="(\?[^"]*)"', HTML)]
    assert len(links) == 4 and all("model" in q and ("ids" in q or "text" in q) for q in links)
    cache = ModelCache(LabConfig())
    for q in links:
        with cache.hold(q["model"][0]) as held:
            model = held.model
            ids = [int(i) for i in q["ids"][0].split(",")] if "ids" in q else held.tokenizer.encode(q["text"][0])
            assert 0 < len(ids) <= model.cfg.n_ctx
    nothing_repeats = next(q for q in links if q.get("ids") == ["1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16"])
    ids = torch.tensor([[int(i) for i in nothing_repeats["ids"][0].split(",")]])
    with cache.hold("induction-2l") as held:
        assert torch.isnan(head_scores(held.model, ids).scores["induction"]).all()  # shown as "—"
