"""Byte-level BPE, as in GPT-2, written from scratch.

How it works:
- Text is UTF-8 bytes, so ids 0..255 (one per byte value) can spell any text: nothing is
  ever unknown. Byte-level BPE is from GPT-2 (Radford et al. 2019); BPE for subwords is
  from Sennrich et al. 2016.
- Training (bpe_train.py) learns merges: "the pair (a, b) becomes the new id 256 + k".
- Before merging, text is cut into chunks with GPT-2's regex: a word with its leading
  space, a number, a run of punctuation, whitespace, or one of the contractions 's 't 're
  've 'm 'll 'd. Merges never cross chunk boundaries, so " dog" and " dog." share a token.
- Encoding a chunk replays the merges: repeatedly take the adjacent pair that was learned
  earliest (lowest rank) and merge all its occurrences, until no learned pair is left.
- Special tokens such as <|endoftext|> get the ids after the merges. They are cut out of
  the text before anything else, so they are never split or merged.
- Decoding joins the tokens' bytes and reads them as UTF-8. One token can hold part of a
  character's bytes, so undecodable bytes become U+FFFD rather than an error.

How to use:

    from llm_workings.tokenizers import BPETokenizer

    tok = BPETokenizer.train(text, vocab_size=4096, eos_token="<|endoftext|>")
    ids = tok.encode("Hello world<|endoftext|>")
    tok.decode(ids)                          # 'Hello world<|endoftext|>'
    [tok.vocab[i] for i in ids]              # e.g. ['H', 'ello', ' world', '<|endoftext|>']
    tok.save("bpe.json"); BPETokenizer.load("bpe.json")
    hf = tok.to_hf()                          # the same tokenizer in Hugging Face `tokenizers`
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from itertools import chain, pairwise
from typing import Any

import numpy as np
import regex

from .base import Tokenizer
from .bpe_train import learn_merges, merge_pair

# GPT-2's pre-split pattern (Radford et al. 2019, released with the GPT-2 code).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
CACHE_LIMIT = 1 << 18  # chunk encodings kept; past this the cache starts again empty

AllowedSpecial = str | Iterable[str]  # "all", "none", or the special tokens to honour


class BPETokenizer(Tokenizer):
    type_name = "bpe"
    block_chars = 1 << 20  # long ordinary text is pre-split this many characters at a time (see _blocks)

    def __init__(
        self,
        merges: Iterable[tuple[int, int]],
        special_tokens: dict[str, int] | None = None,
        pattern: str = GPT2_PATTERN,
        **roles: int | None,
    ) -> None:
        """`merges[k] = (a, b)` makes id 256 + k from ids a and b; `special_tokens` maps each
        special string to its id, which must follow the merges (256 + len(merges), ...)."""
        super().__init__(**roles)
        self.pattern = pattern
        self._split = regex.compile(pattern)
        self.merges: list[tuple[int, int]] = []
        self._bytes: list[bytes] = [bytes([i]) for i in range(256)]  # id -> the bytes it stands for
        for k, pair in enumerate(merges):
            a, b = (int(x) for x in pair)
            if not (0 <= a < len(self._bytes) and 0 <= b < len(self._bytes)):
                raise ValueError(f"merge {k} ({a}, {b}) uses an id not yet defined (ids so far: 0..{len(self._bytes) - 1})")
            self.merges.append((a, b))
            self._bytes.append(self._bytes[a] + self._bytes[b])
        self.ranks = {pair: k for k, pair in enumerate(self.merges)}
        if len(self.ranks) != len(self.merges):
            raise ValueError("the merges list the same pair twice")

        self.special_tokens = dict(special_tokens or {})
        first = 256 + len(self.merges)
        if sorted(self.special_tokens.values()) != list(range(first, first + len(self.special_tokens))):
            raise ValueError(
                f"special token ids must be {first}..{first + len(self.special_tokens) - 1}, "
                f"right after the merges; got {self.special_tokens}"
            )
        for text in sorted(self.special_tokens, key=self.special_tokens.__getitem__):
            if not isinstance(text, str) or not text:
                raise ValueError(f"a special token must be a non-empty string, not {text!r}")
            self._bytes.append(text.encode("utf-8"))
        self._cache: dict[str, list[int]] = {}

    # -- training ---------------------------------------------------------------------------------
    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        special_tokens: Iterable[str] = ("<|endoftext|>",),
        progress: bool = True,
        pattern: str = GPT2_PATTERN,
        bos_token: str | None = None,
        eos_token: str | None = None,
        pad_token: str | None = None,
    ) -> BPETokenizer:
        """Learn merges on `text` until the vocabulary (256 bytes + merges + specials) has
        `vocab_size` ids. Special tokens in `text` are cut out first and never learned from.
        `bos_token` / `eos_token` / `pad_token` name special tokens to use in those roles."""
        specials = list(special_tokens)
        if len(set(specials)) != len(specials):
            raise ValueError(f"special_tokens repeats a token: {specials}")
        floor = 256 + len(specials)
        if vocab_size < floor:
            raise ValueError(
                f"vocab_size {vocab_size} is smaller than 256 byte tokens + {len(specials)} special "
                f"token(s) = {floor}; ask for at least {floor}"
            )
        roles = {"bos_token_id": bos_token, "eos_token_id": eos_token, "pad_token_id": pad_token}
        for role, name in roles.items():
            if name is not None and name not in specials:  # checked now, not after minutes of training
                raise ValueError(f"{role[:-3]} {name!r} is not one of the special tokens {specials}")
        splitter = regex.compile(pattern)
        chunks: Counter[str] = Counter()
        for part, is_special in _split_specials(text, specials):
            if not is_special:
                chunks.update(_pre_split(splitter, part))
        merges = learn_merges(chunks, vocab_size - floor, progress=progress)
        first = 256 + len(merges)
        tok = cls(merges, {s: first + i for i, s in enumerate(specials)}, pattern)
        for role, name in roles.items():
            setattr(tok, role, None if name is None else tok.special_tokens[name])
        return tok

    # -- the vocabulary ---------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self._bytes)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes token `token_id` stands for (a special token: its UTF-8 text)."""
        if not 0 <= token_id < self.vocab_size:
            raise ValueError(f"unknown token id {token_id}: this tokenizer's ids are 0..{self.vocab_size - 1}")
        return self._bytes[token_id]

    @property
    def vocab(self) -> dict[int, str]:
        """Every id with its text, for reading: bytes that are not whole UTF-8 characters show as \\xNN."""
        return {i: b.decode("utf-8", errors="backslashreplace") for i, b in enumerate(self._bytes)}

    # -- encoding ---------------------------------------------------------------------------------
    def encode(self, text: str, add_special_tokens: bool = False, allowed_special: AllowedSpecial = "all") -> list[int]:
        """Token ids for `text`. Special tokens written in the text become their ids when
        `allowed_special` allows them ("all", "none", or a set of them); otherwise they are
        ordinary text. `add_special_tokens` is accepted for Hugging Face compatibility:
        nothing is added."""
        ids: list[int] = []
        for part, is_special in _split_specials(text, self._allowed(allowed_special)):
            if is_special:
                ids.append(self.special_tokens[part])
            else:
                for block in self._blocks(part):
                    ids.extend(self._encode_ordinary(block))
        return ids

    def encode_array(self, text: str, allowed_special: AllowedSpecial = "all") -> np.ndarray:
        """`encode(text)` as a numpy array (uint16 for vocabularies up to 65536), for whole
        corpora: ids go into arrays a million at a time, never one list of Python ints."""
        arrays, buffer = [], []
        for part, is_special in _split_specials(text, self._allowed(allowed_special)):
            if is_special:
                buffer.append(self.special_tokens[part])
            else:
                for block in self._blocks(part):
                    buffer.extend(self._encode_ordinary(block))
                    if len(buffer) >= 1 << 20:
                        arrays.append(np.array(buffer, dtype=self.array_dtype))
                        buffer = []
        arrays.append(np.array(buffer, dtype=self.array_dtype))
        return np.concatenate(arrays)

    def _blocks(self, text: str) -> list[str]:
        # The cuts are proven safe for GPT-2's pattern only (see _blocks); others take text whole.
        return _blocks(text, self.block_chars if self.pattern == GPT2_PATTERN else 0)

    def _encode_ordinary(self, text: str) -> list[int]:
        """Ids for text that holds no special tokens: pre-split, then each chunk through BPE.
        Text is full of repeated chunks (" the", ","), so each distinct chunk is encoded once."""
        chunks = _pre_split(self._split, text)
        cache = self._cache
        if len(cache) > CACHE_LIMIT:
            cache.clear()
        for chunk in set(chunks).difference(cache):
            cache[chunk] = self._encode_chunk(chunk)
        # Every chunk is now cached, so the rest runs at C speed.
        return list(chain.from_iterable(map(cache.__getitem__, chunks)))

    def _encode_chunk(self, chunk: str) -> list[int]:
        try:
            ids = list(chunk.encode("utf-8"))
        except UnicodeEncodeError as e:
            raise ValueError(
                f"the text holds a lone surrogate {chunk[e.start]!r}, which UTF-8 cannot encode "
                "(it usually comes from decoding bytes with errors='surrogateescape')"
            ) from None
        ranks = self.ranks
        never = len(self.merges)  # sorts after every learned pair
        while len(ids) > 1:
            pair = min(pairwise(ids), key=lambda p: ranks.get(p, never))
            rank = ranks.get(pair)
            if rank is None:
                break
            ids = merge_pair(ids, *pair, 256 + rank)
        return ids

    def _allowed(self, allowed_special: AllowedSpecial) -> frozenset[str]:
        if isinstance(allowed_special, str):
            if allowed_special == "all":
                return frozenset(self.special_tokens)
            if allowed_special == "none":
                return frozenset()
            raise ValueError(f'allowed_special must be "all", "none" or a set of special tokens, not {allowed_special!r}')
        allowed = frozenset(allowed_special)
        unknown = allowed - self.special_tokens.keys()
        if unknown:
            raise ValueError(
                f"allowed_special names {sorted(unknown)}, which are not special tokens of this "
                f"tokenizer ({sorted(self.special_tokens)})"
            )
        return allowed

    # -- decoding ---------------------------------------------------------------------------------
    def decode(self, ids: Iterable[int]) -> str:
        """The text for `ids`. Bytes that do not form valid UTF-8 (a token can end mid-character)
        become U+FFFD, as Hugging Face does."""
        return b"".join(self._bytes[i] for i in self._check_ids(ids)).decode("utf-8", errors="replace")

    # -- Hugging Face -----------------------------------------------------------------------------
    def to_hf(self):
        """This tokenizer as a Hugging Face `tokenizers.Tokenizer`: the same ids for the same text,
        with special tokens always honoured (our allowed_special="all")."""
        from .hf import to_hf

        return to_hf(self)

    def __repr__(self) -> str:
        return (
            f"BPETokenizer(vocab_size={self.vocab_size}, merges={len(self.merges)}, special_tokens={list(self.special_tokens)})"
        )

    # -- save and load ----------------------------------------------------------------------------
    def _to_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "merges": [list(p) for p in self.merges], "special_tokens": self.special_tokens}

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> BPETokenizer:
        merges, specials, pattern = data["merges"], data["special_tokens"], data["pattern"]
        if not isinstance(merges, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(type(x) is int for x in p) for p in merges
        ):
            raise ValueError('"merges" must be a list of [id, id] pairs of integers')
        if not isinstance(specials, dict) or not all(type(v) is int for v in specials.values()):
            raise ValueError('"special_tokens" must be an object mapping each special token to its integer id')
        if not isinstance(pattern, str):
            raise ValueError('"pattern" must be a regular expression string')
        try:
            regex.compile(pattern)
        except regex.error as e:
            raise ValueError(f'"pattern" is not a valid regular expression: {e}') from None
        return cls([tuple(p) for p in merges], specials, pattern)


