"""The lab's one tokenizer interface agrees with each tokenizer it wraps, id for id, and shows each
token's own string (partial UTF-8 as \\xNN escapes)."""

from __future__ import annotations

import codecs

import pytest
import transformers
from models_helpers import TEXT, bpe_tokenizer, build_gpt2_dir

from llm_workings import zoo
from llm_workings.lab.config import LabConfig
from llm_workings.lab.errors import ApiError
from llm_workings.lab.models import ModelCache, text_tokenizer

SAMPLES = ["To be, or not to be", "Elizabeth's  sister\n said 'no'.", "naïve café — ok\t", ""]


def test_the_zoo_char_tokenizer():
    _, inner = zoo.load("shakespeare-char")
    tok = text_tokenizer(inner)
    assert tok.tokenizer_type == "char" and tok.vocab_size == 65
    for text in SAMPLES[:2]:
        ids = tok.encode(text)
        assert ids == inner.encode(text) and tok.decode(ids) == inner.decode(ids) == text
        assert tok.token_text(ids) == list(text)
    with pytest.raises(ApiError) as e:
        tok.encode("café")
    assert e.value.field == "text" and "'é'" in str(e.value)


def test_the_zoo_bpe_tokenizer():
    _, inner = zoo.load("austen-bpe")
    tok = text_tokenizer(inner)
    assert tok.tokenizer_type == "bpe" and tok.vocab_size == 4096
    for text in SAMPLES:
        ids = tok.encode(text)
        assert ids == inner.encode(text) and tok.decode(ids) == inner.decode(ids) == text
        # each token's string, with its \\xNN escapes read back as bytes, spells the text's bytes
        assert b"".join(codecs.escape_decode(t.encode())[0] for t in tok.token_text(ids)) == text.encode()
    assert tok.token_text(tok.encode(" sister")) == [" sister"]


def test_partial_utf8_tokens_show_their_bytes():
    inner = bpe_tokenizer()
    tok = text_tokenizer(inner)
    ids = tok.encode("naïve")  # 'ï' is two bytes, and a merge learned on TEXT joins the first to the 'a'
    assert b"".join(inner.token_bytes(i) for i in ids) == "naïve".encode()
    shown = tok.token_text(ids)
    assert "a\\xc3" in shown and "\\xaf" in shown  # fragments, visibly so, not U+FFFD
    assert tok.token_text(0x41) == "A" and tok.token_text(0xE2) == "\\xe2"


def test_a_hugging_face_tokenizer_agrees_with_ours_token_for_token():
    ours = bpe_tokenizer()
    hf = text_tokenizer(transformers.PreTrainedTokenizerFast(tokenizer_object=ours.to_hf()))
    mine = text_tokenizer(ours)
    assert hf.tokenizer_type == "hf" and hf.vocab_size == mine.vocab_size
    for text in [TEXT[:80], *SAMPLES]:
        assert hf.encode(text) == mine.encode(text)
        assert hf.decode(mine.encode(text)) == text
    every_id = list(range(mine.vocab_size))
    assert hf.token_text(every_id) == mine.token_text(every_id)  # 'Ġ' read back as the space it stands for


def test_a_sentencepiece_style_tokenizer_shows_spaces_and_fallback_bytes():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    vocab = {f"<0x{b:02X}>": b for b in range(256)}
    for piece in ["▁", "t", "h", "e", "a", "he", "▁t", "▁the"]:
        vocab[piece] = len(vocab)
    merges = [("h", "e"), ("▁", "t"), ("▁t", "he")]
    inner = Tokenizer(models.BPE(vocab=vocab, merges=merges, byte_fallback=True))
    inner.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="never")
    inner.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok = text_tokenizer(transformers.PreTrainedTokenizerFast(tokenizer_object=inner))
    ids = tok.encode("a the é")
    assert tok.token_text(ids) == ["a", " the", " ", "\\xc3", "\\xa9"]
    assert tok.decode(ids) == "a the é"


def test_bad_ids_are_a_400_naming_the_position():
    tok = text_tokenizer(bpe_tokenizer())
    with pytest.raises(ApiError) as e:
        tok.decode([5, tok.vocab_size])
    assert e.value.field == "ids" and "position 1" in str(e.value)
    with pytest.raises(ApiError):
        tok.token_text([1.5])


ADAPTED = {
    "char": lambda: zoo.load("shakespeare-char")[1],
    "bpe": bpe_tokenizer,
    "hf": lambda: transformers.PreTrainedTokenizerFast(tokenizer_object=bpe_tokenizer().to_hf()),
}


@pytest.mark.parametrize("kind", ADAPTED)
def test_a_padding_row_has_a_display_string_and_no_text(kind):
    """Ids in [vocab_size, d_vocab) are rows of the model that no token spells: shown, never decoded."""
    plain = text_tokenizer(ADAPTED[kind]())
    tok = text_tokenizer(ADAPTED[kind](), d_vocab=plain.vocab_size + 3)
    assert tok.tokenizer_type == kind and tok.d_vocab == tok.vocab_size + 3
    last, first_pad, last_pad = tok.vocab_size - 1, tok.vocab_size, tok.vocab_size + 2
    assert tok.token_text(first_pad) == f"⟨no token {first_pad}⟩"
    assert tok.token_text([last, first_pad, 0, last_pad]) == [
        plain.token_text(last),
        f"⟨no token {first_pad}⟩",
        plain.token_text(0),
        f"⟨no token {last_pad}⟩",
    ]
    assert tok.decode([0, first_pad, last, last_pad]) == plain.decode([0, last])
    for outside in (-1, tok.d_vocab):  # not a row of the model at all
        with pytest.raises(ApiError) as e:
            tok.token_text([0, outside])
        assert e.value.field == "ids" and "position 1" in str(e.value) and f"0..{tok.d_vocab - 1}" in str(e.value)
    with pytest.raises(ApiError, match=f"tokenizer's ids are 0..{last}"):
        plain.token_text(first_pad)  # without the model's d_vocab, an id past the tokenizer is unknown


def test_a_held_models_tokenizer_knows_its_padding_rows(tmp_path):
    path = build_gpt2_dir(tmp_path / "gpt2", padding=20)
    cache = ModelCache(LabConfig(models=(str(path),), runs_dir=tmp_path))
    with cache.hold("cli.gpt2") as held:
        tok = held.tokenizer
        assert tok.d_vocab == held.model.cfg.d_vocab == tok.vocab_size + 20
        assert tok.token_text(tok.d_vocab - 1) == f"⟨no token {tok.d_vocab - 1}⟩"


def test_a_held_checkpoints_tokenizer_is_the_directorys(tmp_path):
    path = build_gpt2_dir(tmp_path / "gpt2")
    cache = ModelCache(LabConfig(models=(str(path),), runs_dir=tmp_path))
    reference = transformers.AutoTokenizer.from_pretrained(str(path))
    with cache.hold("cli.gpt2") as held:
        assert held.tokenizer.tokenizer_type == "hf"
        assert held.tokenizer.encode(TEXT[:60]) == reference.encode(TEXT[:60], add_special_tokens=False)
    with cache.hold("induction-2l") as held:
        assert held.tokenizer is None  # a task model works on ids; the page decides
