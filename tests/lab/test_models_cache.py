"""The model cache: loads on first hold, keeps within its budget by evicting the least recently used,
never breaks a request that holds an evicted model, loads each model once however many ask, and
refuses bad checkpoints with the loader's own reason."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch
from models_helpers import build_finished_run, build_gpt2_dir, build_our_model, build_training_run

from llm_workings import zoo
from llm_workings.lab.config import LabConfig
from llm_workings.lab.errors import ApiError
from llm_workings.lab.models import ModelCache
from llm_workings.lab.models import cache as cache_module
from llm_workings.transformer import Transformer

pytestmark = pytest.mark.usefixtures("one_thread")

TOKENS = {
    "shakespeare-char": [[20, 43, 50, 50, 53, 6, 1, 58]],
    "austen-bpe": [[2208, 286, 44, 445, 313]],
    "induction-2l": [[5, 9, 17, 5, 9]],
    "modadd-113": [[3, 7, 113]],  # a, b, and the '=' token
}
TOKENIZER_TYPE = {"shakespeare-char": "char", "austen-bpe": "bpe", "induction-2l": None, "modadd-113": None}


def logits(model, tokens) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor(tokens))


def expected(name: str) -> torch.Tensor:
    model, _ = zoo.load(name)
    return logits(model, TOKENS[name])


@pytest.mark.parametrize("name", list(TOKENS))
def test_hold_gives_the_model_a_direct_load_gives(tmp_path, name):
    cache = ModelCache(LabConfig(runs_dir=tmp_path))
    with cache.hold(name) as held:
        assert not held.model.training
        assert torch.equal(logits(held.model, TOKENS[name]), expected(name))
        assert held.entry.id == name and getattr(held.tokenizer, "tokenizer_type", None) == TOKENIZER_TYPE[name]
        assert held.bytes == 4 * held.entry.parameters  # float32 parameters, tied unembedding counted once
    assert cache.usage()["loaded"] == {name: held.bytes}


def test_hold_of_a_hugging_face_checkpoint_equals_from_hf(tmp_path):
    path = build_gpt2_dir(tmp_path / "gpt2")
    cache = ModelCache(LabConfig(models=(str(path),), runs_dir=tmp_path))
    tokens = [[5, 17, 99, 3, 250]]
    with cache.hold("cli.gpt2") as held:
        assert torch.equal(logits(held.model, tokens), logits(Transformer.from_hf(path), tokens))
        assert held.tokenizer.tokenizer_type == "hf"


def test_the_least_recently_used_model_goes_first(tmp_path):
    cache = ModelCache(LabConfig(runs_dir=tmp_path, model_memory_mb=7))
    for name in ["induction-2l", "shakespeare-char", "modadd-113", "induction-2l"]:  # the last touch makes it recent
        with cache.hold(name):
            pass
    with cache.hold("austen-bpe"):
        pass
    usage = cache.usage()
    assert list(usage["loaded"]) == ["modadd-113", "induction-2l", "austen-bpe"]  # shakespeare-char was least recent
    assert usage["used_bytes"] <= usage["budget_bytes"]
    with cache.hold("shakespeare-char"):  # an evicted model loads again on demand
        pass
    assert cache.loads["shakespeare-char"] == 2 and cache.loads["induction-2l"] == 1


def test_a_model_evicted_while_held_still_serves_its_holder(tmp_path):
    want = expected("shakespeare-char")
    cache = ModelCache(LabConfig(runs_dir=tmp_path, model_memory_mb=6))  # room for one language model at a time
    with cache.hold("shakespeare-char") as held:
        with cache.hold("austen-bpe"), cache.hold("modadd-113"):
            pass
        assert "shakespeare-char" not in cache.usage()["loaded"]  # evicted...
        assert held.tokenizer.encode("Hello, t") == TOKENS["shakespeare-char"][0]
        assert torch.equal(logits(held.model, TOKENS["shakespeare-char"]), want)  # ...yet whole for its holder
        assert cache.usage()["held"] == {"shakespeare-char": 1}
    assert cache.usage()["held"] == {}


def slow_loads(monkeypatch, seconds: float, gate: dict[str, threading.Event] | None = None) -> list[str]:
    """Make every load take `seconds` (or wait for its id's gate), and record which ids were loaded."""
    calls: list[str] = []
    real = cache_module.load_entry

    def load(entry):
        calls.append(entry.id)
        if gate and entry.id in gate:
            assert gate[entry.id].wait(10), f"{entry.id}'s load was never let through"
        time.sleep(seconds)
        return real(entry)

    monkeypatch.setattr(cache_module, "load_entry", load)
    return calls


def test_concurrent_holds_of_one_model_load_it_once(tmp_path, monkeypatch):
    calls = slow_loads(monkeypatch, 0.3)
    cache = ModelCache(LabConfig(runs_dir=tmp_path))
    models, errors = [], []
    start = threading.Barrier(6)

    def request():
        start.wait()
        try:
            with cache.hold("modadd-113") as held:
                models.append(held.model)
        except Exception as e:  # the assertion below reports it
            errors.append(e)

    threads = [threading.Thread(target=request) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert calls == ["modadd-113"] and cache.loads["modadd-113"] == 1
    assert len(models) == 6 and all(m is models[0] for m in models)


def test_loads_of_different_models_do_not_wait_for_each_other(tmp_path, monkeypatch):
    gate = {"induction-2l": threading.Event()}
    slow_loads(monkeypatch, 0.0, gate)
    cache = ModelCache(LabConfig(runs_dir=tmp_path))
    blocked = threading.Thread(target=lambda: cache.get("induction-2l"))
    blocked.start()
    with cache.hold("modadd-113"):  # loads while induction-2l's load is stuck
        gate["induction-2l"].set()
    blocked.join(30)
    assert cache.loads == {"modadd-113": 1, "induction-2l": 1}


def test_a_model_bigger_than_the_whole_budget_is_a_409_naming_the_flag(tmp_path):
    cache = ModelCache(LabConfig(runs_dir=tmp_path, model_memory_mb=1))
    with pytest.raises(ApiError) as e:
        with cache.hold("austen-bpe"):
            pass
    assert e.value.status == 409 and "'austen-bpe'" in str(e.value) and "--model-memory-mb" in str(e.value)
    with cache.hold("induction-2l"):  # small ones still load
        pass


def test_a_retrained_run_is_reloaded(tmp_path):
    build_finished_run(tmp_path, "mine", seed=0)
    cache = ModelCache(LabConfig(runs_dir=tmp_path))
    with cache.hold("run.mine") as first:
        before = logits(first.model, [[1, 2, 3]])
    time.sleep(0.01)
    build_finished_run(tmp_path, "mine", seed=1)  # `llmw train` wrote a new final model there
    with cache.hold("run.mine") as second:
        assert not torch.equal(logits(second.model, [[1, 2, 3]]), before)
    assert cache.loads["run.mine"] == 2


def corrupt_weights(directory):
    weights = directory / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    return directory


def unsupported_architecture(directory):
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "architectures": ["BertForMaskedLM"]}))
    return directory