def _split_specials(text: str, specials: Iterable[str]) -> list[tuple[str, bool]]:
    """`text` cut into (part, is_special) pieces around the given special tokens, longest first
    where two start at the same place. With no specials, the whole text is one ordinary part."""
    specials = tuple(sorted(specials, key=lambda s: (-len(s), s)))
    if not specials:
        return [(text, False)] if text else []
    parts = _special_cutter(specials).split(text)  # with a group, split keeps the matches at the odd places
    return [(p, k % 2 == 1) for k, p in enumerate(parts) if p]


@lru_cache(maxsize=64)
def _special_cutter(specials: tuple[str, ...]) -> regex.Pattern:
    # Alternatives are tried in order, so listing longer tokens first makes the longest one win.
    return regex.compile("(" + "|".join(regex.escape(s) for s in specials) + ")")


def _pre_split(splitter: regex.Pattern, text: str) -> list[str]:
    """The chunks of `text`. GPT-2's pattern matches every character somewhere; for a pattern
    that leaves gaps, the gaps become chunks too, so no text is ever dropped."""
    if not splitter.groups:  # findall returns groups, not whole matches, when there are any
        chunks = splitter.findall(text)
        if sum(map(len, chunks)) == len(text):
            return chunks
    out, end = [], 0
    for m in splitter.finditer(text):
        if m.start() > end:
            out.append(text[end : m.start()])
        if m.end() > m.start():
            out.append(m.group())
        end = m.end()
    if end < len(text):
        out.append(text[end:])
    return out


def _blocks(text: str, size: int) -> list[str]:
    """`text` in pieces of about `size` characters (all of it when `size` is 0), so that a
    whole corpus is never one list of chunks. A cut goes after a newline that has a
    non-space on each side ("word\\nWord"): GPT-2's pattern makes that newline a chunk of
    its own either way, so cutting there cannot change the chunks."""
    if not size or len(text) <= size:
        return [text]
    pieces, start = [], 0
    while len(text) - start > size:
        m = _SAFE_CUT.search(text, start + size)
        if m is None:
            break
        pieces.append(text[start : m.end()])
        start = m.end()
    pieces.append(text[start:])
    return pieces


_SAFE_CUT = regex.compile(r"(?<=\S)\n(?=\S)")
