"""The LogStore contract: a store only reads and writes; it never computes hashes.

The integration algorithm lives in :mod:`ailedger.tlog.log` and runs inside a write
transaction that the store provides (``with store.writer() as w``), so several
processes appending to one store serialise on the store's own lock and always
see the size they extend.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from itertools import chain, compress, repeat
from operator import ne
from typing import NamedTuple, Protocol

from ailedger.errors import StorageError

__all__ = ["INT64_MAX", "STORE_FORMAT", "STRIPE", "Edge", "LeafRow", "LogStore", "ReadView", "WriteTxn", "check_format",
           "levels_of_keyed", "merge_newest", "merge_oldest", "node_key", "runs_of", "split_runs", "stripe_hashes",
           "stripe_keys", "stripe_nodes", "stripe_rows", "stripe_writes", "stripes_of_nodes"]

# sizes and indexes are stored as signed 64-bit integers: a larger one names nothing
INT64_MAX = 2**63 - 1


# The stores' format (meta key "format"). 1 (no key): one ``terms`` row per (term, entry). 2: a term that
# indexes consecutive entries of one append is stored as one ``term_runs`` row (term, first, last); the
# others stay ``terms`` rows. Readers read both tables; opening a format-1 store migrates it (runs of
# consecutive ``terms`` rows become ``term_runs`` rows, in one transaction). 3: interior tree nodes are
# stored per stripe, one ``node_stripes`` row per 256 consecutive nodes of one level (key
# ``node_key(level, index >> 8)``, value their hashes concatenated in index order; the partial stripe at
# a level's right edge is rewritten by the next append) instead of one ``nodes`` row per node; opening a
# format-2 store moves its ``nodes`` rows into stripes. 4 (SQLite's layout only; PostgreSQL's schema is
# unchanged): the dedup keys in three levels (``dedup0``, ``dedup1``, ``dedup``; sqlite._fold), so that an
# append of a few entries dirties a few pages of a small table rather than one page of the whole index per
# entry; a format-3 store's ``dedup`` becomes the oldest level as it is. 5 (SQLite's layout only again): the
# ``terms`` rows in four levels (``terms0``, ``terms1``, ``terms2``, ``terms``; sqlite._fold_terms) for the same
# reason (an entry's own subject is a random key in the index); a format-4 store's ``terms`` becomes the oldest
# level as it is. docs/ledger.md, "Store format".
STORE_FORMAT = 5

STRIPE_BITS = 8
STRIPE = 1 << STRIPE_BITS  # nodes per stripe row: a tlog-tiles tile's width
_INDEX_MASK = (1 << 56) - 1
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)


def check_format(value: str | None) -> int:
    """The store format a ``format`` meta value names (None: 1); StorageError for one this code cannot read."""
    if value is None:
        return 1
    try:
        fmt = int(value)
    except ValueError:
        raise StorageError(f"store format {value!r} is not a number: not a store ailedger wrote") from None
    if fmt > STORE_FORMAT:
        raise StorageError(f"store format {fmt} is newer than this ailedger reads ({STORE_FORMAT}): upgrade ailedger")
    return fmt


def split_runs(start: int, term_lists: Iterable[Sequence[str]]
               ) -> tuple[list[tuple[str, int]], list[tuple[str, int, int]]]:
    """The index rows of entries ``start, start+1, ...`` with these terms: (term, idx) for a term on one
    entry alone, (term, first, last) for each run of consecutive entries sharing a term (an append's
    ``type:`` and ``signer:`` terms: one row per append instead of one per entry)."""
    if not isinstance(term_lists, (list, tuple)):
        term_lists = list(term_lists)
    by_column = _split_columns(start, term_lists)
    if by_column is not None:
        return by_column
    return _split_runs_loop(start, term_lists)


def _split_runs_loop(start: int, term_lists: Iterable[Sequence[str]]
                     ) -> tuple[list[tuple[str, int]], list[tuple[str, int, int]]]:
    """:func:`split_runs` of any batch: a step per term."""
    at: dict[str, list[int]] = {}
    get = at.get
    for i, ts in enumerate(term_lists, start):
        for t in ts:
            ixs = get(t)
            if ixs is None:
                at[t] = [i]
            elif ixs[-1] != i:  # a term given twice for one entry is one row
                ixs.append(i)
    singles: list[tuple[str, int]] = []
    runs: list[tuple[str, int, int]] = []
    for t, ixs in at.items():
        if len(ixs) == 1:
            singles.append((t, ixs[0]))
        elif ixs[-1] - ixs[0] == len(ixs) - 1:  # one run (the common case)
            runs.append((t, ixs[0], ixs[-1]))
        else:
            for first, last in runs_of(ixs):
                if first == last:
                    singles.append((t, first))
                else:
                    runs.append((t, first, last))
    return singles, runs


def _split_columns(start: int, term_lists: Sequence[Sequence[str]]
                   ) -> tuple[list[tuple[str, int]], list[tuple[str, int, int]]] | None:
    """:func:`split_runs` of the common append, by columns with C loops (no Python step per entry or term), or
    None when the append is not of that shape. The shape: every entry has the same number of terms, and in each
    position (column) every term stands on one stretch of consecutive entries only -- one stretch (the
    ``type:`` of every entry), a few (the ``signer:`` of each request of a group), or one entry each (a subject
    of its own) -- and no term is in two columns. The rows are those of the general loop (a stretch of one
    entry is a single row, a longer one a run); only their order may differ, which no reader sees."""
    n = len(term_lists)
    if n < 2:
        return None
    widths = set(map(len, term_lists))
    if len(widths) != 1:
        return None
    runs: list[tuple[str, int, int]] = []
    singles: list[tuple[str, int]] = []
    own: list[tuple[str, ...]] = []  # columns of terms of their own entry each
    sets: list[set[str]] = []
    last = start + n - 1
    for col in zip(*term_lists):
        t = col[0]
        if col[-1] == t and col.count(t) == n:  # one stretch: the whole append
            runs.append((t, start, last))
            sets.append({t})
            continue
        values = set(col)
        if len(values) == n:  # one entry each
            own.append(col)
            sets.append(values)
            continue
        # a few stretches: where the term changes, and each term on one stretch only
        firsts = [0, *compress(range(1, n), map(ne, col[1:], col[:-1]))]
        if len(firsts) != len(values):
            return None
        ends = [*firsts[1:], n]
        for a, b in zip(firsts, ends):
            if b - a == 1:
                singles.append((col[a], start + a))
            else:
                runs.append((col[a], start + a, start + b - 1))
        sets.append(values)
    for i in range(1, len(sets)):
        for other in sets[:i]:
            if not sets[i].isdisjoint(other):  # a term in two columns (or twice in one entry)
                return None
    idxs = range(start, start + n)
    if len(own) == 1:
        singles.extend(zip(own[0], idxs))
    elif own:
        k = len(own)
        singles.extend(zip(chain.from_iterable(zip(*own)), chain.from_iterable(map(repeat, idxs, repeat(k)))))
    return singles, runs


def runs_of(ixs: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Maximal runs (first, last) of consecutive integers in an increasing sequence."""
    first = prev = None
    for i in ixs:
        if prev is None:
            first = prev = i
        elif i == prev + 1:
            prev = i
        elif i != prev:
            yield first, prev  # type: ignore[misc]
            first = prev = i
    if prev is not None:
        yield first, prev  # type: ignore[misc]