def broken_config(directory):
    (directory / "config.json").write_text('{"format": "llm_workings.transformer", "config": ')
    return directory


BAD = {
    "missing": (lambda d: d, "has no config.json"),
    "corrupt-ours": (lambda d: corrupt_weights(build_our_model(d)), "not a readable safetensors file"),
    "corrupt-hf": (lambda d: corrupt_weights(build_gpt2_dir(d)), "cannot read weights"),
    "unsupported": (lambda d: unsupported_architecture(build_gpt2_dir(d)), "'BertForMaskedLM' is not supported"),
    "broken-config": (lambda d: broken_config(build_our_model(d)), "is not valid JSON"),
}


@pytest.mark.parametrize("kind", list(BAD))
def test_a_bad_checkpoint_is_a_422_with_the_loaders_reason(tmp_path, kind):
    make, reason = BAD[kind]
    path = make(tmp_path / kind)
    cache = ModelCache(LabConfig(models=(str(path),), runs_dir=tmp_path / "runs"))
    model_id = f"cli.{kind}"
    with pytest.raises(ApiError) as e:
        with cache.hold(model_id):
            pass
    assert e.value.status == 422 and reason in str(e.value) and model_id in str(e.value) and str(path) in str(e.value)
    listed = cache.entry(model_id)
    assert not listed.available and reason in listed.reason  # the catalog now shows why
    with cache.hold("induction-2l"):  # the rest of the lab is unaffected
        pass


def test_a_run_still_training_is_a_409_saying_so(tmp_path):
    build_training_run(tmp_path, "busy", step=40)
    cache = ModelCache(LabConfig(runs_dir=tmp_path))
    with pytest.raises(ApiError) as e:
        cache.get("run.busy")
    assert e.value.status == 409 and "still training" in str(e.value) and "step 40" in str(e.value)
    assert "still training" in cache.entry("run.busy").reason  # the catalog keeps saying why
    build_finished_run(tmp_path, "busy")  # the run finishes: its model loads
    with cache.hold("run.busy") as held:
        assert held.entry.available and held.entry.source == "run"


def test_a_checkpoint_fixed_on_disk_is_offered_and_loaded_again(tmp_path):
    path = corrupt_weights(build_our_model(tmp_path / "flaky"))
    cache = ModelCache(LabConfig(models=(str(path),), runs_dir=tmp_path / "runs"))
    with pytest.raises(ApiError):
        cache.get("cli.flaky")
    assert not cache.entry("cli.flaky").available
    time.sleep(0.01)
    build_our_model(path)  # saved again, whole
    assert cache.entry("cli.flaky").available
    with cache.hold("cli.flaky") as held:
        assert held.bytes > 0


def test_a_hub_name_in_the_local_cache_lists_and_loads_offline(tmp_path, monkeypatch):
    """The layout huggingface_hub keeps a download in: models--ORG--NAME/{refs/main, snapshots/REV/...}."""
    from huggingface_hub import constants

    revision = "0" * 40
    repo = tmp_path / "hub" / "models--tiny-org--tiny-gpt2"
    build_gpt2_dir(repo / "snapshots" / revision)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = ModelCache(LabConfig(models=("tiny-org/tiny-gpt2",), runs_dir=tmp_path / "runs"))
    entry = cache.entry("cli.tiny-org-tiny-gpt2")
    assert (entry.available, entry.location, entry.n_layers, entry.d_vocab) == (True, "tiny-org/tiny-gpt2", 2, 280)
    with cache.hold(entry.id) as held:
        reference = Transformer.from_hf(repo / "snapshots" / revision)
        assert torch.equal(logits(held.model, [[3, 1, 4, 1, 5]]), logits(reference, [[3, 1, 4, 1, 5]]))
        assert held.tokenizer.tokenizer_type == "hf"
