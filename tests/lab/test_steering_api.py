"""The Steering page's API: the vector, the two generations and the sweep are the steering engine's,
bad input is refused by name, and each checkpoint's reveal says what the engine does."""

from __future__ import annotations

import html
import math
import re
from importlib import resources
from urllib.parse import parse_qs

import pytest
import torch
from fastapi.testclient import TestClient

from llm_workings.lab.config import LabConfig
from llm_workings.lab.server import create_app
from llm_workings.lab.steering.settings import SETTINGS
from llm_workings.steering import from_contrast, steer

pytestmark = pytest.mark.usefixtures("one_thread")

PAGE = (resources.files("llm_workings.lab") / "static" / "steering.html").read_text()
PROMPT = {"text": "She walked into the drawing-room, and"}  # the page's default (state.js)


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(LabConfig()), base_url="http://127.0.0.1:8000") as c:
        yield c


def post(client, path, model="austen-bpe", prompt=PROMPT, **settings):
    return client.post(f"/api/steering/{path}", json={"model": model, "prompt": prompt, "settings": settings})


def query_of(name: str) -> tuple[str, dict, dict]:
    """A checkpoint's model, prompt and settings, read from steering.html as the page reads its URL."""
    found = re.search(rf'id="checkpoint-{name}" data-query="([^"]*)"', PAGE)
    assert found, f"checkpoint {name} not in steering.html"
    query = {k: v[0] for k, v in parse_qs(html.unescape(found.group(1)).lstrip("?")).items()}
    model = query.pop("model")
    query.pop("measure", None)
    prompt = {"text": query.pop("text")} if "text" in query else PROMPT
    settings = {}
    for name_, text in query.items():
        kind = SETTINGS.by_name[name_].kind
        settings[name_] = float(text) if kind == "float" else int(text) if kind == "int" else text
    return model, prompt, settings


def test_pairs_give_the_engines_mean_difference_and_its_seeded_generations(client, austen_model):
    pairs = "Love | Hate\nI love you | I hate you"
    out = post(
        client, "generate", layer=2, source="pairs", pairs=pairs, coefficient=6, temperature=0.8, seed=3, new_tokens=12
    ).json()
    vector = from_contrast(austen_model, [("Love", "Hate"), ("I love you", "I hate you")], ("resid_pre", 2))
    assert out["vector"]["summary"] == repr(vector)
    assert math.isclose(out["vector"]["norm"], float(vector.vector.norm()), rel_tol=1e-6)
    tokens = austen_model.to_tokens(PROMPT["text"])
    kwargs = dict(max_new_tokens=12, temperature=0.8, seed=3, stop_at_eos=False)
    assert out["plain"]["ids"] == austen_model.generate(tokens, **kwargs)[0, tokens.shape[1] :].tolist()
    with steer(austen_model, vector.with_(coefficient=6)):
        assert out["steered"]["ids"] == austen_model.generate(tokens, **kwargs)[0, tokens.shape[1] :].tolist()
    assert out["plain"]["ids"] != out["steered"]["ids"]


@pytest.mark.parametrize(
    ("model", "prompt", "settings", "status", "field", "says"),
    [
        (
            "austen-bpe",
            PROMPT,
            {"source": "pairs", "pairs": "no bar here"},
            400,
            "pairs",
            "line 1 of the pairs is not 'positive | negative'",
        ),
        ("austen-bpe", PROMPT, {"source": "pairs", "pairs": "\n \n"}, 400, "pairs", "give at least one pair"),
        ("austen-bpe", PROMPT, {"layer": 4}, 400, "layer", "layer must be from 0 to 3 (austen-bpe has 4 layers); got 4"),
        ("austen-bpe", PROMPT, {"target": ""}, 400, "target", "the target text is empty"),
        ("austen-bpe", PROMPT, {"target": "\u2603"}, 400, "target", "no token of austen-bpe contains"),
        ("induction-2l", {"ids": [1, 2]}, {}, 422, "model", "induction-2l reads task tokens, not text"),
        ("austen-bpe", {"text": ""}, {}, 400, "prompt", "the prompt is empty"),
        ("austen-bpe", PROMPT, {"coefficient": 1000}, 400, "coefficient", "must be between -64 and 64"),
    ],
)
def test_bad_input_is_refused_by_name(client, model, prompt, settings, status, field, says):
    path = "sweep" if "target" in settings else "generate"
    response = post(client, path, model=model, prompt=prompt, **settings)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field
    assert says in response.json()["error"]


def test_a_prompt_leaves_room_for_the_new_tokens(client, austen_model):
    long = {"ids": [5] * (austen_model.cfg.n_ctx - 10)}
    response = post(client, "generate", prompt=long, new_tokens=40)
    assert response.status_code == 413
    assert (
        response.json()["error"]
        == f"the prompt is {austen_model.cfg.n_ctx - 10} tokens; this page shows at most {austen_model.cfg.n_ctx - 40}"
    )


@pytest.fixture(scope="module")
def quotation_sweep(client):
    model, prompt, settings = query_of("fluent")
    return post(client, "sweep", model=model, prompt=prompt, **settings).json()


