"""Our pure-Python byte-level BPE against Hugging Face `tokenizers` (Rust), side by side.

    python bench/bench_bpe.py [--corpus PATH] [--vocab-size 4096] [--repeats 3] [--train-bytes 1000000]

Training: both learn a vocabulary of --vocab-size ids (256 bytes + merges + <|endoftext|>)
from the first --train-bytes bytes of the corpus (cut back to a character boundary):
ours with `BPETokenizer.train`, theirs with `BpeTrainer` behind a ByteLevel pre-tokenizer.
Target: ours under 30 s.

Encoding: the whole corpus, in MB/s of UTF-8, with the merges we learned, three ways: our
`encode` (a fresh tokenizer each run, so its chunk cache starts cold), our `encode_array`,
and the same merges in Hugging Face (`to_hf()`). The script first checks that all three give
the same ids. Medians of --repeats runs.
"""

from __future__ import annotations

import argparse
import lzma
import os
import statistics
import time
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from llm_workings.tokenizers import BPETokenizer

DEFAULT_CORPUS = Path(__file__).resolve().parents[1] / "src/llm_workings/data/corpora/tinyshakespeare.txt"
TARGET_S = 30.0


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".xz":
        raw = lzma.decompress(raw)
    return raw.decode("utf-8")


def first_bytes(text: str, n: int) -> str:
    """The first n bytes of text's UTF-8, moved back to the start of a character if n falls inside one."""
    raw = text.encode("utf-8")[: n + 1]
    cut = min(n, len(raw))
    while cut < len(raw) and cut > 0 and raw[cut] & 0b1100_0000 == 0b1000_0000:
        cut -= 1  # a continuation byte: the character began earlier
    return raw[:cut].decode("utf-8")


def median_time(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def train_hf(text: str, vocab_size: int) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=0,
    )
    tok.train_from_iterator([text], trainer=trainer)
    return tok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="UTF-8 text file (.xz allowed)")
    parser.add_argument("--vocab-size", type=int, default=4096)
    parser.add_argument("--train-bytes", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    text = read_text(args.corpus)
    sample = first_bytes(text, args.train_bytes)
    mb_sample, mb_text = len(sample.encode("utf-8")) / 1e6, len(text.encode("utf-8")) / 1e6
    print(
        f"corpus {args.corpus} ({mb_text:.2f} MB); training on the first {mb_sample:.3f} MB; "
        f"vocab {args.vocab_size}; median of {args.repeats}; {os.cpu_count()} CPUs"
    )

    ours_s, ours = median_time(lambda: BPETokenizer.train(sample, args.vocab_size, progress=False), args.repeats)
    hf_s, hf_trained = median_time(lambda: train_hf(sample, args.vocab_size), args.repeats)
    print("\ntraining")
    print(f"  ours (pure Python)        {ours_s:7.2f} s   vocab {ours.vocab_size}")
    print(f"  HF tokenizers BpeTrainer  {hf_s:7.2f} s   vocab {hf_trained.get_vocab_size()}")
    print(
        f"  ours / HF time: {ours_s / hf_s:.1f}x.  Target: ours < {TARGET_S:.0f} s: {'met' if ours_s < TARGET_S else 'NOT met'}"
    )

    hf = ours.to_hf()
    reference = ours.encode(text)
    assert ours.encode_array(text).tolist() == reference, "encode_array differs from encode"
    assert hf.encode(text).ids == reference, "Hugging Face differs from encode"
    assert ours.decode(reference) == text
    print(
        f"\nencoding the whole corpus ({mb_text:.2f} MB -> {len(reference):,} tokens, "
        f"{mb_text * 1e6 / len(reference):.2f} bytes/token; all three give the same ids)"
    )

    def fresh() -> BPETokenizer:  # a new tokenizer: an empty chunk cache
        return BPETokenizer(ours.merges, ours.special_tokens)

    rows = [
        ("ours encode (cold cache)", lambda tok: tok.encode(text)),
        ("ours encode_array (cold cache)", lambda tok: tok.encode_array(text)),
    ]
    for name, fn in rows:
        seconds = statistics.median(_timed(fn, fresh()) for _ in range(args.repeats))
        print(f"  {name:32s} {mb_text / seconds:7.2f} MB/s")
    warm = fresh()
    warm.encode(text)
    seconds = statistics.median(_timed(lambda tok: tok.encode(text), warm) for _ in range(args.repeats))
    print(f"  {'ours encode (warm cache)':32s} {mb_text / seconds:7.2f} MB/s")
    seconds = statistics.median(_timed(lambda tok: tok.encode(text).ids, hf) for _ in range(args.repeats))
    print(f"  {'HF encode, same merges':32s} {mb_text / seconds:7.2f} MB/s")


def _timed(fn, tok) -> float:
    start = time.perf_counter()
    fn(tok)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
