"""Properties of text to probe a language model for, one label per character, and a way to turn
text and its labels into token windows with one label per token.

    text = load_corpus("austen").val
    tokens, labels = text_windows(text, inside_quotation(text), tokenizer, length=128)   # [n, 128] each
    probe_layers(model, torch.from_numpy(tokens), torch.from_numpy(labels))            # analysis.probing

- `speaker_line` and `next_char_is` suit tinyshakespeare (it has no quotation marks or brackets);
- `inside_quotation` suits the Austen corpus, whose dialogue is in double quotes.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def next_char_is(text: str, chars: str = " ") -> np.ndarray:
    """1 where the following character is one of `chars` (the last character gets 0): "a word
    ends here" for chars=" ". The current character alone says little; the word so far says more."""
    labels = np.zeros(len(text), dtype=np.int64)
    labels[:-1] = [c in chars for c in text[1:]]
    return labels


def speaker_line(text: str) -> np.ndarray:
    """1 on every character (newline included) of a speaker cue, such as "GLOUCESTER:" or "First
    Citizen:". In tinyshakespeare every line after a blank line is one, and a model must look back to
    that blank line to know it: the letters of "First Citizen" are ordinary letters."""
    labels = np.zeros(len(text), dtype=np.int64)
    start, previous_blank = 0, True
    for line in text.split("\n"):
        end = start + len(line)
        if previous_blank and line.endswith(":"):
            labels[start : min(end + 1, len(text))] = 1
        previous_blank, start = line == "", end + 1
    return labels


def inside_quotation(text: str, mark: str = '"') -> np.ndarray:
    """1 on the characters of a quotation, both marks included. Marks pair up within a line (a
    paragraph in the Austen corpus, where a quotation that runs on opens again on the next line)."""
    labels = np.zeros(len(text), dtype=np.int64)
    inside = False
    for i, c in enumerate(text):
        if c == "\n":
            inside = False
        elif c == mark:
            inside = not inside
        labels[i] = inside or c == mark  # both marks belong to the quotation
    return labels


def text_windows(
    text: str, char_labels: Any, tokenizer: Any, length: int, n_windows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Cut `text` into consecutive windows of `length` tokens -> (tokens, labels), both
    `[n_windows, length]`; a token's label is the label of its last character, so this works for a
    char tokenizer (one character per token) and for BPE alike."""
    char_labels = np.asarray(char_labels)
    if char_labels.shape != (len(text),):
        raise ValueError(f"expected one label per character ({len(text)}), got shape {list(char_labels.shape)}")
    ids = tokenizer.encode(text, add_special_tokens=False)
    pieces = {i: tokenizer.decode([i]) for i in set(ids)}
    ends = np.cumsum([len(pieces[i]) for i in ids]) - 1
    if len(ids) == 0 or ends[-1] != len(text) - 1:
        raise ValueError(
            "the tokens do not decode back to the text character for character (is some character "
            "outside the tokenizer's vocabulary, or split across tokens?)"
        )
    available = len(ids) // length
    n_windows = available if n_windows is None else n_windows
    if not 0 < n_windows <= available:
        raise ValueError(f"the text holds {available} windows of {length} tokens; asked for {n_windows}")
    n = n_windows * length
    tokens = np.asarray(ids[:n], dtype=np.int64).reshape(n_windows, length)
    return tokens, char_labels[ends[:n]].reshape(n_windows, length)
