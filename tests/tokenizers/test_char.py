"""CharTokenizer: nanoGPT's character vocabulary, round trips, errors, and the shared JSON save/load."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from llm_workings.tokenizers import BPETokenizer, CharTokenizer, load_tokenizer
from llm_workings.tokenizers import base as tokenizer_base

SHAKESPEARE_LIKE = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?
"""


@pytest.fixture
def tok() -> CharTokenizer:
    return CharTokenizer.train(SHAKESPEARE_LIKE)


def test_vocabulary_is_the_sorted_characters_as_in_nanogpt(tok):
    assert tok.chars == [
        "\n",
        " ",
        ",",
        ".",
        ":",
        "?",
        "A",
        "B",
        "C",
        "F",
        "S",
        "Y",
        "a",
        "c",
        "d",
        "e",
        "f",
        "h",
        "i",
        "k",
        "l",
        "m",
        "n",
        "o",
        "p",
        "r",
        "s",
        "t",
        "u",
        "v",
        "w",
        "y",
        "z",
    ]
    assert tok.vocab_size == len(tok) == 33
    assert tok.encode("\n ,") == [0, 1, 2]
    assert tok.encode("Speak") == [10, 24, 15, 12, 19]
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (None, None, None)


def test_round_trip_and_encode_array(tok):
    ids = tok.encode(SHAKESPEARE_LIKE, add_special_tokens=False)
    assert len(ids) == len(SHAKESPEARE_LIKE)
    assert tok.decode(ids) == SHAKESPEARE_LIKE
    arr = tok.encode_array(SHAKESPEARE_LIKE)
    assert arr.dtype == np.uint16
    assert arr.tolist() == ids
    assert tok.decode(np.array(ids)) == SHAKESPEARE_LIKE  # numpy ints are ids too
    assert tok.encode("") == [] and tok.encode_array("").shape == (0,)


def test_non_ascii_characters_are_single_tokens():
    text = "naïve café, 日本 🙂"
    tok = CharTokenizer.train(text)
    assert tok.vocab_size == len(set(text))
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode_array(text).tolist() == tok.encode(text)


def test_unknown_character_names_it_and_suggests_retraining(tok):
    for encode in (tok.encode, tok.encode_array):
        with pytest.raises(ValueError, match=r"'Q'.*'é'.*[Rr]etrain"):
            encode("Quoth é")


def test_decode_rejects_ids_outside_the_vocabulary(tok):
    with pytest.raises(ValueError, match=r"unknown token id 33 at position 1.*0\.\.32"):
        tok.decode([0, 33])
    with pytest.raises(ValueError, match="unknown token id -1"):
        tok.decode([-1])
    with pytest.raises(ValueError, match="integer token ids"):
        tok.decode([1.0])


def test_training_on_empty_text_or_a_repeated_vocabulary_is_refused():
    with pytest.raises(ValueError, match="empty"):
        CharTokenizer.train("")
    with pytest.raises(ValueError, match=r"repeats.*'a'"):
        CharTokenizer(["a", "b", "a"])
    with pytest.raises(ValueError, match="one character"):
        CharTokenizer(["ab"])


def test_array_dtype_widens_past_65536_ids():
    chars = [chr(i) for i in range(0xD800)] + [chr(i) for i in range(0xE000, 0xE000 + 65536 - 0xD800)]
    assert CharTokenizer(chars).array_dtype == np.uint16
    wide = CharTokenizer(chars + ["\U0001f642"])
    assert wide.vocab_size == 65537 and wide.array_dtype == np.int32
    assert wide.encode_array("a\U0001f642").tolist() == [97, 65536]


def test_save_load_round_trip_and_dispatch(tok, tmp_path):
    tok.eos_token_id = 0
    path = tmp_path / "char.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "char" and data["version"] == 1 and data["chars"] == tok.chars
    for loaded in (CharTokenizer.load(path), load_tokenizer(path)):
        assert isinstance(loaded, CharTokenizer)
        assert loaded.chars == tok.chars
        assert (loaded.bos_token_id, loaded.eos_token_id, loaded.pad_token_id) == (None, 0, None)
        assert loaded.encode(SHAKESPEARE_LIKE) == tok.encode(SHAKESPEARE_LIKE)


