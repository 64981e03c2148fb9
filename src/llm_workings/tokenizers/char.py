"""The simplest tokenizer: one id per character.

The vocabulary is the sorted set of characters seen in training, and a character's id is
its place in that list, as in nanoGPT's shakespeare_char. On tinyshakespeare that gives 65
ids with '\\n' = 0 and ' ' = 1 (they sort first). Every character is a token, so sequences
are long; the benefit is that nothing about splitting text needs to be learned.

How to use:

    from llm_workings.tokenizers import CharTokenizer

    tok = CharTokenizer.train(open("tinyshakespeare.txt").read())
    ids = tok.encode("To be")            # [32, 53, 1, 40, 43]
    tok.decode(ids)                       # 'To be'
    tok.save("char.json"); CharTokenizer.load("char.json")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .base import Tokenizer


class CharTokenizer(Tokenizer):
    type_name = "char"

    def __init__(self, chars: Iterable[str], **roles: int | None) -> None:
        """`chars`: the vocabulary in id order, each a single character, no repeats."""
        super().__init__(**roles)
        self.chars: list[str] = list(chars)
        for c in self.chars:
            if not isinstance(c, str) or len(c) != 1:
                raise ValueError(f"each vocabulary entry must be one character, not {c!r}")
        self.ids: dict[str, int] = {c: i for i, c in enumerate(self.chars)}
        if len(self.ids) != len(self.chars):
            repeated = sorted({c for c in self.chars if self.chars.count(c) > 1})
            raise ValueError(f"the vocabulary repeats the character(s) {repeated}")
        # A lookup table from code point to id makes encode_array one numpy indexing step.
        self._table = np.full(max(map(ord, self.chars), default=0) + 1, -1, dtype=np.int64)
        for c, i in self.ids.items():
            self._table[ord(c)] = i

    @classmethod
    def train(cls, text: str) -> CharTokenizer:
        """A tokenizer whose vocabulary is every distinct character of `text`, sorted."""
        if not text:
            raise ValueError("cannot train on empty text: the vocabulary would be empty")
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """One id per character. `add_special_tokens` is accepted for Hugging Face compatibility;
        there are no special tokens to add."""
        try:
            return [self.ids[c] for c in text]
        except KeyError:
            raise self._unknown(text) from None

    def encode_array(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=np.uint32)
        inside = codes < len(self._table)
        ids = np.full(len(codes), -1, dtype=np.int64)
        ids[inside] = self._table[codes[inside]]
        if (ids < 0).any():
            raise self._unknown(text)
        return ids.astype(self.array_dtype)

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i] for i in self._check_ids(ids))

    def _unknown(self, text: str) -> ValueError:
        missing = sorted(set(text) - self.ids.keys())
        shown = ", ".join(repr(c) for c in missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        return ValueError(
            f"the text has {len(missing)} character(s) outside this tokenizer's vocabulary of "
            f"{self.vocab_size}: {shown}. Retrain with CharTokenizer.train on text that includes them."
        )

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"

    # -- save and load ----------------------------------------------------------------------------
    def _to_json(self) -> dict[str, Any]:
        return {"chars": self.chars}

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> CharTokenizer:
        chars = data["chars"]
        if not isinstance(chars, list):
            raise ValueError(f'"chars" must be a list of one-character strings, not {type(chars).__name__}')
        return cls(chars)
