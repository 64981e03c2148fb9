"""Our byte-level BPE as a Hugging Face `tokenizers.Tokenizer`, for checking and for speed.

Hugging Face's BPE works on strings, not bytes, so GPT-2 gives each of the 256 bytes a
printable stand-in character: bytes that already print as themselves in Latin-1
('!'..'~', '¡'..'¬', '®'..'ÿ') keep their character, and the other 68 (space, control
bytes, ...) take the characters U+0100, U+0101, ... in byte order. A space is 'Ġ', which
is why GPT-2 tokens read "Ġworld". Token strings are their bytes through this table.

How to use:

    hf = tok.to_hf()                       # tok: a BPETokenizer
    hf.encode("Hello world").ids == tok.encode("Hello world")
    hf.decode(ids, skip_special_tokens=False) == tok.decode(ids)
    hf.save("tokenizer.json")             # loads in transformers' PreTrainedTokenizerFast
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tokenizers

    from .bpe import BPETokenizer


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> stand-in character table (see the module docstring)."""
    prints_as_itself = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    table, spare = {}, 0
    for byte in range(256):
        if byte in prints_as_itself:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + spare)
            spare += 1
    return table


def token_string(data: bytes) -> str:
    """The Hugging Face string for a token's bytes, e.g. b' world' -> 'Ġworld'."""
    table = bytes_to_unicode()
    return "".join(table[b] for b in data)


def _bpe_model(tok: BPETokenizer):
    from tokenizers import models

    n_ordinary = 256 + len(tok.merges)
    vocab = {token_string(tok.token_bytes(i)): i for i in range(n_ordinary)}
    if len(vocab) != n_ordinary:
        raise ValueError("two ids of this tokenizer stand for the same bytes; Hugging Face's vocabulary cannot hold that")
    merges = [(token_string(tok.token_bytes(a)), token_string(tok.token_bytes(b))) for a, b in tok.merges]
    # ignore_merges=False: a chunk that is itself a token must still be built by the merges,
    # as ours is (the two can differ when a token was learned by another route).
    return models.BPE(vocab=vocab, merges=merges, ignore_merges=False)


def to_hf(tok: BPETokenizer) -> tokenizers.Tokenizer:
    """A standalone Hugging Face tokenizer: its own pre-split (GPT-2's pattern in its regex
    engine), the BPE merges, the ByteLevel decoder, and our special tokens with our ids."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, pre_tokenizers

    from .bpe import GPT2_PATTERN

    hf = Tokenizer(_bpe_model(tok))
    if tok.pattern == GPT2_PATTERN:
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    else:
        hf.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(tok.pattern), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    hf.decoder = decoders.ByteLevel()
    # Added in id order, each takes the next id after the model's vocabulary: ours exactly.
    specials = sorted(tok.special_tokens.items(), key=lambda kv: kv[1])
    hf.add_special_tokens([AddedToken(text, special=True, normalized=False) for text, _ in specials])
    stand_ins = {c for c in bytes_to_unicode().values() if ord(c) > 127}
    for text, token_id in specials:
        if stand_ins.intersection(text):
            # The ByteLevel decoder reads every token through the byte table, special ones too.
            warnings.warn(
                f"special token {text!r} has characters that Hugging Face's ByteLevel decoder takes for "
                "byte stand-ins: hf.decode will garble it (encoding is unaffected)",
                stacklevel=3,
            )
        if hf.token_to_id(text) != token_id:
            raise ValueError(
                f"special token {text!r} got id {hf.token_to_id(text)} in Hugging Face, not {token_id} "
                "(its text is also an ordinary token's)"
            )
    return hf