def test_save_is_atomic_and_leaves_no_temporary_files(tok, tmp_path, monkeypatch):
    path = tmp_path / "char.json"
    tok.save(path)
    before = path.read_bytes()
    CharTokenizer.train("xyz").save(path)  # overwriting works
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "permissions as for any new file, not private"
    assert CharTokenizer.load(path).chars == ["x", "y", "z"]
    tok.save(path)
    assert path.read_bytes() == before

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(tokenizer_base.os, "fsync", fail)
    with pytest.raises(OSError, match="disk full"):
        CharTokenizer.train("xyz").save(path)
    assert path.read_bytes() == before, "a failed save must leave the old file whole"
    assert os.listdir(tmp_path) == ["char.json"], "the temporary file must be removed"


def test_save_refuses_a_role_id_outside_the_vocabulary(tok, tmp_path):
    tok.pad_token_id = 99
    with pytest.raises(ValueError, match=r"pad_token_id must be None or an id in 0\.\.32, not 99"):
        tok.save(tmp_path / "char.json")
    assert not (tmp_path / "char.json").exists()


def write(tmp_path, text: str):
    path = tmp_path / "tok.json"
    path.write_text(text, encoding="utf-8")
    return path


def valid_char_file() -> dict:
    return {"type": "char", "version": 1, "chars": ["a", "b"], "bos_token_id": None, "eos_token_id": None, "pad_token_id": None}


@pytest.mark.parametrize("loader", [load_tokenizer, CharTokenizer.load])
def test_truncated_json_is_reported_as_malformed(tmp_path, loader):
    text = json.dumps(valid_char_file())
    path = write(tmp_path, text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"malformed JSON at line 1, column \d+.*expected one JSON object"):
        loader(path)


@pytest.mark.parametrize(
    "content, message",
    [
        ("[1, 2]", "expected a JSON object, found a list"),
        (json.dumps({"version": 1, "chars": ["a"]}), 'no "type" field.*"char" or "bpe"'),
        (json.dumps({"type": 3, "version": 1}), '"type" field must be a string'),
        (json.dumps({**valid_char_file(), "type": "word"}), "unknown tokenizer type 'word'; expected one of \\['bpe', 'char'\\]"),
        (json.dumps({**valid_char_file(), "version": 7}), "version 7 is not one this code reads"),
        (json.dumps({k: v for k, v in valid_char_file().items() if k != "chars"}), "field 'chars' is missing"),
        (json.dumps({**valid_char_file(), "chars": "ab"}), '"chars" must be a list'),
        (json.dumps({**valid_char_file(), "chars": ["a", "a"]}), "repeats the character"),
        (json.dumps({**valid_char_file(), "eos_token_id": 2}), "eos_token_id must be None or an id in 0..1"),
    ],
)
def test_bad_files_say_what_was_expected(tmp_path, content, message):
    with pytest.raises(ValueError, match=message):
        load_tokenizer(write(tmp_path, content))


def test_loading_with_the_wrong_class_points_to_load_tokenizer(tmp_path):
    path = write(tmp_path, json.dumps(valid_char_file()))
    with pytest.raises(ValueError, match="holds a 'char' tokenizer, not a 'bpe' one.*load_tokenizer"):
        BPETokenizer.load(path)


def test_missing_file_and_non_utf8_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no tokenizer file at"):
        load_tokenizer(tmp_path / "nope.json")
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="expected UTF-8 JSON"):
        load_tokenizer(path)


def test_the_package_is_layer_one_and_never_imports_torch():
    code = (
        "import sys, llm_workings.tokenizers as t\n"
        "tok = t.BPETokenizer.train('hello world, hello there ' * 20, 262, progress=False)\n"
        "tok.encode_array('hello'); t.CharTokenizer.train('abc').encode_array('cab'); tok.to_hf()\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