def test_coefficient_8_doubles_the_cost_and_a_random_vector_costs_more_with_no_quotes(quotation_sweep):
    s = quotation_sweep
    assert s["coefficients"][-1] == 8
    assert 1.6 < s["perplexity"][-1] / s["unsteered_perplexity"] < 2.6  # "roughly doubles (about 79 to 160)"
    assert 75 < s["unsteered_perplexity"] < 83 and 150 < s["perplexity"][-1] < 170
    assert s["random_perplexity"][-1] > 200  # "costs more (above 200)"
    assert s["behaviour"][-1] > 3 * s["unsteered_behaviour"]  # "more than three times"
    assert max(s["random_behaviour"][0], s["random_behaviour"][-1]) < 1.5 * s["unsteered_behaviour"]  # "flat at both ends"


def test_minus_8_lowers_the_quote_by_a_quarter_at_most(client, quotation_sweep):
    model, prompt, settings = query_of("negative")
    s = post(client, "sweep", model=model, prompt=prompt, **settings).json()
    assert s["behaviour"] == quotation_sweep["behaviour"]  # the coefficient does not change the sweep
    assert s["behaviour"][0] >= 0.7 * s["unsteered_behaviour"]  # "by about a quarter at most"
    assert s["behaviour"][-1] > 3 * s["unsteered_behaviour"]


def test_steering_only_the_generated_tokens_keeps_the_first_new_token(client):
    model, prompt, settings = query_of("generated")
    assert settings["positions"] == "generated"
    out = post(client, "generate", model=model, prompt=prompt, **settings).json()
    assert out["plain"]["ids"][0] == out["steered"]["ids"][0]
    assert out["plain"]["ids"] != out["steered"]["ids"]
    everywhere = post(client, "generate", model=model, prompt=prompt, **{**settings, "positions": "all"}).json()
    assert everywhere["steered"]["ids"][0] != everywhere["plain"]["ids"][0]


def test_the_sweep_is_the_engines(client, austen_model, quotation_sweep):
    from llm_workings.lab.steering import compute

    with client.app.state.models.hold("austen-bpe") as held:
        vector = compute.build_vector(held, SETTINGS.validate({"source": "probe", "layer": 3}))
        neutral = compute.neutral_tokens(held)
    from llm_workings.steering import TargetProbability, steering_sweep

    quotes = [i for i in range(austen_model.cfg.d_vocab) if '"' in austen_model.tokenizer.decode([i])]
    sweep = steering_sweep(
        austen_model,
        vector,
        torch.linspace(-8, 8, 17),
        TargetProbability(quotes),
        austen_model.to_tokens(PROMPT["text"]),
        neutral,
        [3],
    )
    assert quotation_sweep["behaviour"] == pytest.approx(sweep.behaviour[0].tolist(), rel=1e-5)
    assert quotation_sweep["random_perplexity"] == pytest.approx(sweep.random_perplexity[0].tolist(), rel=1e-5)
    assert quotation_sweep["vector"]["metadata"]["probe_test_accuracy"] > 0.85


def test_an_sae_latent_is_its_decoder_row_at_the_saes_hook(client):
    from llm_workings.sae.bundled import load_bundled

    out = post(client, "generate", source="sae", sae="austen-bpe-resid2-topk", latent=276, new_tokens=4).json()
    row = load_bundled("austen-bpe-resid2-topk").W_dec.detach()[276].float()
    assert out["vector"]["hook"] == "blocks.2.hook_resid_pre" and out["vector"]["normalisation"] == "SAE decoder row"
    assert out["vector"]["norm"] == pytest.approx(float(row.norm()), rel=1e-6)
    assert out["vector"]["metadata"]["top_logits"].startswith("'ed' 'ing'")


@pytest.mark.parametrize(
    ("model", "settings", "status", "field", "says"),
    [
        ("austen-bpe", {"sae": "no-such-sae"}, 400, "sae", "unknown SAE 'no-such-sae'; the bundled ones are"),
        ("austen-bpe", {"sae": "/etc"}, 400, "sae", "unknown SAE '/etc'"),
        (
            "shakespeare-char",
            {"sae": "austen-bpe-resid2-topk"},
            422,
            "sae",
            "austen-bpe-resid2-topk was trained on austen-bpe, not shakespeare-char",
        ),
        ("austen-bpe", {"latent": 5000}, 400, "latent", "latent must be from 0 to"),
    ],
)
def test_a_bad_sae_choice_is_refused_by_name(client, model, settings, status, field, says):
    prompt = {"text": "ROMEO:"} if model == "shakespeare-char" else PROMPT
    response = post(client, "generate", model=model, prompt=prompt, source="sae", **settings)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field and says in response.json()["error"]


def test_the_sae_try_link_forces_its_suffixes_where_a_random_vector_does_not(client):
    found = re.search(r'<a class="try" href="(\?[^"]*source=sae[^"]*)">', PAGE)
    query = {k: v[0] for k, v in parse_qs(html.unescape(found.group(1)).lstrip("?")).items()}
    settings = {
        k: float(v) if SETTINGS.by_name[k].kind == "float" else int(v) if SETTINGS.by_name[k].kind == "int" else v
        for k, v in query.items()
        if k not in ("model", "measure")
    }
    s = post(client, "sweep", model=query["model"], **settings).json()
    assert settings["target"] == "ed" and s["behaviour"][-1] > 4 * s["unsteered_behaviour"]  # "about sixfold" (0.11 -> 0.68)
    assert max(s["random_behaviour"]) < 1.05 * s["unsteered_behaviour"]  # "never raises it"