def merge_oldest(singles: Iterable[int], runs: Iterable[tuple[int, int]], after: int, limit: int) -> list[int]:
    """The ``limit`` smallest indices > ``after`` among single rows and (first, last) runs."""
    got = set(singles)
    for first, last in runs:
        lo = max(first, after + 1)
        got.update(range(lo, min(last, lo + limit - 1) + 1))
    return sorted(i for i in got if i > after)[:limit]


def merge_newest(singles: Iterable[int], runs: Iterable[tuple[int, int]], offset: int, limit: int) -> list[int]:
    """Indices newest first among single rows and (first, last) runs, skipping the ``offset`` newest."""
    need = offset + limit
    got = set(singles)
    for first, last in runs:
        got.update(range(max(first, last - need + 1), last + 1))
    return sorted(got, reverse=True)[offset:need]


def node_key(level: int, index: int) -> int:
    """Pack a node id into one integer key (level >= 1; level-0 hashes are the leaves')."""
    return (level << 56) | index


def stripe_writes(nodes: Sequence[tuple[int, bytes]], read: Callable[[list[int]], dict[int, bytes]]
                  ) -> tuple[list[tuple[int, bytes]], list[int]]:
    """The ``node_stripes`` rows (key, hashes) holding new interior nodes given as (:func:`node_key`, hash),
    and which of those keys replace a stored partial stripe: :func:`stripe_rows` of :func:`levels_of_keyed`."""
    return stripe_rows(levels_of_keyed(nodes), read)


