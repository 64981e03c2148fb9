"""Byte-level BPE: hand-checked merges, parity with Hugging Face `tokenizers`, round trips,
special tokens, determinism, save/load."""

from __future__ import annotations

import json
import random
import unicodedata
import warnings

import numpy as np
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import pre_tokenizers

from llm_workings.tokenizers import GPT2_PATTERN, BPETokenizer, load_tokenizer
from llm_workings.tokenizers.bpe import _blocks
from llm_workings.tokenizers.hf import bytes_to_unicode, token_string

# Public-domain English: the openings of A Tale of Two Cities (Dickens, 1859) and Alice's
# Adventures in Wonderland (Carroll, 1865).
ENGLISH = """It was the best of times, it was the worst of times, it was the age of wisdom, it was the
age of foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the
season of Light, it was the season of Darkness, it was the spring of hope, it was the winter
of despair, we had everything before us, we had nothing before us, we were all going direct
to Heaven, we were all going direct the other way.

Alice was beginning to get very tired of sitting by her sister on the bank, and of having
nothing to do: once or twice she had peeped into the book her sister was reading, but it had
no pictures or conversations in it, "and what is the use of a book," thought Alice "without
pictures or conversations?" So she was considering in her own mind (as well as she could, for
the hot day made her feel very sleepy and stupid), whether the pleasure of making a
daisy-chain would be worth the trouble of getting up and picking the daisies, when suddenly a
White Rabbit with pink eyes ran close by her. There was nothing so very remarkable in that;
nor did Alice think it so very much out of the way to hear the Rabbit say to itself, "Oh
dear! Oh dear! I shall be late!"
"""

HELD_OUT = (
    "Don't panic: it's 3.14159 o'clock, we'll see.  Two  spaces,\ttabs\t\tand\r\nCRLF.\n\n\n"
    "Naïve café déjà vu — “quotes” ‘single’; Ünïcödé ñ. 日本語のテキスト 中文 한국어 Ελληνικά русский\n"
    "Emoji 🙂👍🏽 👨‍👩‍👧 flags 🇫🇷, math ∑∫√ 𝔘𝔫𝔦, numbers 1234567 ١٢٣ ⅷ, ends with spaces   \n"
    "I'M SHOUTING'S 'quoted' they've I'd you're   <html> a+b=c @user #tag $5.00 100% "
)


def training_text() -> str:
    """About 40 KB: the English above, then sentences of its words in a seeded random order."""
    words = regex.findall(r"[A-Za-z]+", ENGLISH)
    rng = random.Random(0)
    lines = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 14))) + rng.choice(".,;!?") for _ in range(600)]
    return ENGLISH + "\n".join(lines) + "\nDon't 1999 2024 café 🙂\n"


@pytest.fixture(scope="module")
def tok() -> BPETokenizer:
    return BPETokenizer.train(training_text(), vocab_size=600, progress=False, eos_token="<|endoftext|>")


@pytest.fixture(scope="module")
def hf(tok):
    return tok.to_hf()


# -- training --------------------------------------------------------------------------------------
def test_hand_checked_merges_with_the_tie_rule():
    # "aaabdaaabac" is one chunk. Pairs: aa x4, ab x2, then singles. Merge 1: (a, a) -> 256.
    # Left to right, "aaab" becomes [aa, a, b], so now (aa, a) and (a, b) both count 2: the
    # tie goes to the smaller pair of ids, (97, 98) -> 257. Then (aa, ab) x2 -> 258.
    tok = BPETokenizer.train("aaabdaaabac", vocab_size=259, special_tokens=(), progress=False)
    assert tok.merges == [(97, 97), (97, 98), (256, 257)]
    assert [tok.token_bytes(i) for i in (256, 257, 258)] == [b"aa", b"ab", b"aaab"]
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]
    assert tok.encode("aaaa") == [256, 256]
    assert tok.vocab_size == 259


def test_vocab_size_counts_bytes_merges_and_specials(tok):
    assert tok.vocab_size == len(tok) == 600
    assert len(tok.merges) == 600 - 256 - 1
    assert tok.special_tokens == {"<|endoftext|>": 599}
    assert tok.eos_token_id == 599 and tok.bos_token_id is None and tok.pad_token_id is None
    assert tok.vocab[256 + tok.merges.index((32, 116))] == " t"
    assert tok.token_bytes(599) == b"<|endoftext|>"


