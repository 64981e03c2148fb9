"""Packaged corpora: the shipped bytes are the ones the NOTICE describes, split 90/10 like nanoGPT."""

from __future__ import annotations

import hashlib
import lzma
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from llm_workings.data import CORPORA, Corpus, load_corpus

REPO = Path(__file__).resolve().parents[2]
PACKAGED = resources.files("llm_workings.data") / "corpora"


def test_the_corpora_are_the_two_shipped_texts():
    assert CORPORA == ("tinyshakespeare", "austen")


def test_shipped_tinyshakespeare_matches_its_notice():
    raw = (PACKAGED / "tinyshakespeare.txt").read_bytes()
    assert len(raw) == 1_115_394
    assert hashlib.md5(raw).hexdigest() == "6fb458f1232090904fb40fe944165e91"


def test_shipped_austen_unpacks_to_the_size_in_its_notice():
    raw = lzma.decompress((PACKAGED / "austen.txt.xz").read_bytes())
    assert len(raw) == 4_004_232


def test_tinyshakespeare_loads_as_the_exact_file_text():
    corpus = load_corpus("tinyshakespeare")
    assert isinstance(corpus, Corpus)
    assert corpus.name == "tinyshakespeare"
    assert corpus.text.encode("utf-8") == (PACKAGED / "tinyshakespeare.txt").read_bytes()
    assert corpus.text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert "Karpathy" in corpus.source


def test_austen_loads_decompressed_and_decoded():
    corpus = load_corpus("austen")
    assert corpus.name == "austen"
    assert len(corpus.text.encode("utf-8")) == 4_004_232
    # One non-ASCII character (a pound sign) makes the text one character shorter than its bytes.
    assert len(corpus.text) < 4_004_232
    assert "£" in corpus.text
    assert "It is a truth universally acknowledged" in corpus.text
    assert corpus.text.startswith("SENSE AND SENSIBILITY\n")
    assert "janeaustenr" in corpus.source


@pytest.mark.parametrize("name", ["tinyshakespeare", "austen"])
def test_split_is_nanogpt_character_split(name):
    corpus = load_corpus(name)
    n = len(corpus.text)
    cut = int(n * 0.9)
    assert corpus.train == corpus.text[:cut]
    assert corpus.val == corpus.text[cut:]
    assert corpus.train + corpus.val == corpus.text
    assert len(corpus.val) > 0


def test_tinyshakespeare_split_sizes_are_nanogpts():
    # nanoGPT's data/shakespeare_char/prepare.py reports these two sizes.
    corpus = load_corpus("tinyshakespeare")
    assert (len(corpus.train), len(corpus.val)) == (1_003_854, 111_540)


def test_loaded_corpora_are_cached_and_frozen():
    first = load_corpus("tinyshakespeare")
    assert load_corpus("tinyshakespeare") is first
    with pytest.raises(AttributeError):
        first.text = "changed"  # type: ignore[misc]


def test_unknown_corpus_names_the_available_ones():
    with pytest.raises(ValueError) as excinfo:
        load_corpus("shakespeare")
    message = str(excinfo.value)
    assert "'shakespeare'" in message
    for name in CORPORA:
        assert name in message


def test_corpora_files_are_declared_as_package_data():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "corpora/*" in config["tool"]["setuptools"]["package-data"]["llm_workings.data"]
    shipped = {entry.name for entry in PACKAGED.iterdir()}
    assert {"tinyshakespeare.txt", "austen.txt.xz", "NOTICE.md"} <= shipped


def test_the_loader_reads_only_packaged_files():
    source = (REPO / "src" / "llm_workings" / "data" / "corpora.py").read_text()
    for outside in ("/work", "/shared", "../", "os.path", "open("):
        assert outside not in source
    assert 'resources.files("llm_workings.data") / "corpora"' in source


def test_data_layer_does_not_import_torch():
    code = (
        "import sys\n"
        "import llm_workings.data.corpora, llm_workings.data.tasks\n"
        "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('torch'))\n"
        "assert hasattr(llm_workings.data.corpora, 'load_corpus')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
