"""Baselines that a language model must beat: unigram and bigram models of the same tokens.

Both are fit on the training ids with add-one (Laplace) smoothing, so an unseen token or pair still
has a probability, and scored on the validation ids in bits per byte of validation text.

    ngram_bits_per_byte(train_ids, val_ids, d_vocab, val_bytes)   # {'unigram_bits_per_byte': ..., 'bigram_...': ...}
"""

from __future__ import annotations

import math

import numpy as np


def ngram_bits_per_byte(train_ids: np.ndarray, val_ids: np.ndarray, d_vocab: int, val_bytes: int) -> dict[str, float]:
    train_ids, val_ids = np.asarray(train_ids, np.int64), np.asarray(val_ids, np.int64)
    unigram = np.bincount(train_ids, minlength=d_vocab) + 1.0
    unigram_logp = np.log(unigram / unigram.sum())
    # the same tokens as the model is scored on: every validation token after the first
    unigram_nats = -unigram_logp[val_ids[1:]].sum()
    pairs = np.bincount(train_ids[:-1] * d_vocab + train_ids[1:], minlength=d_vocab * d_vocab).reshape(d_vocab, d_vocab) + 1.0
    bigram_logp = np.log(pairs / pairs.sum(1, keepdims=True))
    bigram_nats = -bigram_logp[val_ids[:-1], val_ids[1:]].sum()
    to_bpb = 1 / (math.log(2) * val_bytes)
    return {"unigram_bits_per_byte": float(unigram_nats * to_bpb), "bigram_bits_per_byte": float(bigram_nats * to_bpb)}