def test_merges_never_cross_chunk_boundaries(tok):
    for i in range(256, 256 + len(tok.merges)):
        try:
            text = tok.token_bytes(i).decode("utf-8")
        except UnicodeDecodeError:
            continue  # part of a character: cannot hold a boundary between chunks
        assert regex.findall(GPT2_PATTERN, text) == [text], f"token {i} {text!r} spans two chunks"


def test_training_is_deterministic():
    text = training_text()
    first = BPETokenizer.train(text, vocab_size=400, progress=False)
    second = BPETokenizer.train(text, vocab_size=400, progress=False)
    assert first.merges == second.merges


def test_special_tokens_in_training_text_are_not_learned_from():
    # Left in, the 50 copies would make "<|" and "endoftext" the most frequent pairs by far.
    tok = BPETokenizer.train("<|endoftext|>" * 50 + "ab ab", vocab_size=259, progress=False)
    assert tok.merges == [(97, 98), (32, 256)]  # "ab" twice, then " "+"ab" once
    assert tok.special_tokens == {"<|endoftext|>": 258}


def test_too_small_a_vocab_size_is_refused_with_the_floor():
    with pytest.raises(ValueError, match=r"vocab_size 256 is smaller than 256 byte tokens \+ 1 special token\(s\) = 257"):
        BPETokenizer.train("hello", vocab_size=256, progress=False)
    with pytest.raises(ValueError, match="repeats"):
        BPETokenizer.train("hello", vocab_size=300, special_tokens=("<a>", "<a>"), progress=False)
    with pytest.raises(ValueError, match="'<s>' is not one of the special tokens"):
        BPETokenizer.train("hello", vocab_size=300, bos_token="<s>", progress=False)


def test_running_out_of_pairs_warns_and_gives_a_smaller_vocabulary():
    with pytest.warns(UserWarning, match=r"ran out of pairs to merge after 2 merges \(asked for 43\)"):
        tok = BPETokenizer.train("abc", vocab_size=300, progress=False)
    assert tok.vocab_size == 256 + 2 + 1
    assert tok.special_tokens == {"<|endoftext|>": 258}


# -- encoding and decoding -------------------------------------------------------------------------
def test_held_out_text_round_trips_and_compresses(tok):
    ids = tok.encode(HELD_OUT)
    assert tok.decode(ids) == HELD_OUT
    assert len(ids) < len(HELD_OUT.encode("utf-8"))
    assert tok.encode_array(HELD_OUT).tolist() == ids


def test_parity_with_hugging_face_on_held_out_text(tok, hf):
    ours = tok.encode(HELD_OUT, add_special_tokens=False)
    theirs = hf.encode(HELD_OUT).ids
    assert theirs == ours
    assert hf.decode(ours, skip_special_tokens=False) == tok.decode(ours) == HELD_OUT
    english = tok.encode(ENGLISH)
    assert hf.encode(ENGLISH).ids == english
    assert len(english) < len(ENGLISH) / 2.5  # it learned English: well under 1 token in 2.5 characters


def test_hugging_face_token_strings_use_gpt2_byte_stand_ins(tok, hf):
    table = bytes_to_unicode()
    assert len(set(table.values())) == 256
    assert table[ord("A")] == "A" and table[ord(" ")] == "Ġ" and table[ord("\n")] == "Ċ" and table[0] == "Ā"
    the = tok.encode(" the")
    assert len(the) == 1
    assert hf.id_to_token(the[0]) == token_string(b" the") == "Ġthe"
    assert hf.get_vocab_size() == tok.vocab_size


def test_decode_replaces_partial_characters_as_hugging_face_does(tok, hf):
    smile = list("🙂".encode())  # four byte tokens
    for ids in ([smile[0]], smile[:3], [smile[1], 104, 105], smile[::-1], [255, 254, 192, 128]):
        assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=False)
    assert tok.decode(smile[:2] + [104]) == "\ufffdh"


def test_decode_rejects_unknown_ids(tok):
    with pytest.raises(ValueError, match=r"unknown token id 600 at position 2: this tokenizer's ids are 0\.\.599"):
        tok.decode([1, 2, 600])
    with pytest.raises(ValueError, match="unknown token id -3"):
        tok.decode([-3])
    with pytest.raises(ValueError, match="unknown token id 600"):
        tok.token_bytes(600)


def test_lone_surrogates_are_reported():
    tok = BPETokenizer.train("abab", vocab_size=258, special_tokens=(), progress=False)
    for encode in (tok.encode, tok.encode_array):
        with pytest.raises(ValueError, match="lone surrogate '\\\\udc80'"):
            encode("ab\udc80")


