"""Real English text to train small language models on, shipped inside the package.

Two public-domain corpora live in the `corpora/` folder next to this module (see
`corpora/NOTICE.md` there for their provenance and sizes):

- ``"tinyshakespeare"``: about 1.1 MB of Shakespeare, the corpus of char-rnn and of
  nanoGPT's ``shakespeare_char`` example.
- ``"austen"``: Jane Austen's six completed novels, about 4 MB, stored xz-compressed
  and unpacked in memory when loaded.

Only the packaged copies are read; nothing outside the installed package is touched,
so the corpora work offline and from a wheel.

Every corpus comes with a fixed train/validation split made on the characters of the
text, before any tokenizer sees it: the first ``int(len(text) * 0.9)`` characters are
for training and the rest for validation. That is exactly how nanoGPT's
``data/shakespeare_char/prepare.py`` (Andrej Karpathy) splits the text, which is what
lets character-level results on tinyshakespeare be compared with nanoGPT's figures.
"""

from __future__ import annotations

import functools
import lzma
from dataclasses import dataclass
from importlib import resources

__all__ = ["CORPORA", "Corpus", "load_corpus"]

TRAIN_FRACTION = 0.9


@dataclass(frozen=True)
class Corpus:
    """A loaded text and its fixed character-level split (``train + val == text``)."""

    name: str
    text: str
    train: str  # text[: int(len(text) * 0.9)]
    val: str  # text[int(len(text) * 0.9):]
    source: str  # one-line credit, from corpora/NOTICE.md


# name -> (file in the corpora/ folder, whether it is xz-compressed, credit line)
_FILES: dict[str, tuple[str, bool, str]] = {
    "tinyshakespeare": (
        "tinyshakespeare.txt",
        False,
        "Tiny Shakespeare, compiled by Andrej Karpathy for char-rnn (data/tinyshakespeare/input.txt); text public domain.",
    ),
    "austen": (
        "austen.txt.xz",
        True,
        (
            "Jane Austen's six completed novels, extracted from the Debian package r-cran-janeaustenr "
            "(packaging MIT, Julia Silge); text public domain."
        ),
    ),
}

CORPORA: tuple[str, ...] = tuple(_FILES)


def _read_packaged(filename: str) -> bytes:
    return (resources.files("llm_workings.data") / "corpora" / filename).read_bytes()


@functools.cache
def load_corpus(name: str) -> Corpus:
    """Load a packaged corpus by name (one of `CORPORA`) and split it 90/10 by characters.

    The result is cached, so asking again for the same corpus costs nothing; a `Corpus`
    is immutable and its strings can be shared safely.

    Raises ValueError, naming the available corpora, for an unknown name.
    """
    if name not in _FILES:
        raise ValueError(f"unknown corpus {name!r}; available: {', '.join(CORPORA)}")
    filename, compressed, source = _FILES[name]
    raw = _read_packaged(filename)
    if compressed:
        raw = lzma.decompress(raw)
    text = raw.decode("utf-8")
    n = len(text)
    cut = int(n * TRAIN_FRACTION)
    return Corpus(name=name, text=text, train=text[:cut], val=text[cut:], source=source)