def levels_of_keyed(nodes: Sequence[tuple[int, bytes]]) -> list[tuple[int, int, bytes]]:
    """Interior nodes given as (:func:`node_key`, hash) per level: (level, first index, their hashes
    concatenated in index order), lowest level first; the nodes of one level must be consecutive (checked).
    No step per node in Python: one sort, then slices per level."""
    if not nodes:
        return []
    srt = sorted(nodes, key=_first)
    keys = list(map(_first, srt))
    hashes = list(map(_second, srt))
    if set(map(len, hashes)) != {32}:
        raise StorageError("a tree node hash to store is not 32 bytes")
    levels: list[tuple[int, int, bytes]] = []
    at = 0
    while at < len(keys):
        lv = keys[at] >> 56
        end = bisect_left(keys, (lv + 1) << 56, at)
        if keys[end - 1] - keys[at] != end - 1 - at:
            raise StorageError(f"tree nodes to store at level {lv} are not consecutive")
        levels.append((lv, keys[at] & _INDEX_MASK, b"".join(hashes[at:end])))
        at = end
    return levels


def stripe_rows(levels: Sequence[tuple[int, int, bytes]], read: Callable[[list[int]], dict[int, bytes]]
                ) -> tuple[list[tuple[int, bytes]], list[int]]:
    """The ``node_stripes`` rows (key, hashes) holding new interior nodes given per level as (level, first
    index, their hashes concatenated: ``CompactRange.extend_levels``), and which of those keys replace a stored
    partial stripe. A log grows to the right: at each level the new nodes follow the ones stored (checked).
    ``read(keys)`` returns the stored stripes among ``keys`` (the partial ones these nodes extend)."""
    if not levels:
        return [], []
    partial = [node_key(lv, first >> STRIPE_BITS) for lv, first, _ in levels if first & (STRIPE - 1)]
    stored = read(partial) if partial else {}
    out: list[tuple[int, bytes]] = []
    width = 32 * STRIPE
    for lv, first, body in levels:
        if not 0 < lv < 64 or not 0 <= first <= _INDEX_MASK:
            raise StorageError(f"no tree node ({lv}, {first}) to store")
        if len(body) % 32 or not body:
            raise StorageError("a tree node hash to store is not 32 bytes")
        head = first & (STRIPE - 1)
        prefix = b""
        if head:
            prefix = bytes(stored.get(node_key(lv, first >> STRIPE_BITS), b""))
            if len(prefix) != 32 * head:
                raise StorageError(f"store is missing tree nodes before ({lv}, {first}): its stripe holds "
                                   f"{len(prefix) // 32} of {head}")
        buf = prefix + body if prefix else body
        s0 = first >> STRIPE_BITS
        out.extend((node_key(lv, s0 + k), buf[k * width : (k + 1) * width]) for k in range(-(-len(buf) // width)))
    return out, partial


class Edge:
    """The partial stripe at the right edge of each level of the tree, as a store's last committed append wrote
    it, and the tree size it belongs to: the next append extends these, and when its transaction finds the log
    still at that size (an append-only log: the same size is the same tree) it need not read them back. Any
    other size (another writer, a transaction that failed) reads them from the store. Kept by a store object
    under its write lock; replaced only once a transaction that wrote nodes has committed."""

    def __init__(self, size: int = -1, stripes: dict[int, tuple[int, bytes]] | None = None) -> None:
        self.size = size
        self.stripes: dict[int, tuple[int, bytes]] = stripes or {}  # level -> (key, hashes: fewer than STRIPE)

    def known(self, size: int | None) -> dict[int, bytes] | None:
        """The partial stripes by key when the log is at this edge's size, else None."""
        if size is None or size != self.size:
            return None
        return {key: body for key, body in self.stripes.values()}

    def after(self, rows: Sequence[tuple[int, bytes]], known: bool) -> dict[int, tuple[int, bytes]]:
        """The edge once ``rows`` (``stripe_rows``) are written over it (over nothing known: ``known`` False)."""
        new = dict(self.stripes) if known else {}
        for key, body in rows:
            lv = key >> 56
            if len(body) < 32 * STRIPE:
                new[lv] = (key, bytes(body))
            else:
                new.pop(lv, None)  # a full stripe: the level's next one starts empty
        return new


def stripes_of_nodes(rows: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, bytes]]:
    """``node_stripes`` rows from per-node rows (:func:`node_key`, hash) in key order: the format 2 -> 3
    migration. A node missing in between (a damaged store) becomes 32 zero bytes, which the audit reports as
    a node that does not match the entries under it, as it would have reported the missing one."""
    cur_key: int | None = None
    parts: list[bytes] = []
    for key, h in rows:
        lv, ix = key >> 56, key & _INDEX_MASK
        skey = node_key(lv, ix >> STRIPE_BITS)
        if skey != cur_key:
            if cur_key is not None:
                yield cur_key, b"".join(parts)
            cur_key, parts = skey, []
        at = ix & (STRIPE - 1)
        if at > len(parts):
            parts.extend([bytes(32)] * (at - len(parts)))
        if at == len(parts):
            parts.append(bytes(h)[:32].ljust(32, b"\0"))
    if cur_key is not None:
        yield cur_key, b"".join(parts)


def stripe_keys(ids: Iterable[tuple[int, int]]) -> list[int]:
    """The ``node_stripes`` keys holding these interior nodes (level >= 1)."""
    return list(dict.fromkeys(node_key(lv, ix >> STRIPE_BITS) for lv, ix in ids))


def stripe_hashes(ids: Iterable[tuple[int, int]], stripes: dict[int, bytes]) -> dict[tuple[int, int], bytes]:
    """The hashes of interior nodes ``ids`` found in ``stripes`` (key -> concatenated hashes)."""
    out: dict[tuple[int, int], bytes] = {}
    for lv, ix in ids:
        blob = stripes.get(node_key(lv, ix >> STRIPE_BITS))
        if blob is None:
            continue
        at = 32 * (ix & (STRIPE - 1))
        h = bytes(blob[at : at + 32])
        if len(h) == 32:
            out[(lv, ix)] = h
    return out


def stripe_nodes(rows: Iterable[tuple[int, bytes]]) -> Iterator[tuple[int, int, bytes]]:
    """(level, index, hash) of every node in ``node_stripes`` rows given in key order."""
    for key, blob in rows:
        lv, base = key >> 56, (key & _INDEX_MASK) << STRIPE_BITS
        b = bytes(blob)
        for k in range(len(b) // 32):
            yield lv, base + k, b[32 * k : 32 * k + 32]


class LeafRow(NamedTuple):
    """One entry to store: its bytes, its RFC 6962 leaf hash and its index terms (a named tuple: made
    once per entry on the write path, where a frozen dataclass cost twice as much)."""

    data: bytes
    hash: bytes
    terms: tuple[str, ...] = ()


class ReadView(Protocol):
    def size(self) -> int: ...
    def node_hashes(self, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]: ...
    def indices_of(self, hashes: Sequence[bytes]) -> dict[bytes, int]: ...


class WriteTxn(ReadView, Protocol):
    def add_leaves(self, start: int, rows: Sequence[LeafRow]) -> None:
        """Store rows at start..; raise ConflictError if start != size and DuplicateLeafError
        (leaving the transaction to be rolled back) if a leaf hash is already stored."""
    def add_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None: ...
    def add_node_keys(self, nodes: Sequence[tuple[int, bytes]]) -> None:
        """Store interior nodes given as (:func:`node_key`, hash) pairs (the log's batched append)."""
    def add_node_levels(self, levels: Sequence[tuple[int, int, bytes]]) -> None:
        """Store interior nodes given per level as (level, first index, hashes concatenated) (the log's
        batched append: ``CompactRange.extend_levels``)."""
    def put_checkpoint(self, size: int, note: bytes) -> None: ...


class LogStore(ReadView, Protocol):
    def writer(self) -> AbstractContextManager[WriteTxn]: ...
    def leaves(self, start: int, end: int) -> list[bytes]: ...
    def leaf_hashes(self, start: int, end: int) -> list[bytes]: ...
    def iter_leaves(self, start: int, end: int, batch: int = 10000) -> Iterator[tuple[int, bytes, bytes]]: ...
    def iter_nodes(self) -> Iterator[tuple[int, int, bytes]]: ...
    def latest_checkpoint(self) -> bytes | None: ...
    def checkpoint_at(self, size: int) -> bytes | None: ...
    def checkpoints(self) -> list[tuple[int, bytes]]: ...
    def checkpoint_size_at_least(self, size: int) -> int | None:
        """The smallest size >= ``size`` that has a stored checkpoint (tile servers: which partial
        tiles some checkpoint needs)."""
    def find(self, term: str, after: int = -1, limit: int = 1000) -> list[int]: ...
    def find_newest(self, term: str, offset: int = 0, limit: int = 50) -> list[int]:
        """Indices indexed under ``term``, newest first, skipping the ``offset`` newest (list pages)."""
    def count(self, term: str) -> int:
        """How many entries are indexed under ``term``."""
    def checkpoint_count(self) -> int: ...
    def checkpoints_newest(self, offset: int = 0, limit: int = 50) -> list[tuple[int, bytes]]:
        """Stored checkpoints (size, note), largest size first, skipping the ``offset`` largest."""

    def terms_present(self, terms: Sequence[str]) -> set[str]:
        """Which of ``terms`` index at least one entry (one query: a write group's lookups)."""
    def index_row_count(self) -> int: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def close(self) -> None: ...