def test_encode_array_dtype_and_long_text_in_blocks(tok):
    text = (ENGLISH + HELD_OUT + "<|endoftext|>") * 3
    whole = tok.encode(text)
    assert whole.count(599) == 3
    arr = tok.encode_array(text)
    assert arr.dtype == np.uint16 and arr.tolist() == whole
    small_blocks = BPETokenizer(tok.merges, tok.special_tokens)
    small_blocks.block_chars = 50  # many cuts, each after a newline with a non-space on both sides
    assert small_blocks.encode(text) == whole
    assert small_blocks.encode_array(text).tolist() == whole


# -- special tokens --------------------------------------------------------------------------------
def test_special_token_in_text_is_one_id_unless_disallowed(tok, hf):
    text = "The end.<|endoftext|>Once upon a time"
    ids = tok.encode(text)
    assert ids.count(599) == 1
    assert ids == hf.encode(text).ids
    assert tok.decode(ids) == text
    plain = tok.encode(text, allowed_special="none")
    assert 599 not in plain and tok.decode(plain) == text
    assert plain == tok.encode("The end.") + tok.encode("<|endoftext|>Once upon a time", allowed_special=set())
    assert tok.encode_array(text, allowed_special="none").tolist() == plain
    assert tok.encode(text, allowed_special={"<|endoftext|>"}) == ids


def test_allowed_special_is_checked(tok):
    with pytest.raises(ValueError, match=r"\['<\|bos\|>'\], which are not special tokens"):
        tok.encode("x", allowed_special={"<|bos|>"})
    with pytest.raises(ValueError, match='"all", "none" or a set'):
        tok.encode("x", allowed_special="some")


def test_longest_special_token_wins_where_two_start_together():
    tok = BPETokenizer.train("some text here", vocab_size=260, special_tokens=("<a>", "<a><b>"), progress=False)
    a, ab = tok.special_tokens["<a>"], tok.special_tokens["<a><b>"]
    assert tok.encode("x<a><b>y<a>") == tok.encode("x") + [ab] + tok.encode("y") + [a]
    assert tok.to_hf().encode("x<a><b>y<a>").ids == tok.encode("x<a><b>y<a>")


def test_to_hf_warns_about_special_tokens_its_decoder_would_garble():
    tok = BPETokenizer.train("some text here", vocab_size=260, special_tokens=("<end of text>", "«fin»"), progress=False)
    with pytest.warns(UserWarning, match="'«fin»' has characters that Hugging Face's ByteLevel decoder"):
        hf = tok.to_hf()
    text = "hi<end of text>yo «fin» z"
    assert hf.encode(text).ids == tok.encode(text)
    assert tok.decode(tok.encode(text)) == text


# -- save and load ---------------------------------------------------------------------------------
def test_save_load_round_trip(tok, tmp_path):
    path = tmp_path / "bpe.json"
    tok.save(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["type"] == "bpe" and data["pattern"] == GPT2_PATTERN and len(data["merges"]) == len(tok.merges)
    assert data["special_tokens"] == {"<|endoftext|>": 599} and data["eos_token_id"] == 599
    for loaded in (BPETokenizer.load(path), load_tokenizer(path)):
        assert isinstance(loaded, BPETokenizer)
        assert loaded.merges == tok.merges and loaded.special_tokens == tok.special_tokens
        assert (loaded.bos_token_id, loaded.eos_token_id, loaded.pad_token_id) == (None, 599, None)
        assert loaded.encode(HELD_OUT + "<|endoftext|>") == tok.encode(HELD_OUT + "<|endoftext|>")


@pytest.fixture
def saved(tok, tmp_path):
    path = tmp_path / "bpe.json"
    tok.save(path)
    return path


def test_truncated_file_is_a_clear_error(saved):
    text = saved.read_text(encoding="utf-8")
    saved.write_text(text[: len(text) // 3], encoding="utf-8")
    with pytest.raises(ValueError, match="malformed JSON.*expected one JSON object"):
        load_tokenizer(saved)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.pop("merges"), "field 'merges' is missing"),
        (lambda d: d.pop("pattern"), "field 'pattern' is missing"),
        (lambda d: d.update(merges=[[1, 2, 3]]), "list of \\[id, id\\] pairs"),
        (lambda d: d.update(merges=[[97, 98], [97, 300]]), "merge 1 \\(97, 300\\) uses an id not yet defined"),
        (lambda d: d.update(merges=[[97, 98], [97, 98]]), "same pair twice"),
        (lambda d: d.update(special_tokens={"<|endoftext|>": 5}), "special token ids must be 599..599"),
        (lambda d: d.update(special_tokens=["<|endoftext|>"]), "mapping each special token"),
        (lambda d: d.update(pattern="(unclosed"), "not a valid regular expression"),
        (lambda d: d.update(bos_token_id=600), "bos_token_id must be None or an id in 0..599"),
        (lambda d: d.update(type="char"), "field 'chars' is missing"),
    ],
)
def test_corrupt_fields_are_named(saved, change, message):
    data = json.loads(saved.read_text(encoding="utf-8"))
    change(data)
    saved.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        load_tokenizer(saved)


