"""What every tokenizer here shares: the interface the models use, and saving to one JSON file.

A tokenizer turns text into a list of integer ids and back. The models only ever see the
ids; `vocab_size` says how many different ids there can be (the rows of the embedding).

The interface matches the part of Hugging Face's tokenizers that our Transformer uses:
`encode(text, add_special_tokens=False)`, `decode(ids)`, and `bos_token_id`,
`eos_token_id`, `pad_token_id` (each None unless set).

A tokenizer is saved as one JSON object with a "type" field ("char" or "bpe") and a
"version"; `llm_workings.tokenizers.load_tokenizer` reads the type to pick the class.
Saving is atomic: a crash mid-save leaves the old file in place, never half a file.

How to use (with any tokenizer, e.g. a CharTokenizer):

    tok.save("tok.json")
    same = type(tok).load("tok.json")      # or load_tokenizer("tok.json")
    ids = tok.encode_array(big_text)       # numpy array, for whole corpora
"""

from __future__ import annotations

import json
import operator
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import write_atomic

FORMAT_VERSION = 1
ROLES = ("bos_token_id", "eos_token_id", "pad_token_id")


class Tokenizer:
    """Base class: subclasses define `type_name`, `vocab_size`, `encode`, `decode`,
    `_to_json` and `_from_json`."""

    type_name = ""

    def __init__(self, bos_token_id: int | None = None, eos_token_id: int | None = None, pad_token_id: int | None = None) -> None:
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.pad_token_id = pad_token_id

    # -- the interface ----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        raise NotImplementedError

    def __len__(self) -> int:
        return self.vocab_size

    @property
    def array_dtype(self) -> type:
        """The smallest dtype that holds every id: a corpus of uint16 ids takes half the memory of int32."""
        return np.uint16 if self.vocab_size <= 65536 else np.int32

    def encode_array(self, text: str) -> np.ndarray:
        """`encode(text)` as a 1-D numpy array of `array_dtype`."""
        return np.array(self.encode(text), dtype=self.array_dtype)

    def _check_ids(self, ids: Iterable[int]) -> list[int]:
        """ids as a list of ints, or a ValueError naming the first id outside the vocabulary."""
        out = []
        for i, token_id in enumerate(ids):
            try:
                value = operator.index(token_id)  # ints, numpy ints, 0-d integer tensors; not floats
            except TypeError:
                raise ValueError(f"decode takes integer token ids; item {i} is {token_id!r}") from None
            if not 0 <= value < self.vocab_size:
                raise ValueError(f"unknown token id {value} at position {i}: this tokenizer's ids are 0..{self.vocab_size - 1}")
            out.append(value)
        return out

    # -- save and load ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write this tokenizer to one JSON file at `path`, atomically."""
        self._check_roles()
        data = {"type": self.type_name, "version": FORMAT_VERSION, **self._to_json()}
        data.update({role: getattr(self, role) for role in ROLES})
        write_json_atomic(Path(path), data)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Tokenizer:
        """Read a tokenizer that `save` wrote."""
        data = read_tokenizer_json(path)
        if data["type"] != cls.type_name:
            raise ValueError(
                f"{path} holds a {data['type']!r} tokenizer, not a {cls.type_name!r} one; "
                "llm_workings.tokenizers.load_tokenizer picks the class for you"
            )
        try:
            tok = cls._from_json(data)
        except KeyError as e:
            raise ValueError(f"{path} is not a valid {cls.type_name!r} tokenizer file: the field {e} is missing") from None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path} is not a valid {cls.type_name!r} tokenizer file: {e}") from None
        for role in ROLES:
            setattr(tok, role, data.get(role))
        try:
            tok._check_roles()
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None
        return tok

    def _to_json(self) -> dict[str, Any]:
        raise NotImplementedError

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> Tokenizer:
        raise NotImplementedError

    def _check_roles(self) -> None:
        for role in ROLES:
            value = getattr(self, role)
            if value is not None and (type(value) is not int or not 0 <= value < self.vocab_size):
                raise ValueError(f"{role} must be None or an id in 0..{self.vocab_size - 1}, not {value!r}")


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    # One field per line, each value compact: readable, yet 4,000 merges stay 1 line.
    text = "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in data.items()) + "\n}\n"
    write_atomic(path, text.encode("utf-8"))


def read_tokenizer_json(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON object in a tokenizer file, with its "type" checked to be a string.
    Errors say what was expected, since a wrong path is the commonest cause."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"no tokenizer file at {path}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not a tokenizer file: expected UTF-8 JSON ({e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not a tokenizer file: malformed JSON at line {e.lineno}, column {e.colno} "
            f"({e.msg}); expected one JSON object written by Tokenizer.save"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a tokenizer file: expected a JSON object, found a {type(data).__name__}")
    if "type" not in data:
        raise ValueError(f'{path} is not a tokenizer file: it has no "type" field (expected "char" or "bpe")')
    if not isinstance(data["type"], str):
        raise ValueError(f'{path}: the "type" field must be a string such as "bpe", not {data["type"]!r}')
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise ValueError(f"{path}: tokenizer file version {version!r} is not one this code reads (expected {FORMAT_VERSION})")
    return data
