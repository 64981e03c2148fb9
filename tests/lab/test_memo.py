"""lab/memo.py: built once per key, the least recently used dropped past the size."""

from __future__ import annotations

from llm_workings.lab.memo import Lru


def test_a_key_is_built_once_and_the_least_recently_used_is_dropped():
    built = []
    cache = Lru(2)

    def get(key):
        return cache.get(key, lambda: built.append(key) or key * 10)

    assert [get(1), get(2), get(1)] == [10, 20, 10] and built == [1, 2]
    get(3)  # drops 2, the least recently used (1 was just read)
    assert get(1) == 10 and built == [1, 2, 3]
    get(2)
    assert built == [1, 2, 3, 2]
