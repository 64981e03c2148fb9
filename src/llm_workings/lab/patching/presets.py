"""A prompt pair with a known answer for each bundled model: what the page loads first, and what its
lesson and tests check (docs/lessons/patching.md gives the measured numbers)."""

from __future__ import annotations

from typing import Any

# induction-2l reads task tokens: token 0 first (as the repeated-token task starts), ten random tokens
# A, then A's first six again; the corrupted run replaces the first copy by ten other tokens B. After the
# second copy's A[5], induction predicts A[6] (103) in the clean run and B[6] (126) in the corrupted one.
_A = [15, 36, 46, 50, 107, 72, 103, 108, 105, 60]
_B = [64, 28, 78, 38, 43, 35, 126, 47, 38, 28]

PRESETS: dict[str, dict[str, Any]] = {
    "induction-2l": {
        "title": "A repeated sequence against a corrupted first copy",
        "clean": {"ids": [0, *_A, *_A[:6]]},
        "corrupted": {"ids": [0, *_B, *_A[:6]]},
        "answer": {"id": _A[6]},
        "wrong": {"id": _B[6]},
        "known": "Entering layer 1, position 7 alone (the token that followed the earlier copy of the last token) restores the answer; entering layer 0, no single position does. The previous-token head L0H2 reaches the induction heads through their keys.",
    },
    "shakespeare-char": {
        "title": "A speaker cue: a name after a blank line, or inside a sentence",
        "clean": {"text": "my love\n\nROMEO:"},
        "corrupted": {"text": "my love, ROMEO:"},
        "answer": {"text": "\n"},
        "wrong": {"text": " "},
        "known": "After a speaker's name and colon a new line starts; after a name in the middle of a sentence a space is likelier. The blank line is read at positions 7 and 8 and carried to the colon by the later layers.",
    },
    "austen-bpe": {
        "title": "Inside against outside a quotation",
        "clean": {"text": '"You are very kind'},
        "corrupted": {"text": "And you are very kind"},
        "answer": {"text": ',"'},
        "wrong": {"text": ","},
        "known": "Inside a quotation the model closes it (,\") where outside it writes a comma. Entering layer 0 the opening quote's position restores most of the answer; by the last layer it has moved to the last position.",
    },
    "modadd-113": {
        "title": "Two operands: a + b = ?",
        "clean": {"ids": [17, 42, 113]},
        "corrupted": {"ids": [30, 42, 113]},
        "answer": {"id": 59},
        "wrong": {"id": 72},
        "known": "17 + 42 = 59 (mod 113) against 30 + 42 = 72. Entering the block only the first operand's position restores the answer; after attention (resid_mid) only the '=' position does: attention moved the operand to where the answer is read.",
    },
}
