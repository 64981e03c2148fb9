"""Text properties to probe for: labels on small strings, their frequency in the corpora, and token
windows whose labels line up with the characters they cover."""

from __future__ import annotations

import numpy as np
import pytest

from llm_workings import zoo
from llm_workings.data import load_corpus
from llm_workings.data.text_labels import inside_quotation, next_char_is, speaker_line, text_windows


def test_text_properties_on_small_strings_and_on_tinyshakespeare():
    text = 'GREMIO:\nGood morrow.\n\nFirst Citizen:\nSpeak, "speak"!\nI say:'
    spk = speaker_line(text)
    assert "".join(c for c, l in zip(text, spk) if l) == "GREMIO:\nFirst Citizen:\n"  # not "I say:" (no blank before)
    assert next_char_is("a bc d")[:4].tolist() == [1, 0, 0, 1]
    quoted = inside_quotation('a "b c" d "e\nf')
    assert "".join(c for c, l in zip('a "b c" d "e\nf', quoted) if l) == '"b c""e'

    val = load_corpus("tinyshakespeare").val
    # measured on the validation text: 9090 of 111540 characters are speaker cues, 16617 precede a space
    assert 0.05 < speaker_line(val).mean() < 0.12
    assert int(next_char_is(val).sum()) == val.count(" ") - (val[0] == " ")


def test_text_windows_align_labels_to_tokens():
    tokenizer = zoo.load("austen-bpe")[1]
    text = load_corpus("austen").val[:3000]
    labels = inside_quotation(text)
    tokens, token_labels = text_windows(text, labels, tokenizer, length=32)
    pieces = [tokenizer.decode([t]) for t in tokens.flatten().tolist()]
    ends = np.cumsum([len(p) for p in pieces]) - 1
    assert token_labels.flatten().tolist() == labels[ends].tolist()
    assert "".join(pieces) == text[: len("".join(pieces))]
    with pytest.raises(ValueError, match="one label per character"):
        text_windows(text, labels[:-1], tokenizer, length=32)
