"""One tokenizer interface for every model the lab can load, whatever made the tokenizer.

    tok = text_tokenizer(model.tokenizer, model.cfg.d_vocab)  # None for a model without one (the task models)
    ids = tok.encode("To be")                 # list[int], exactly the underlying tokenizer's ids
    tok.decode(ids)                           # 'To be'
    tok.token_text(ids)                       # ['T', 'o', ' ', 'b', 'e']: each token's own string

`token_text` is for display: a token's own bytes read as UTF-8. A byte-level BPE token can hold
part of a character (the first two of the three bytes of '—'), and such bytes show as `\\xNN`
escapes (`'\\xe2\\x80'`), so a learner sees that the token is a fragment rather than a U+FFFD.

A model may have more output rows than its tokenizer has tokens (Pythia pads its vocabulary to a
multiple of 128), and can predict or sample such an id. Given the model's `d_vocab`, the adapter
shows an id in `[vocab_size, d_vocab)` as '⟨no token N⟩' and decodes it to no text; an id outside
the model's rows is still an error.
"""

from __future__ import annotations

import json
import operator
import re
from collections.abc import Iterable
from typing import Any

from ..errors import ApiError

BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")  # SentencePiece's spelling of a raw byte
SENTENCEPIECE_SPACE = "\u2581"  # '▁', SentencePiece's stand-in for a space


def readable(data: bytes) -> str:
    """Bytes as text; bytes that are not whole UTF-8 characters as \\xNN escapes."""
    return data.decode("utf-8", errors="backslashreplace")


class TextTokenizer:
    """The lab's view of a tokenizer. Each subclass wraps one type of tokenizer and names it in `tokenizer_type`."""

    tokenizer_type = ""

    def __init__(self, inner: Any, d_vocab: int | None = None) -> None:
        self.inner = inner
        self.d_vocab = self.vocab_size if d_vocab is None else max(d_vocab, self.vocab_size)

    @property
    def vocab_size(self) -> int:
        return len(self.inner)

    def encode(self, text: str) -> list[int]:
        """The ids of `text`, with no special tokens added; text the tokenizer cannot spell is a 400."""
        if not isinstance(text, str):
            raise ApiError(f"text must be a string, not {type(text).__name__}", field="text")
        try:
            return [int(i) for i in self.inner.encode(text, add_special_tokens=False)]
        except ValueError as e:  # e.g. a character outside a char tokenizer's vocabulary
            raise ApiError(str(e), field="text") from None

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`; a padding row's id (one the tokenizer has no token for) adds nothing."""
        return self.inner.decode([i for i in self.check_ids(ids) if i < self.vocab_size])

    def token_text(self, id_or_ids: int | Iterable[int]) -> str | list[str]:
        """One token's display string, or a list of them for a list of ids."""
        if isinstance(id_or_ids, Iterable) and not isinstance(id_or_ids, (str, bytes)):
            return [self.display(i) for i in self.check_ids(id_or_ids)]
        return self.display(self.check_ids([id_or_ids])[0])

    def display(self, token_id: int) -> str:
        if token_id >= self.vocab_size:
            return f"⟨no token {token_id}⟩"
        return self.one_token_text(token_id)

    def one_token_text(self, token_id: int) -> str:
        raise NotImplementedError

    def check_ids(self, ids: Iterable[int]) -> list[int]:
        out = []
        for position, token_id in enumerate(ids):
            try:
                value = operator.index(token_id)
            except TypeError:
                raise ApiError(f"token ids are integers; item {position} is {token_id!r}", field="ids") from None
            if not 0 <= value < self.d_vocab:
                raise ApiError(f"unknown token id {value} at position {position}: {self.id_range()}", field="ids")
            out.append(value)
        return out

    def id_range(self) -> str:
        spelled = f"this tokenizer's ids are 0..{self.vocab_size - 1}"
        if self.d_vocab == self.vocab_size:
            return spelled
        return f"the model's ids are 0..{self.d_vocab - 1} ({spelled}; the rest are padding rows)"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"


class CharTextTokenizer(TextTokenizer):
    tokenizer_type = "char"

    def one_token_text(self, token_id: int) -> str:
        return self.inner.chars[token_id]


class BPETextTokenizer(TextTokenizer):
    """Our byte-level BPE: a token's bytes are known exactly."""

    tokenizer_type = "bpe"

    def one_token_text(self, token_id: int) -> str:
        return readable(self.inner.token_bytes(token_id))


class HFTextTokenizer(TextTokenizer):
    """A Hugging Face tokenizer loaded from a checkpoint directory (transformers, offline)."""

    tokenizer_type = "hf"

    def __init__(self, inner: Any, d_vocab: int | None = None) -> None:
        super().__init__(inner, d_vocab)
        self.special_ids = set(getattr(inner, "all_special_ids", ()) or ())
        self.byte_level = _is_byte_level(inner)
        if self.byte_level:
            from ...tokenizers.hf import bytes_to_unicode

            self.stand_in_bytes = {c: b for b, c in bytes_to_unicode().items()}

    def one_token_text(self, token_id: int) -> str:
        piece = self.inner.convert_ids_to_tokens(token_id)
        if piece is None:
            return self.inner.decode([token_id])
        if token_id in self.special_ids:
            return piece
        if self.byte_level and all(c in self.stand_in_bytes for c in piece):
            return readable(bytes(self.stand_in_bytes[c] for c in piece))
        fallback = BYTE_FALLBACK.match(piece)
        if fallback:
            return readable(bytes([int(fallback.group(1), 16)]))
        return piece.replace(SENTENCEPIECE_SPACE, " ")


def _is_byte_level(tok: Any) -> bool:
    """Whether the tokenizer spells bytes with GPT-2's stand-in characters ('Ġ' for a space)."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return False
    decoder = json.loads(backend.to_str()).get("decoder") or {}
    return "ByteLevel" in json.dumps(decoder)


def text_tokenizer(tokenizer: Any, d_vocab: int | None = None) -> TextTokenizer | None:
    """The lab's adapter for a model's tokenizer, or None when the model has none. `d_vocab` is the
    model's count of output rows, when it has more than the tokenizer has tokens (see the module doc)."""
    if tokenizer is None:
        return None
    from ...tokenizers import BPETokenizer, CharTokenizer

    if isinstance(tokenizer, CharTokenizer):
        return CharTextTokenizer(tokenizer, d_vocab)
    if isinstance(tokenizer, BPETokenizer):
        return BPETextTokenizer(tokenizer, d_vocab)
    if hasattr(tokenizer, "convert_ids_to_tokens"):
        return HFTextTokenizer(tokenizer, d_vocab)
    raise TypeError(f"the lab has no adapter for a {type(tokenizer).__name__} tokenizer")
