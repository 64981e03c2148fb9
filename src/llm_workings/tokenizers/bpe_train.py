"""Learning BPE merges, counting pairs incrementally so that thousands of merges take seconds.

Byte-pair encoding (Sennrich et al. 2016, after Gage 1994) starts from a text as a list of
bytes and repeats: find the most frequent adjacent pair of tokens, give it a new id, and
replace every occurrence of the pair with that id. The list of merges, in order, is the
tokenizer.

Recounting every pair of the whole text after each merge costs (text length x merges):
hours for a 4k vocabulary on a megabyte. Three observations make it fast:

1. Text is first cut into chunks (words with their leading space, numbers, punctuation
   runs) and merges never cross a chunk boundary, so only the *distinct* chunks matter,
   each with its count: "the" is one chunk seen 20,000 times, not 20,000 chunks.
2. A merge changes only the chunks that contain its pair. An index pair -> chunks lets
   us visit just those, subtract their old pairs and add their new ones.
3. The most frequent pair comes off a heap. Counts in the heap go stale when they fall;
   a popped entry whose count no longer matches is pushed back with its current count
   ("lazy invalidation"), so a valid pop is the true maximum.

Ties in count go to the smallest pair of ids (first id, then second): a fixed rule, so
training twice on the same text gives the same merges.

How to use (BPETokenizer.train calls this; you rarely need it directly):

    from collections import Counter
    merges = learn_merges(Counter(["hug", "pug", "hug"]), n_merges=2)
    # [(117, 103), (104, 256)]: "u"+"g" (3 times), then "h"+"ug" (twice)
"""

from __future__ import annotations

import heapq
import warnings
from collections import defaultdict
from collections.abc import Mapping
from itertools import pairwise

from tqdm.auto import tqdm


def merge_pair(ids: list[int], a: int, b: int, new_id: int) -> list[int]:
    """`ids` with every non-overlapping (a, b), scanned left to right, replaced by `new_id`."""
    out = []
    i, n = 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == a and ids[i + 1] == b:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def learn_merges(chunk_counts: Mapping[str, int], n_merges: int, progress: bool = False) -> list[tuple[int, int]]:
    """Up to `n_merges` merges, most frequent pair first. Merge k creates token id 256 + k.

    `chunk_counts` maps each distinct pre-split chunk to how often it occurs. Fewer merges
    come back (with a warning) when the text runs out of pairs. A pair whose merged bytes
    already form a token (say "ab"+"c" after "a"+"bc") would be passed over, as a second id
    for the same bytes could not live in Hugging Face's vocabulary (bytes -> one id); we have
    not seen that happen on real or random text.
    """
    words = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
    freqs = list(chunk_counts.values())
    token_bytes = [bytes([i]) for i in range(256)]
    known = set(token_bytes)

    pair_counts: dict[tuple[int, int], int] = defaultdict(int)
    where: dict[tuple[int, int], set[int]] = defaultdict(set)  # pair -> chunks that have (or had) it
    for w, (ids, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in pairwise(ids):
            pair_counts[pair] += freq
            where[pair].add(w)
    # heapq is a min-heap: store -count, and the pair itself breaks ties (smallest first).
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: list[tuple[int, int]] = []
    with tqdm(total=n_merges, desc="BPE merges", unit="merge", disable=not progress) as bar:
        while len(merges) < n_merges and heap:
            neg_count, pair = heapq.heappop(heap)
            count = pair_counts.get(pair, 0)
            if count != -neg_count:
                # Stale. Counts of existing pairs only fall (new pairs all contain the new id),
                # so the current count is lower: requeue it, unless the pair is gone.
                if count > 0:
                    heapq.heappush(heap, (-count, pair))
                continue
            a, b = pair
            merged = token_bytes[a] + token_bytes[b]
            if merged in known:
                continue  # passed over for good: dropped from the heap, never requeued
            new_id = len(token_bytes)
            merges.append(pair)
            token_bytes.append(merged)
            known.add(merged)

            new_pairs = set()
            for w in where.pop(pair):
                old = words[w]
                new = merge_pair(old, a, b, new_id)
                if len(new) == len(old):
                    continue  # the index is allowed to be stale: this chunk lost the pair earlier
                freq = freqs[w]
                for p in pairwise(old):
                    pair_counts[p] -= freq
                for p in pairwise(new):
                    pair_counts[p] += freq
                    if new_id in p:
                        new_pairs.add(p)
                        where[p].add(w)
                words[w] = new
            del pair_counts[pair]
            for p in new_pairs:
                heapq.heappush(heap, (-pair_counts[p], p))
            bar.update(1)
    if len(merges) < n_merges:
        warnings.warn(
            f"the training text ran out of pairs to merge after {len(merges)} merges "
            f"(asked for {n_merges}): the vocabulary is smaller than asked",
            stacklevel=3,
        )
    return merges