# -- a pattern other than GPT-2's ------------------------------------------------------------------
def test_custom_pattern_round_trips_and_matches_hugging_face(tmp_path):
    pattern = r"[A-Za-z]+|[0-9]{1,3}"  # leaves gaps (spaces, punctuation): they become chunks too
    tok = BPETokenizer.train(training_text(), vocab_size=350, special_tokens=(), pattern=pattern, progress=False)
    text = "Alice said: 12345 times, don't!  ok"
    assert tok.decode(tok.encode(text)) == text
    assert tok.encode(text) == tok.to_hf().encode(text).ids
    tok.save(tmp_path / "t.json")
    assert load_tokenizer(tmp_path / "t.json").encode(text) == tok.encode(text)


# -- properties over arbitrary text ----------------------------------------------------------------
HF_SPLIT = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)


def engines_agree(ch: str) -> bool:
    """Whether Hugging Face's regex engine and ours class `ch` alike. They can differ only on
    characters assigned in one's Unicode tables and not the other's (recent additions)."""
    for probe in (f"x{ch}1", f"1{ch}x", f"!{ch}!", f" {ch} ", f"{ch}{ch}\n"):
        ours = [token_string(c.encode("utf-8")) for c in regex.findall(GPT2_PATTERN, probe)]
        if ours != [piece for piece, _ in HF_SPLIT.pre_tokenize_str(probe)]:
            return False
    return True


def test_engines_agree_on_assigned_characters_of_many_scripts():
    sample = [chr(c) for c in range(0x20, 0x3000, 7)] + ["🙂", "𝔘", "\U00020000", "\u00a0", "\u2028", "\u3000"]
    disagree = [c for c in sample if unicodedata.category(c) != "Cn" and not engines_agree(c)]
    assert disagree == []


ARBITRARY = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
# Text built from pieces that exercise the pre-split: contractions, runs of spaces, newlines.
PIECES = st.sampled_from(
    ["'s", "'t", "'ll", " ", "  ", "\n", "\n\n", "\t", "a", "ab", " the", "1", "23", ".", "!?", "é", "🙂", "<|endoftext|>"]
)
MIXED = st.lists(PIECES | st.text(st.characters(exclude_categories=("Cs",)), max_size=3), max_size=25).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=ARBITRARY | MIXED)
def test_decode_inverts_encode_and_encode_array_agrees(tok, text):
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert tok.encode_array(text).tolist() == ids
    assert tok.encode(text, allowed_special="none") == tok.encode_array(text, allowed_special="none").tolist()


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(st.characters(exclude_categories=("Cs",)).filter(engines_agree), max_size=60)
    | MIXED.filter(lambda t: all(map(engines_agree, t)))
)
def test_hugging_face_encodes_and_decodes_arbitrary_text_as_we_do(tok, hf, text):
    ids = tok.encode(text)
    assert hf.encode(text).ids == ids
    assert hf.decode(ids, skip_special_tokens=False) == tok.decode(ids)


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.sampled_from("ab \n\t.'s"), max_size=40), size=st.integers(1, 8))
def test_cutting_into_blocks_never_changes_the_chunks(text, size):
    blocks = _blocks(text, size)
    assert "".join(blocks) == text
    assert [c for block in blocks for c in regex.findall(GPT2_PATTERN, block)] == regex.findall(GPT2_PATTERN, text)


@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.integers(0, 599), max_size=12))
def test_decoding_arbitrary_ids_matches_hugging_face(tok, hf, ids):
    assert tok.decode(ids) == hf.decode(ids, skip_special_tokens=False)


def test_the_interface_the_transformer_uses(tok):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ids = tok.encode("Hello", add_special_tokens=False)
    assert isinstance(ids, list) and all(type(i) is int for i in ids)
    assert tok.decode([ids[0]]) == tok.decode(ids[:1])
    assert tok.decode(np.array(ids)) == "Hello"
