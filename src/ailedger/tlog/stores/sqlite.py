"""SQLite LogStore: WAL, synchronous=FULL (a returned commit survives power loss),
one writer at a time across processes (BEGIN IMMEDIATE), readers never block."""

from __future__ import annotations

import functools
import sqlite3
import sys
import threading
from array import array
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Any

from ailedger.errors import ConflictError, DuplicateLeafError, StorageError
from ailedger.tlog.private import create_private_file
from ailedger.tlog.stores.base import (
    INT64_MAX,
    STORE_FORMAT,
    Edge,
    LeafRow,
    check_format,
    levels_of_keyed,
    merge_newest,
    merge_oldest,
    node_key,
    runs_of,
    split_runs,
    stripe_hashes,
    stripe_keys,
    stripe_nodes,
    stripe_rows,
    stripes_of_nodes,
)

__all__ = ["SQLiteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leaves (idx INTEGER PRIMARY KEY, hash BLOB NOT NULL, data BLOB NOT NULL);
-- dedup: the first 8 bytes of each leaf hash as an integer key (a small index, so random inserts touch
-- few pages); the full hash is always re-checked against the leaves table
CREATE TABLE IF NOT EXISTS dedup (k INTEGER PRIMARY KEY, idx INTEGER NOT NULL);
-- format 4: the dedup keys in three levels (_fold): an append inserts its keys into the small dedup0 (a few
-- pages: random keys dirty few), which is folded into dedup1 every 2^11 entries, itself folded into dedup
-- every 2^16; a key is in exactly one level
CREATE TABLE IF NOT EXISTS dedup0 (k INTEGER PRIMARY KEY, idx INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS dedup1 (k INTEGER PRIMARY KEY, idx INTEGER NOT NULL);
-- format 3: interior nodes, 256 consecutive nodes of one level per row (base.stripe_rows)
CREATE TABLE IF NOT EXISTS node_stripes (id INTEGER PRIMARY KEY, hashes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, note BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS terms (term TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (term, idx)) WITHOUT ROWID;
-- format 5: the terms rows in four levels of the same shape (_fold_terms), newest first terms0, terms1, terms2,
-- then terms: an append inserts its rows into terms0 (a few pages: random terms such as subjects dirty few),
-- folded into terms1 every 2^8 entries, that into terms2 every 2^12, that into terms every 2^16; a row is in
-- exactly one level
CREATE TABLE IF NOT EXISTS terms0 (term TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (term, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS terms1 (term TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (term, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS terms2 (term TEXT NOT NULL, idx INTEGER NOT NULL, PRIMARY KEY (term, idx)) WITHOUT ROWID;
-- format 2: a term on consecutive entries of one append is one row (base.split_runs), keyed by its last index
CREATE TABLE IF NOT EXISTS term_runs (term TEXT NOT NULL, last INTEGER NOT NULL, first INTEGER NOT NULL,
                                      PRIMARY KEY (term, last)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


PAGE_SIZE = 16384


class _Txn:
    def __init__(self, con: sqlite3.Connection, edge: Edge | None = None) -> None:
        self.con = con
        self._size: int | None = None
        self._edge = edge
        self._edge_size = -1 if edge is None else edge.size  # the size it belongs to (-1: none)
        self._start: int | None = None  # the size this transaction found
        self.new_edge: dict[int, tuple[int, bytes]] | None = None  # the edge after it (kept once committed)

    def size(self) -> int:
        if self._size is None:
            row = self.con.execute("SELECT max(idx) FROM leaves").fetchone()
            self._size = 0 if row[0] is None else row[0] + 1
            self._start = self._size
        return self._size

    def node_hashes(self, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return _node_hashes(self.con, ids)

    def indices_of(self, hashes: Sequence[bytes]) -> dict[bytes, int]:
        return _indices_of(self.con, hashes)

    def add_leaves(self, start: int, rows: Sequence[LeafRow]) -> None:
        if start != self.size():
            raise ConflictError(f"append at {start} but the log has {self.size()} entries")
        if not rows:
            return
        # the parameter rows are made by C iterators (zip, map, struct): this runs for every entry written
        datas, hashes, term_lists = zip(*rows)
        idxs = range(start, start + len(rows))
        joined = b"".join(hashes)
        if len(joined) != 32 * len(rows):
            raise StorageError("a leaf hash to store is not 32 bytes")
        keys = _dedup_keys(joined)
        # the keys go into dedup0, or, for a large append, straight into dedup1 (its pages are dirtied by a fold
        # anyway: one insert per key instead of two); a leaf already in the other levels (looked up, their pages
        # read) or in the level inserted into or twice in this batch (its key conflicts) is the log's dedup
        # signal: the caller rolls back and looks up
        into, other = ("dedup1", "dedup0") if len(rows) >= LARGE_APPEND else ("dedup0", "dedup1")
        if _held(self.con, keys, other):
            raise DuplicateLeafError("a leaf in this batch is already stored")
        # OR ROLLBACK: a conflict ends the whole transaction, which the caller rolls back anyway, so SQLite keeps
        # no statement journal to undo just this statement (a plain INSERT (ABORT) of many rows copies each page
        # it changes into that journal first, bench/RESULTS.md). Errors that are not conflicts are unchanged.
        try:
            _insert_cols(self.con, f"INSERT OR ROLLBACK INTO {into} (k, idx) VALUES ", (keys, idxs))
        except sqlite3.IntegrityError as exc:
            raise DuplicateLeafError(f"a leaf in this batch is already stored: {exc}") from None
        # bytearray, not bytes: Python's sqlite3 binds int, float, str and bytearray directly but first tries
        # to adapt any other type (adapter lookup, then __adapt__/__conform__ raising AttributeError): the
        # copy is cheaper than that by ~1 CPU-us per row of two blobs (bench/RESULTS.md)
        _insert_cols(self.con, "INSERT OR ROLLBACK INTO leaves (idx, hash, data) VALUES ",
                     (idxs, list(map(bytearray, hashes)), list(map(bytearray, datas))))
        end = start + len(rows)
        # the term rows go into the level the append folds into (terms0 when it crosses no boundary: its rows
        # would be moved there in this transaction anyway), then the newer levels are folded into it
        into_level = _terms_fold_level(start, end)
        singles, runs = split_runs(start, term_lists)
        if singles:
            _insert_rows(self.con, f"INSERT OR IGNORE INTO {TERM_LEVELS[into_level]} (term, idx) VALUES ", 2, singles)
        if runs:
            _insert_rows(self.con, "INSERT OR IGNORE INTO term_runs (term, first, last) VALUES ", 3, runs)
        self._size = end
        _fold(self.con, start, end)
        _fold_terms(self.con, into_level)

    def add_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        self.add_node_keys([(node_key(lv, ix), h) for lv, ix, h in nodes if lv > 0])

    def add_node_keys(self, nodes: Sequence[tuple[int, bytes]]) -> None:
        self.add_node_levels(levels_of_keyed(nodes))

    def add_node_levels(self, levels: Sequence[tuple[int, int, bytes]]) -> None:
        if not levels:
            return
        edge = self._edge
        known = edge.known(self._start) if edge is not None and self._edge_size == self._start else None
        cached = known or {}

        def read(keys: list[int]) -> dict[int, bytes]:
            missing = [k for k in keys if k not in cached]
            return {**cached, **_stripes(self.con, missing)} if missing else cached

        rows, _ = stripe_rows(levels, read)
        # a partial stripe is replaced by its longer self (stripe_writes checked that it extends it)
        self.con.executemany("INSERT OR REPLACE INTO node_stripes (id, hashes) VALUES (?, ?)", rows)
        if edge is not None and self._start is not None:
            self.new_edge = edge.after(rows, known is not None)

    def put_checkpoint(self, size: int, note: bytes) -> None:
        self.con.execute("INSERT OR REPLACE INTO checkpoints (size, note) VALUES (?, ?)", (size, note))


# rows per INSERT statement, largest first: 256 rows of 3 values stay within SQLite's oldest limit of 999
# parameters per statement; a batch of 1,000 rows is 12 statements (3 x 256, 7 x 32, 2 x 4)
_CHUNKS = (256, 32, 4, 1)
# up to this many rows, one statement of exactly that many (one step instead of one per chunk: a group of 25
# single entries was 7 steps of 4 and 1 rows per table; bench/RESULTS.md, lane commit2). Its text is one per
# row count: the connection's statement cache holds them (_STATEMENTS)
_ONE_STATEMENT = 64
_STATEMENTS = 512


@functools.lru_cache(maxsize=1024)
def _values_sql(head: str, width: int, rows: int) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return head + ",".join([one] * rows)


def _insert_rows(con: sqlite3.Connection, head: str, width: int, rows: Iterable[Sequence[Any]]) -> None:
    """INSERT ``rows`` (each ``width`` values) with multi-row VALUES statements. One statement per row
    (``executemany``) cost a step each, and Python's sqlite3 releases and retakes the GIL around every step
    (a lock round trip per row, a thread switch when another thread waits for the GIL): per 256 rows here."""
    _insert_flat(con, head, width, list(chain.from_iterable(rows)))  # C iterators: zip's tuples are reused


def _insert_flat(con: sqlite3.Connection, head: str, width: int, flat: list[Any]) -> None:
    n = len(flat) // width
    if 0 < n <= _ONE_STATEMENT:  # a small append (a group of single entries): one statement, one step
        con.execute(_values_sql(head, width, n), flat)
        return
    pos = 0
    for size in _CHUNKS:
        k = (n - pos) // size
        if k:
            step = size * width
            a = pos * width
            con.executemany(_values_sql(head, width, size), [flat[a + j * step : a + (j + 1) * step] for j in range(k)])
            pos += k * size


def _insert_cols(con: sqlite3.Connection, head: str, cols: Sequence[Sequence[Any]]) -> None:
    """:func:`_insert_rows` of rows given as columns of equal length: the flat parameter list is filled one
    column at a time by slice assignment (C loops, no tuple per row)."""
    width = len(cols)
    n = len(cols[0])
    flat: list[Any] = [None] * (n * width)
    for j, col in enumerate(cols):
        flat[j::width] = col
    _insert_flat(con, head, width, flat)


def _node_hashes(con: sqlite3.Connection, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    out: dict[tuple[int, int], bytes] = {}
    leaf_ids = [i for lv, i in ids if lv == 0]
    inner = [(lv, i) for lv, i in ids if lv > 0]
    for chunk in _chunks(leaf_ids, 500):
        q = f"SELECT idx, hash FROM leaves WHERE idx IN ({','.join('?' * len(chunk))})"
        for idx, h in con.execute(q, chunk):
            out[(0, idx)] = h
    if inner:
        out.update(stripe_hashes(inner, _stripes(con, stripe_keys(inner))))
    return out


def _stripes(con: sqlite3.Connection, keys: list[int]) -> dict[int, bytes]:
    out: dict[int, bytes] = {}
    for chunk in _chunks(keys, 500):
        q = f"SELECT id, hashes FROM node_stripes WHERE id IN ({','.join('?' * len(chunk))})"
        out.update(con.execute(q, chunk))
    return out


def _key(h: bytes) -> int:
    return int.from_bytes(h[:8], "big", signed=True)


def _dedup_keys(joined: bytes) -> array[int]:
    """:func:`_key` of each 32-byte hash of a concatenation, as one array (no tuple per hash: every 4th
    64-bit word, read big-endian)."""
    words = array("q")
    words.frombytes(joined)
    if _LITTLE:
        words.byteswap()
    return words[::4]


_LITTLE = sys.byteorder == "little"


# the dedup levels, newest first (format 4): an append inserts into the first; _fold moves each into the next
_LEVELS = ("dedup0", "dedup1", "dedup")
LEVEL0_BITS = 11  # dedup0 is folded into dedup1 each time the log's size crosses a multiple of 2^11 entries
LEVEL1_BITS = 16  # and both into dedup each time it crosses a multiple of 2^16
LARGE_APPEND = 256  # entries from which an append inserts its keys into dedup1 directly


def _fold(con: sqlite3.Connection, start: int, end: int) -> None:
    """After an append took the log from ``start`` to ``end`` entries: move the dedup keys down a level when
    the size crossed a level's boundary (in key order: each page of the bigger level is written once per fold,
    not once per entry). Decided by the sizes alone, so every writer (any process) folds at the same appends;
    in the append's own transaction."""
    if end >> LEVEL1_BITS != start >> LEVEL1_BITS:
        for table in ("dedup1", "dedup0"):  # each a rowid scan: in key order, no sort
            con.execute(f"INSERT INTO dedup (k, idx) SELECT k, idx FROM {table}")
            con.execute(f"DELETE FROM {table}")
    elif end >> LEVEL0_BITS != start >> LEVEL0_BITS:
        con.execute("INSERT INTO dedup1 (k, idx) SELECT k, idx FROM dedup0")  # a rowid scan: in key order
        con.execute("DELETE FROM dedup0")


# the terms levels, newest first (format 5): an append inserts its term rows into terms0; when the log's size
# crosses a multiple of 2^TERM_BITS[i] entries, levels 0..i are folded into level i + 1
TERM_LEVELS = ("terms0", "terms1", "terms2", "terms")
TERM_BITS = (8, 12, 16)


def _terms_fold_level(start: int, end: int) -> int:
    """The level an append from ``start`` to ``end`` entries folds the newer ones into (0: no fold): the one
    after the oldest level whose boundary (a multiple of 2^TERM_BITS[i]) it crosses."""
    for i in range(len(TERM_BITS) - 1, -1, -1):
        if end >> TERM_BITS[i] != start >> TERM_BITS[i]:
            return i + 1
    return 0


def _fold_terms(con: sqlite3.Connection, level: int) -> None:
    """Move the rows of every level newer than ``level`` into it, in key order (each page of the older level
    written once per fold, not once per row). Decided by the sizes alone (:func:`_terms_fold_level`), so every
    writer (any process) folds at the same appends; in the append's own transaction. ``OR IGNORE``: a row is in
    one level only (nothing to ignore), and SQLite keeps no statement journal for the move."""
    for src in TERM_LEVELS[:level]:
        con.execute(f"INSERT OR IGNORE INTO {TERM_LEVELS[level]} (term, idx) SELECT term, idx FROM {src}")
        con.execute(f"DELETE FROM {src}")


def _each_level(sql: str) -> str:
    """``sql`` (naming the table ``terms``) once per terms level, joined by UNION ALL."""
    return " UNION ALL ".join(sql.replace("{t}", t) for t in TERM_LEVELS)


# the readers' statements over the union of the levels (each row is in exactly one level), merged in idx order;
# one statement reads one snapshot, so a fold committed by a writer meanwhile never shows a row twice or not at all
_FIND_SQL = _each_level("SELECT idx FROM {t} WHERE term = ?1 AND idx > ?2") + " ORDER BY 1 LIMIT ?3"
_FIND_NEWEST_SQL = _each_level("SELECT idx FROM {t} WHERE term = ?1") + " ORDER BY 1 DESC LIMIT ?2"
_COUNT_SQL = "SELECT " + " + ".join(f"(SELECT count(*) FROM {t} WHERE term = ?1)" for t in TERM_LEVELS)


@functools.lru_cache(maxsize=64)
def _held_sql(n: int, level: str) -> str:
    # the keys as a VALUES list, each looked up in both levels: a third less CPU than an IN list per level
    # (each IN list is first sorted into an index of its own)
    values = ",".join(["(?)"] * n)
    return (f"WITH q(k) AS (VALUES {values}) SELECT 1 FROM q WHERE EXISTS (SELECT 1 FROM {level} d WHERE d.k = q.k) "
            "OR EXISTS (SELECT 1 FROM dedup d WHERE d.k = q.k) LIMIT 1")


@functools.lru_cache(maxsize=64)
def _present_sql(n: int) -> str:
    # the terms as a VALUES list, each probed once per table (at most one index seek each): a write group's
    # lookups ask about terms that are mostly absent; an IN list per table with DISTINCT and UNION cost ~5x the
    # CPU (each IN list and the UNION an ephemeral index of their own; bench/RESULTS.md, lane commit2)
    values = ",".join(["(?)"] * n)
    levels = "".join(f"EXISTS (SELECT 1 FROM {t} WHERE term = q.t) OR " for t in TERM_LEVELS)
    return f"WITH q(t) AS (VALUES {values}) SELECT t FROM q WHERE {levels}EXISTS (SELECT 1 FROM term_runs WHERE term = q.t)"


def _held(con: sqlite3.Connection, keys: Sequence[int], level: str) -> bool:
    """Is any of ``keys`` in dedup or in ``level`` (dedup0 or dedup1)?"""
    return any(con.execute(_held_sql(len(chunk), level), chunk).fetchone() is not None
               for chunk in _chunks(list(keys), 500))


def _indices_of(con: sqlite3.Connection, hashes: Sequence[bytes]) -> dict[bytes, int]:
    out: dict[bytes, int] = {}
    by_key = {_key(h): h for h in hashes}
    for chunk in _chunks(list(by_key), 500):
        marks = ",".join("?" * len(chunk))
        for table in _LEVELS:
            q = f"SELECT d.k, l.idx, l.hash FROM {table} d JOIN leaves l ON l.idx = d.idx WHERE d.k IN ({marks})"
            for k, idx, h in con.execute(q, chunk):
                if bytes(h) == by_key[k]:  # a full-hash match, not just a shared prefix
                    out[by_key[k]] = idx
    return out


def _format(con: sqlite3.Connection) -> int:
    row = con.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    return check_format(None if row is None else str(row[0]))


def _migrate(con: sqlite3.Connection, *, new: bool) -> bool:
    """Bring the store to STORE_FORMAT (base.py) in one write transaction; True if it migrated an older one.
    Format 1 -> 2: each run of consecutive entries under one term becomes one ``term_runs`` row.
    2 -> 3: the ``nodes`` rows (one per interior node) become ``node_stripes`` rows, and ``nodes`` is dropped.
    3 -> 4: nothing moves: every key of the ``dedup`` table stays there as the oldest level; the two newer
    levels (``dedup0``, ``dedup1``, made by the schema) start empty. 4 -> 5: nothing moves either: every
    ``terms`` row stays there as the oldest terms level; ``terms0``, ``terms1``, ``terms2`` start empty."""
    if _format(con) >= STORE_FORMAT:
        return False
    con.execute("BEGIN IMMEDIATE")
    try:
        migrated = False
        fmt = _format(con)
        if fmt < STORE_FORMAT:  # another process may have migrated meanwhile
            empty = con.execute("SELECT 1 FROM leaves LIMIT 1").fetchone() is None
            if not (new and empty) and fmt < 2:
                runs = _term_runs(con)
                con.executemany("DELETE FROM terms WHERE term = ? AND idx >= ? AND idx <= ?", runs)
                con.executemany("INSERT OR IGNORE INTO term_runs (term, first, last) VALUES (?, ?, ?)", runs)
                migrated = True
            if con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'nodes'").fetchone():
                stripes = list(stripes_of_nodes(con.execute("SELECT id, hash FROM nodes ORDER BY id")))
                if stripes:
                    con.executemany("INSERT OR REPLACE INTO node_stripes (id, hashes) VALUES (?, ?)", stripes)
                    migrated = True
                con.execute("DROP TABLE nodes")
            con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('format', ?)", (str(STORE_FORMAT),))
        con.execute("COMMIT")
        return migrated
    except BaseException:
        _rollback(con)
        raise


def _term_runs(con: sqlite3.Connection) -> list[tuple[str, int, int]]:
    """Runs of two or more consecutive indices under one term among the ``terms`` rows."""
    out: list[tuple[str, int, int]] = []
    cur_term: str | None = None
    ixs: list[int] = []

    def flush() -> None:
        out.extend((cur_term, a, b) for a, b in runs_of(ixs) if b > a)  # type: ignore[misc]

    for term, idx in con.execute("SELECT term, idx FROM terms ORDER BY term, idx"):
        if term != cur_term:
            if ixs:
                flush()
            cur_term, ixs = term, []
        ixs.append(idx)
    if ixs:
        flush()
    return out


def _chunks(xs: list, n: int) -> Iterator[list]:  # type: ignore[type-arg]
    for i in range(0, len(xs), n):
        yield xs[i : i + n]


def _rollback(con: sqlite3.Connection) -> None:
    """Roll back what is left of a failed transaction. SQLite has already rolled it back itself
    after some errors (SQLITE_FULL, SQLITE_IOERR, ...): a second ROLLBACK would raise a raw driver
    error ("no transaction is active") in place of the StorageError that says what happened."""
    if con.in_transaction:
        try:
            con.execute("ROLLBACK")
        except sqlite3.Error:
            pass


class SQLiteStore:
    """A LogStore in one SQLite file. Safe to share between threads and processes."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StorageError(f"no ledger database at {self.path}")
        if create:
            create_private_file(self.path)  # 0600 from the start; SQLite's -wal/-shm copy its mode
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._edge = Edge()  # the tree's right-edge stripes after this store's last append (under _write_lock)
        con = self._connect()
        try:
            with con:
                con.executescript(_SCHEMA)
            self.migrated = _migrate(con, new=create)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot prepare ledger database {self.path}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False,
                                  cached_statements=_STATEMENTS)
            # 16 KiB pages for a new database (no effect on an existing one, which keeps its size): fewer
            # pages per append to write, log and checkpoint (-0.8 CPU-us per batched entry, bench/RESULTS.md)
            con.execute(f"PRAGMA page_size={PAGE_SIZE}")
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=FULL")
            con.execute("PRAGMA busy_timeout=60000")
            con.execute("PRAGMA cache_size=-262144")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open ledger database {self.path}: {exc}") from exc
        return con

    @property
    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = self._local.con = self._connect()
        return con

    # -- writes -------------------------------------------------------------
    @contextmanager
    def writer(self) -> Iterator[_Txn]:
        with self._write_lock:
            con = self._con
            try:
                con.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StorageError(f"cannot start a write transaction: {exc}") from exc
            try:
                txn = _Txn(con, self._edge)  # used only if this transaction finds the log at the edge's size
                yield txn
            except sqlite3.Error as exc:
                _rollback(con)
                raise StorageError(f"ledger database write failed: {exc}") from exc
            except BaseException:
                _rollback(con)
                raise
            try:
                con.execute("COMMIT")
            except sqlite3.Error as exc:
                _rollback(con)
                raise StorageError(f"commit failed: {exc}") from exc
            if txn.new_edge is not None and txn._size is not None:
                self._edge.stripes = txn.new_edge
                self._edge.size = txn._size

    # -- reads --------------------------------------------------------------
    def size(self) -> int:
        row = self._con.execute("SELECT max(idx) FROM leaves").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def node_hashes(self, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return _node_hashes(self._con, ids)

    def indices_of(self, hashes: Sequence[bytes]) -> dict[bytes, int]:
        return _indices_of(self._con, hashes)

    def leaves(self, start: int, end: int) -> list[bytes]:
        rows = self._con.execute("SELECT data FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end))
        return [r[0] for r in rows]

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        rows = self._con.execute("SELECT hash FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx", (start, end))
        return [r[0] for r in rows]

    def iter_leaves(self, start: int, end: int, batch: int = 10000) -> Iterator[tuple[int, bytes, bytes]]:
        pos = start
        while pos < end:
            rows = self._con.execute(
                "SELECT idx, hash, data FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx LIMIT ?",
                (pos, end, batch),
            ).fetchall()
            if not rows:
                return
            yield from rows
            pos = rows[-1][0] + 1

    def iter_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        yield from stripe_nodes(self._con.execute("SELECT id, hashes FROM node_stripes ORDER BY id"))

    def latest_checkpoint(self) -> bytes | None:
        row = self._con.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else bytes(row[0])

    def checkpoint_at(self, size: int) -> bytes | None:
        if not 0 <= size <= INT64_MAX:  # no such size; the database's integer would overflow
            return None
        row = self._con.execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
        return None if row is None else bytes(row[0])

    def checkpoint_size_at_least(self, size: int) -> int | None:
        if size > INT64_MAX:
            return None
        row = self._con.execute("SELECT min(size) FROM checkpoints WHERE size >= ?", (size,)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def checkpoints(self) -> list[tuple[int, bytes]]:
        return [(s, bytes(n)) for s, n in self._con.execute("SELECT size, note FROM checkpoints ORDER BY size")]

    def find(self, term: str, after: int = -1, limit: int = 1000) -> list[int]:
        con = self._con
        singles = [r[0] for r in con.execute(_FIND_SQL, (term, after, limit))]
        runs = con.execute("SELECT first, last FROM term_runs WHERE term = ? AND last > ? ORDER BY last LIMIT ?",
                           (term, after, limit)).fetchall()
        return merge_oldest(singles, runs, after, limit) if runs else singles

    def find_newest(self, term: str, offset: int = 0, limit: int = 50) -> list[int]:
        con = self._con
        need = offset + limit
        singles = [r[0] for r in con.execute(_FIND_NEWEST_SQL, (term, need))]
        runs = con.execute("SELECT first, last FROM term_runs WHERE term = ? ORDER BY last DESC LIMIT ?",
                           (term, need)).fetchall()
        return merge_newest(singles, runs, offset, limit)

    def count(self, term: str) -> int:
        con = self._con
        n = con.execute(_COUNT_SQL, (term,)).fetchone()[0]
        r = con.execute("SELECT sum(last - first + 1) FROM term_runs WHERE term = ?", (term,)).fetchone()[0]
        return int(n) + int(r or 0)

    def checkpoint_count(self) -> int:
        return int(self._con.execute("SELECT count(*) FROM checkpoints").fetchone()[0])

    def checkpoints_newest(self, offset: int = 0, limit: int = 50) -> list[tuple[int, bytes]]:
        rows = self._con.execute("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT ? OFFSET ?",
                                 (limit, offset))
        return [(int(s), bytes(n)) for s, n in rows]

    def terms_present(self, terms: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(terms)), 500):
            out.update(r[0] for r in self._con.execute(_present_sql(len(chunk)), chunk))
        return out

    def index_row_count(self) -> int:
        return int(self._con.execute("SELECT count(*) FROM leaves").fetchone()[0])

    def get_meta(self, key: str) -> str | None:
        row = self._con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._write_lock:
            self._con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
