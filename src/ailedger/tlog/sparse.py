"""Reading the few entries of some types out of a long log through the type index, not by a scan.

Every entry logged through the Ledger is indexed under ``type:<its type>``. A reader that folds only some
types (authority, governance, subnets) asks for their indexes; when they are sparse (at most an eighth of
the range, and at least 1000 allowed) it reads just those leaves, else it is cheaper to scan the range.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

PAGE = 2000      # indexes asked of the store per query
RUN_READ = 2000  # at most this many consecutive leaves per read


def sparse_indexes(store: Any, types: Iterable[str], start: int, end: int) -> list[int] | None:
    """The indexes in [start, end) of the entries of ``types``, in order; None when they are not sparse
    (more than max(1000, (end - start) // 8)): then scanning the range is cheaper."""
    idxs: list[int] = []
    budget = max(1000, (end - start) // 8)
    for t in types:
        after = start - 1
        while True:
            got = [i for i in store.find(f"type:{t}", after, PAGE) if i < end]
            idxs.extend(got)
            if len(idxs) > budget:
                return None
            if len(got) < PAGE:
                break
            after = got[-1]
    return sorted(set(idxs))


def leaves_at(store: Any, idxs: list[int]) -> Iterator[tuple[int, bytes]]:
    """(index, leaf bytes) for sorted ``idxs``, each run of consecutive indexes fetched in one read."""
    i = 0
    while i < len(idxs):
        j = i
        while j + 1 < len(idxs) and idxs[j + 1] == idxs[j] + 1 and j + 1 - i < RUN_READ:
            j += 1
        for k, data in enumerate(store.leaves(idxs[i], idxs[j] + 1)):
            yield idxs[i] + k, bytes(data)
        i = j + 1


def indexed_leaves(store: Any, types: Iterable[str], start: int, end: int) -> Iterator[tuple[int, bytes]] | None:
    """The leaves in [start, end) of the entries of ``types`` found through the type index, in order; None
    when they are not sparse (see :func:`sparse_indexes`)."""
    idxs = sparse_indexes(store, types, start, end)
    return None if idxs is None else leaves_at(store, idxs)
