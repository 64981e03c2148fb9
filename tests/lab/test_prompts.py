"""lab/prompts.py: what every page's prompt becomes, and the prompts every page refuses."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import create_app

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(LabConfig()), base_url="http://127.0.0.1:8000") as c:
        yield c


def tokenize(client, model, **prompt):
    return client.post("/api/prompts/tokenize", json={"model": model, "prompt": prompt})


def test_text_is_read_with_the_models_own_tokenizer(client, shakespeare_model):
    out = tokenize(client, "shakespeare-char", text="ROMEO:").json()
    assert out["ids"] == shakespeare_model.tokenizer.encode("ROMEO:")
    assert out["str_tokens"] == list("ROMEO:")
    assert (out["bos"], out["n_ctx"], out["has_tokenizer"]) == (False, shakespeare_model.cfg.n_ctx, True)


def test_ids_are_read_as_given_on_a_model_with_no_tokenizer(client):
    out = tokenize(client, "induction-2l", ids=[0, 5, 7, 5]).json()
    assert out["ids"] == [0, 5, 7, 5]
    assert out["str_tokens"] == ["0", "5", "7", "5"]
    assert out["has_tokenizer"] is False


@pytest.mark.parametrize(
    ("model", "prompt", "status", "says"),
    [
        ("shakespeare-char", {"text": ""}, 400, "the prompt is empty: type at least one token"),
        ("induction-2l", {"ids": []}, 400, "the prompt is empty: give at least one token id"),
        (
            "induction-2l",
            {"text": "hello"},
            422,
            "induction-2l has no text tokenizer (it reads task tokens): give the prompt as ids from 0 to 127",
        ),
        ("induction-2l", {"ids": [1, 128]}, 400, "token id 128 is outside induction-2l's vocabulary: ids run from 0 to 127"),
        ("induction-2l", {"ids": [1] * 50}, 413, "the prompt is 50 tokens; induction-2l reads at most 49 tokens"),
        ("induction-2l", {"ids": [1], "text": "a"}, 400, "give the prompt as text or as ids, not both and not neither"),
        ("induction-2l", {}, 400, "give the prompt as text or as ids, not both and not neither"),
    ],
)
def test_a_bad_prompt_is_refused_by_name(client, model, prompt, status, says):
    response = tokenize(client, model, **prompt)
    assert response.status_code == status, response.text
    assert response.json() == {"error": says, "field": "prompt"}


def test_a_page_can_lower_the_limit_below_the_context(client):
    from llm_workings.lab.prompts import PromptIn, read_prompt

    with client.app.state.models.hold("induction-2l") as held:
        assert len(read_prompt(held, PromptIn(ids=[1] * 10), max_tokens=10).ids) == 10
        with pytest.raises(Exception, match="the prompt is 11 tokens; this page shows at most 10"):
            read_prompt(held, PromptIn(ids=[1] * 11), max_tokens=10)


def test_repeated_random_tokens_repeat_and_fit_the_context(client):
    out = client.post("/api/prompts/repeated", json={"model": "induction-2l", "seed": 3}).json()
    ids = out["ids"]
    assert len(ids) == 40 and ids[:20] == ids[20:]  # no BOS: the zoo's induction model reads none
    again = client.post("/api/prompts/repeated", json={"model": "induction-2l", "seed": 3}).json()
    assert again["ids"] == ids
    short = client.post("/api/prompts/repeated", json={"model": "induction-2l", "seed": 3, "max_tokens": 9}).json()
    assert len(short["ids"]) == 8 and short["ids"][:4] == short["ids"][4:]
    refused = client.post("/api/prompts/repeated", json={"model": "induction-2l", "half": 25})
    assert refused.status_code == 400
    assert refused.json() == {
        "error": "half must be from 1 to 24 tokens, so that both copies fit in 49 tokens; got 25",
        "field": "half",
    }


def test_a_bos_model_reads_its_bos_first(hf_checkpoint_paths):
    with TestClient(create_app(LabConfig(models=hf_checkpoint_paths)), base_url="http://127.0.0.1:8000") as c:
        out = tokenize(c, "cli.gpt2-random", text="a truth").json()
        with c.app.state.models.hold("cli.gpt2-random") as held:
            bos = held.model.bos_to_prepend(None)
            assert out["ids"] == [bos, *held.tokenizer.encode("a truth")]
        assert out["bos"] is True and out["str_tokens"][0] == "<|endoftext|>"
        assert tokenize(c, "cli.gpt2-random", text="").json()["error"] == "the prompt is empty: type at least one token"
        rep = c.post("/api/prompts/repeated", json={"model": "cli.gpt2-random"}).json()
        assert rep["ids"][0] == bos and rep["ids"][1:21] == rep["ids"][21:41]
