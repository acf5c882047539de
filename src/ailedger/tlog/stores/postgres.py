"""PostgreSQL LogStore (psycopg 3).

Write path: ``writer()`` opens a transaction on a *writer* connection (a pool of 2) and takes a
transaction-level advisory lock (``pg_advisory_xact_lock``) keyed by the schema, so any number of
processes appending to one schema are sequenced one at a time and each sees the size it extends:
no gap, no duplicate index (``leaves.idx`` is also the primary key, a second line of defence).
The lock is released by COMMIT/ROLLBACK, also when a client dies. A small append (a group of single
entries) then costs one more round trip: its rows, the stripes and the checkpoint as one statement, sent
with the COMMIT in one pipeline (``_commit``); a larger one sends its rows by binary COPY first. A small append
that follows this process's own last append takes one round trip in all: ``writer_at`` assumes that size and
sends nothing until the commit, one call of the schema's ``ailedger_append_v1`` (the lock, the size checked
under it, the rows; its own transaction), which writes nothing when another writer appended in between
(StaleSizeError: the log redoes the append with ``writer``).

Read path: plain autocommit statements on separate *reader* connections (a pool of 8); they never
take the advisory lock, so tile and checkpoint reads scale independently of the writer.

A connection that fails (server restarted, backend terminated) is discarded and the error is
raised as :class:`StorageError`; the next call reconnects.
"""

from __future__ import annotations

import hashlib
import operator
import re
import struct
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import chain, repeat
from typing import Any

import psycopg

from ailedger.errors import ConflictError, DuplicateLeafError, StaleSizeError, StorageError
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

__all__ = ["PostgresBuckets", "PostgresStore"]

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_DDL = """
CREATE TABLE IF NOT EXISTS leaves (idx BIGINT PRIMARY KEY, hash BYTEA NOT NULL, data BYTEA NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS leaves_hash ON leaves(hash);
CREATE TABLE IF NOT EXISTS node_stripes (id BIGINT PRIMARY KEY, hashes BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size BIGINT PRIMARY KEY, note BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS terms (term TEXT NOT NULL, idx BIGINT NOT NULL, PRIMARY KEY (term, idx));
CREATE TABLE IF NOT EXISTS term_runs (term TEXT NOT NULL, last BIGINT NOT NULL, first BIGINT NOT NULL,
                                      PRIMARY KEY (term, last));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# One small append (a group of single entries) in one call and one round trip (PostgresStore.writer_at): the
# sequencer lock, the size check, then the rows, stripes and checkpoints. A VOLATILE function: each statement
# takes a fresh snapshot, so the size read after the lock sees every append committed before it. A size other
# than ``expect`` (another writer appended since this process's last append) writes nothing and returns the
# size found; a leaf already stored fails the call (unique index leaves_hash: the log's dedup signal). Called
# alone, the statement is its own transaction: its answer comes once the COMMIT is durable. plpgsql keeps
# its statements' plans (none parsed or planned per group). Versioned by name: a later change is a new one.
# With it, the stripes' hashes are stored out of line uncompressed (STORAGE EXTERNAL: an 8 KiB stripe is
# toasted whatever the setting, and hashes do not compress; the server tried pglz on every rewritten stripe,
# ~5% of its CPU per group of 25). Values already stored stay as they are; readers see the same bytes.
_APPEND_FN = "ailedger_append_v1"
_APPEND_DDL = """
CREATE OR REPLACE FUNCTION ailedger_append_v1(
  expect BIGINT, lock_key BIGINT, l_idx BIGINT[], l_hash BYTEA[], l_data BYTEA[], t_term TEXT[], t_idx BIGINT[],
  r_term TEXT[], r_first BIGINT[], r_last BIGINT[], s_id BIGINT[], s_hashes BYTEA[], c_size BIGINT[],
  c_note BYTEA[]) RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  have BIGINT;
BEGIN
  PERFORM pg_advisory_xact_lock(lock_key);
  SELECT coalesce(max(idx) + 1, 0) INTO have FROM leaves;
  IF have <> expect THEN
    RETURN have;
  END IF;
  IF cardinality(l_idx) > 0 THEN
    INSERT INTO leaves (idx, hash, data) SELECT * FROM unnest(l_idx, l_hash, l_data);
  END IF;
  IF cardinality(t_term) > 0 THEN
    INSERT INTO terms (term, idx) SELECT * FROM unnest(t_term, t_idx);
  END IF;
  IF cardinality(r_term) > 0 THEN
    INSERT INTO term_runs (term, first, last) SELECT * FROM unnest(r_term, r_first, r_last);
  END IF;
  IF cardinality(s_id) > 0 THEN
    INSERT INTO node_stripes (id, hashes) SELECT * FROM unnest(s_id, s_hashes)
      ON CONFLICT (id) DO UPDATE SET hashes = EXCLUDED.hashes;
  END IF;
  IF cardinality(c_size) > 0 THEN
    INSERT INTO checkpoints (size, note) SELECT * FROM unnest(c_size, c_note)
      ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note;
  END IF;
  RETURN have;
END $$;
ALTER TABLE node_stripes ALTER COLUMN hashes SET STORAGE EXTERNAL;
"""
# The call is prepared on each connection (psycopg's prepared statement: not parsed or planned per group),
# outside a pipeline, so a failed call (a duplicate leaf) leaves the prepared statement as it was.
_CALL_APPEND = ("SELECT ailedger_append_v1(%b, %b, %b::int8[], %b::bytea[], %b::bytea[], %b::text[], %b::int8[], "
                "%b::text[], %b::int8[], %b::int8[], %b::int8[], %b::bytea[], %b::int8[], %b::bytea[])")


# Per-identity token buckets shared by every API server on this schema (ailedger.tlog.ingest), refilled
# from the database's clock (one clock for every host). The table is UNLOGGED: a charge writes no WAL, so
# its commit waits for no disk flush (a database crash resets the buckets to full, which only forgives).
# One signer (the common case) is one upsert statement; several signers, all or none, one call of
# budget_charge, which locks their rows in the order given (the caller sorts, so two servers charging the
# same signers cannot deadlock). Either way one round trip, row locks held only for that statement.
_BUDGET_DDL = """
CREATE UNLOGGED TABLE IF NOT EXISTS budgets (did TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL,
                                             at DOUBLE PRECISION NOT NULL, granted BOOLEAN NOT NULL);
CREATE OR REPLACE FUNCTION budget_charge(dids TEXT[], ns DOUBLE PRECISION[], rate DOUBLE PRECISION,
                                         burst DOUBLE PRECISION) RETURNS DOUBLE PRECISION
LANGUAGE plpgsql AS $$
DECLARE
  t DOUBLE PRECISION := extract(epoch FROM clock_timestamp());
  wait DOUBLE PRECISION := 0;
  have DOUBLE PRECISION;
BEGIN
  FOR i IN 1 .. coalesce(array_length(dids, 1), 0) LOOP
    SELECT least(burst, b.tokens + greatest(0, t - b.at) * rate) INTO have
      FROM budgets b WHERE b.did = dids[i] FOR UPDATE;
    IF NOT FOUND THEN  -- a new signer: a full bucket (another server may be adding it right now)
      INSERT INTO budgets (did, tokens, at, granted) VALUES (dids[i], burst, t, true) ON CONFLICT (did) DO NOTHING;
      SELECT least(burst, b.tokens + greatest(0, t - b.at) * rate) INTO have
        FROM budgets b WHERE b.did = dids[i] FOR UPDATE;
    END IF;
    IF ns[i] > have THEN
      wait := greatest(wait, (ns[i] - have) / rate);
    END IF;
  END LOOP;
  IF wait = 0 THEN
    UPDATE budgets b SET tokens = least(burst, b.tokens + greatest(0, t - b.at) * rate) - w.n, at = t
      FROM unnest(dids, ns) AS w(did, n) WHERE b.did = w.did;
  END IF;
  RETURN wait;
END $$;
"""

# One signer: refill (EXCLUDED.at is the database's clock, read once), take n if there are n, say whether.
_CHARGE_ONE = """
INSERT INTO budgets AS b (did, tokens, at, granted)
SELECT %(did)s, %(burst)s - %(n)s, extract(epoch FROM clock_timestamp()), true
ON CONFLICT (did) DO UPDATE SET
  granted = least(%(burst)s, b.tokens + greatest(0, EXCLUDED.at - b.at) * %(rate)s) >= %(n)s,
  tokens = least(%(burst)s, b.tokens + greatest(0, EXCLUDED.at - b.at) * %(rate)s)
           - CASE WHEN least(%(burst)s, b.tokens + greatest(0, EXCLUDED.at - b.at) * %(rate)s) >= %(n)s
                  THEN %(n)s ELSE 0 END,
  at = EXCLUDED.at
RETURNING granted, tokens
"""


def _lock_key(schema: str) -> int:
    return int.from_bytes(hashlib.sha256(b"ailedger-sequencer:" + schema.encode()).digest()[:8], "big", signed=True)


def _is_conn_error(exc: BaseException) -> bool:
    return isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError))


# PostgreSQL's binary COPY format (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format"):
# a header, then per row a 16-bit field count and each field as a 32-bit length and its bytes (int8: 8 bytes,
# big-endian), then a -1 field count as the trailer
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = b"\xff\xff"
_LEAF_ROW = struct.Struct(">hiqi32si")  # 3 fields: idx, hash (32 bytes), then the data's length (data follows)
_STRIPE_ROW = struct.Struct(">hiqi")  # 2 fields: id, then the hashes' length (the hashes follow)
_FIELD_HEAD = struct.Struct(">hi")  # a field count and the first field's length (a term's text follows)
_INT8 = struct.Struct(">iq")  # an int8 field


_TWO, _THREE, _EIGHT, _THIRTY_TWO = repeat(2), repeat(3), repeat(8), repeat(32)  # struct.pack's constant fields
_first = operator.itemgetter(0)
_second = operator.itemgetter(1)
_ONLY_32 = {32}


def _copy(cur: psycopg.Cursor[Any], sql: str, parts: list[bytes]) -> None:
    parts.append(_COPY_TRAILER)
    with cur.copy(sql) as cp:
        cp.write(b"".join(parts))


class _Txn:
    def __init__(self, cur: psycopg.Cursor[Any], edge: Edge | None = None,
                 opener: Callable[[], int] | None = None) -> None:
        self.cur = cur
        # writer_at: the BEGIN, the lock and the size not sent yet; sent (and the size assumed checked) only if
        # something must be read or streamed before the commit (``_open``), else the commit is one call
        self._opener = opener
        self._size: int | None = None
        self._start: int | None = None  # the size this transaction found (under the sequencer lock)
        self._edge = edge  # the right-edge stripes of the store's last committed append (never changed)
        self.new_edge: dict[int, tuple[int, bytes]] | None = None  # the edge after this one (kept once committed)
        self.checkpoints: list[tuple[int, bytes]] = []  # stored with the COMMIT, in its round trip
        self.stripes: list[tuple[int, bytes]] = []  # stripe rows upserted with the COMMIT, in its round trip
        # a small append's leaf and term INSERTs, sent in the COMMIT's pipeline (or before a read)
        self.pending: list[tuple[str, tuple[Any, ...]]] = []

    @property
    def deferred(self) -> bool:
        """True while a ``writer_at`` transaction has sent nothing (its commit is then one call, one round trip)."""
        return self._opener is not None

    def _open(self) -> None:
        """Begin the transaction now, taking the lock (a deferred one's, before its first read or COPY); the
        size it assumed is checked under the lock: StaleSizeError (nothing written) if another writer appended."""
        if self._opener is None:
            return
        opener, self._opener = self._opener, None
        found = opener()
        if found != self._start:
            raise StaleSizeError(f"the log has {found} entries, not the {self._start} this append assumed")

    def flush(self) -> None:
        """Send the INSERTs held for the COMMIT now (before a read of the tables they fill)."""
        self._open()
        if self.pending:
            pending, self.pending = self.pending, []
            try:
                for sql, params in pending:
                    self.cur.execute(sql, params)
            except psycopg.errors.UniqueViolation as exc:
                _raise_if_duplicate(exc)
                raise

    def size(self) -> int:
        if self._size is None:
            self.cur.execute("SELECT max(idx) FROM leaves")
            row = self.cur.fetchone()
            self._size = 0 if row is None or row[0] is None else int(row[0]) + 1
        return self._size

    def node_hashes(self, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        self.flush()
        return _node_hashes(self.cur, ids)

    def indices_of(self, hashes: Sequence[bytes]) -> dict[bytes, int]:
        self.flush()
        return _indices_of(self.cur, hashes)

    def add_leaves(self, start: int, rows: Sequence[LeafRow]) -> None:
        if start != self.size():
            raise ConflictError(f"append at {start} but the log has {self.size()} entries")
        if not rows:
            return
        datas, hashes, term_lists = zip(*rows)
        hashes = tuple(map(bytes, hashes))
        if set(map(len, hashes)) != _ONLY_32:
            raise StorageError("a leaf hash to store is not 32 bytes")
        datas = tuple(map(bytes, datas))
        singles, runs = split_runs(start, term_lists)
        if len(rows) <= _INLINE_ROWS and sum(map(len, datas)) <= _INLINE_BYTES:
            if self.pending:  # a second small append in this transaction: the first one's rows sent now
                self.flush()
            # a small append (a group of single entries): its rows as INSERTs of binary arrays, sent in the
            # COMMIT's pipeline, in its round trip (a COPY costs two round trips per table). A leaf already stored then fails that pipeline:
            # PostgresStore.writer turns it into DuplicateLeafError as below.
            self.pending.append((_INSERT_LEAVES, (list(range(start, start + len(rows))), list(hashes), list(datas))))
            if singles:
                self.pending.append((_INSERT_TERMS, (list(map(_first, singles)), list(map(_second, singles)))))
            if runs:
                terms, firsts, lasts = zip(*runs)
                self.pending.append((_INSERT_RUNS, (list(terms), list(firsts), list(lasts))))
            self._size = start + len(rows)
            return
        self.flush()
        try:
            # binary COPY, its rows packed here: text COPY made the client escape every byte of each bytea
            # (2.0 CPU-us per 400-byte leaf row), psycopg's binary write_row 0.9, packing 0.6; the packing by
            # C iterators (map over struct.pack, zip): no Python-level step per row
            idxs = range(start, start + len(rows))
            heads = map(_LEAF_ROW.pack, _THREE, _EIGHT, idxs, _THIRTY_TWO, hashes, map(len, datas))
            _copy(self.cur, "COPY leaves (idx, hash, data) FROM STDIN (FORMAT BINARY)",
                  [_COPY_HEADER, *chain.from_iterable(zip(heads, datas))])
        except psycopg.errors.UniqueViolation as exc:
            # the unique index on the leaf hash refused a leaf already stored: that is the log's
            # dedup signal (the transaction is rolled back and the batch redone with a lookup), not a
            # storage failure. A clash on idx would be a sequencing bug: it stays a StorageError.
            _raise_if_duplicate(exc)
            raise
        if singles:
            texts = tuple(map(str.encode, map(_first, singles)))
            heads = map(_FIELD_HEAD.pack, _TWO, map(len, texts))
            tails = map(_INT8.pack, _EIGHT, map(_second, singles))
            _copy(self.cur, "COPY terms (term, idx) FROM STDIN (FORMAT BINARY)",
                  [_COPY_HEADER, *chain.from_iterable(zip(heads, texts, tails))])
        if runs:
            parts = [_COPY_HEADER]
            for t, a, b in runs:
                tb = t.encode()
                parts.append(_FIELD_HEAD.pack(3, len(tb)) + tb + _INT8.pack(8, a) + _INT8.pack(8, b))
            _copy(self.cur, "COPY term_runs (term, first, last) FROM STDIN (FORMAT BINARY)", parts)
        self._size = start + len(rows)

    def add_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        self.add_node_keys([(node_key(lv, ix), bytes(h)) for lv, ix, h in nodes if lv > 0])

    def add_node_keys(self, items: Sequence[tuple[int, bytes]]) -> None:
        self.add_node_levels(levels_of_keyed(items))

    def add_node_levels(self, levels: Sequence[tuple[int, int, bytes]]) -> None:
        if not levels:
            return
        if self.stripes:  # nodes written twice in one transaction: the first ones stored before reading
            self._open()
            _upsert_stripes(self.cur, self.stripes)
            self.stripes = []
            self._edge = None
        edge = self._edge
        known = edge.known(self._start) if edge is not None else None
        if known is None:
            # the partial stripes these nodes extend are taken out (one round trip: DELETE ... RETURNING) and
            # written back longer with the new ones, in this transaction
            self._open()
            rows, _ = stripe_rows(levels, lambda keys: _stripes(self.cur, keys, take=True))
            _copy_stripes(self.cur, rows)
        else:
            # the log is at the size of this store's last append: the partial stripes are the ones it wrote,
            # not read back; those not kept (a level it did not reach) are taken out as above
            taken: list[int] = []

            def read(keys: list[int]) -> dict[int, bytes]:
                missing = [k for k in keys if k not in known]
                taken.extend(missing)
                if missing:
                    self._open()
                return {**known, **_stripes(self.cur, missing, take=True)} if missing else known

            rows, _ = stripe_rows(levels, read)
            if len(rows) <= _UPSERT_ROWS:  # a small append: every row with the COMMIT, no round trip of its own
                self.stripes = list(rows)
            else:  # rows already stored (kept partial stripes) with the COMMIT, the rest by COPY now
                self.stripes = [r for r in rows if r[0] in known]
                self._open()
                _copy_stripes(self.cur, [r for r in rows if r[0] not in known])
        if self._start is not None:
            self.new_edge = (edge or Edge()).after(rows, known is not None)

    def put_checkpoint(self, size: int, note: bytes) -> None:
        # sent with the transaction's COMMIT (PostgresStore.writer): one round trip fewer per append
        self.checkpoints.append((int(size), bytes(note)))


_UPSERT_ROWS = 16  # stripe rows of an append sent with its COMMIT (at most 16 x 8 KiB)
# A small append's leaf and term rows go as INSERTs of binary arrays in the COMMIT's pipeline: one round trip
# for the whole append after the BEGIN's, where each binary COPY costs two (the COPY statement, then its data).
# Larger appends keep COPY (the rows streamed, not held in one message).
_INLINE_ROWS = 200
_INLINE_BYTES = 256 * 1024


def _raise_if_duplicate(exc: psycopg.errors.UniqueViolation) -> None:
    """DuplicateLeafError when the unique index on the leaf hash refused a row (the log's dedup signal: the
    transaction is rolled back and the batch redone with a lookup); a clash on idx (a sequencing bug) or on
    another key is left to the caller, which reports a storage failure."""
    if exc.diag.constraint_name == "leaves_hash":
        raise DuplicateLeafError(f"a leaf in this batch is already stored: {exc.diag.message_detail}") from None


# the rows as arrays in binary parameters: no text to escape on this side or to parse on the server's
_INSERT_LEAVES = "INSERT INTO leaves (idx, hash, data) SELECT * FROM unnest(%b::int8[], %b::bytea[], %b::bytea[])"
_INSERT_TERMS = "INSERT INTO terms (term, idx) SELECT * FROM unnest(%b::text[], %b::int8[])"
_INSERT_RUNS = "INSERT INTO term_runs (term, first, last) SELECT * FROM unnest(%b::text[], %b::int8[], %b::int8[])"
_UPSERT_STRIPES = ("INSERT INTO node_stripes (id, hashes) SELECT * FROM unnest(%b::int8[], %b::bytea[]) "
                   "ON CONFLICT (id) DO UPDATE SET hashes = EXCLUDED.hashes")
_INSERT_CHECKPOINT = ("INSERT INTO checkpoints (size, note) VALUES (%b, %b) "
                      "ON CONFLICT (size) DO UPDATE SET note = EXCLUDED.note")


def _upsert_params(stripes: Sequence[tuple[int, bytes]]) -> tuple[list[int], list[bytes]]:
    return [int(k) for k, _ in stripes], [bytes(b) for _, b in stripes]


def _upsert_stripes(cur: psycopg.Cursor[Any], stripes: Sequence[tuple[int, bytes]]) -> None:
    cur.execute(_UPSERT_STRIPES, _upsert_params(stripes))


def _commit(con: psycopg.Connection[Any], cur: psycopg.Cursor[Any], txn: _Txn) -> None:
    """A small append's leaf and term INSERTs, the stripe rows' upsert, the checkpoints' INSERTs and the
    COMMIT in one pipeline: sent together, one round trip. A statement that fails skips the rest, COMMIT
    included (the transaction is then in error: the caller rolls it back). Not prepared (``prepare=False``):
    psycopg would take a statement skipped by a failed pipeline for prepared (a dedup signal on the fifth use
    of a statement: "prepared statement does not exist" ever after on that connection); preparing saved no
    measurable server CPU on these statements (arrays in binary parameters: little to parse or plan)."""
    stmts = list(txn.pending)
    if txn.stripes:
        stmts.append((_UPSERT_STRIPES, _upsert_params(txn.stripes)))
    stmts.extend((_INSERT_CHECKPOINT, (size, note)) for size, note in txn.checkpoints)
    with con.pipeline():
        if stmts:
            cur.execute(*_one_statement(stmts), prepare=False)
        cur.execute("COMMIT", prepare=False)


def _call_append(cur: psycopg.Cursor[Any], txn: _Txn, lock_key: int) -> int:
    """A deferred transaction's commit: its held rows, stripes and checkpoints in one call of ailedger_append_v1,
    one statement that is its own transaction (autocommit): one round trip. Returns the size the call found
    under the lock (nothing written when it is not the size assumed)."""
    held = dict(txn.pending)  # by statement: at most one of each (a second small append sends the first)
    leaves = held.get(_INSERT_LEAVES, (None, None, None))
    terms = held.get(_INSERT_TERMS, (None, None))
    runs = held.get(_INSERT_RUNS, (None, None, None))
    stripes = _upsert_params(txn.stripes) if txn.stripes else (None, None)
    cps = ([c[0] for c in txn.checkpoints], [c[1] for c in txn.checkpoints]) if txn.checkpoints else (None, None)
    cur.execute(_CALL_APPEND, (txn._start, lock_key, *leaves, *terms, *runs, *stripes, *cps), prepare=True)
    row = cur.fetchone()
    if row is None or row[0] is None:
        raise StorageError("ailedger_append_v1 returned no size")
    return int(row[0])


def _one_statement(stmts: Sequence[tuple[str, tuple[Any, ...]]]) -> tuple[str, tuple[Any, ...]]:
    """The INSERTs as one statement (each a data-modifying WITH query: none reads what another writes):
    one Bind/Execute for the server and for psycopg instead of one per table."""
    if len(stmts) == 1:
        return stmts[0]
    sql = "WITH " + ", ".join(f"w{i} AS ({q})" for i, (q, _) in enumerate(stmts)) + " SELECT 1"
    return sql, tuple(chain.from_iterable(p for _, p in stmts))


def _migrate(cur: psycopg.Cursor[Any], *, new: bool) -> bool:
    """Bring the schema to STORE_FORMAT (base.py) inside the caller's transaction, which holds the log's
    advisory lock; True if it migrated an older one. Format 1 -> 2: each run of consecutive entries under
    one term becomes one ``term_runs`` row. 2 -> 3: the ``nodes`` rows (one per interior node) become
    ``node_stripes`` rows, and ``nodes`` is dropped. 3 -> 4 and 4 -> 5 changed SQLite's layout only: the
    number alone."""
    cur.execute("SELECT value FROM meta WHERE key = 'format'")
    row = cur.fetchone()
    fmt = check_format(None if row is None else str(row[0]))
    if fmt >= STORE_FORMAT:
        return False
    cur.execute("SELECT 1 FROM leaves LIMIT 1")
    migrated = False
    if not (new and cur.fetchone() is None) and fmt < 2:
        migrated = True
        cur.execute("SELECT term, idx FROM terms ORDER BY term, idx")
        runs: list[tuple[str, int, int]] = []
        cur_term: str | None = None
        ixs: list[int] = []
        for term, idx in cur.fetchall():
            if term != cur_term:
                runs.extend((cur_term, a, b) for a, b in runs_of(ixs) if b > a)  # type: ignore[misc]
                cur_term, ixs = term, []
            ixs.append(int(idx))
        runs.extend((cur_term, a, b) for a, b in runs_of(ixs) if b > a)  # type: ignore[misc]
        if runs:
            cur.executemany("DELETE FROM terms WHERE term = %s AND idx >= %s AND idx <= %s", runs)
            with cur.copy("COPY term_runs (term, first, last) FROM STDIN") as cp:
                for run in runs:
                    cp.write_row(run)
    cur.execute("SELECT 1 FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'nodes'")
    if cur.fetchone() is not None:
        cur.execute("SELECT id, hash FROM nodes ORDER BY id")
        stripes = list(stripes_of_nodes((int(k), bytes(h)) for k, h in cur.fetchall()))
        if stripes:
            migrated = True
            _copy_stripes(cur, stripes)
        cur.execute("DROP TABLE nodes")
    cur.execute("INSERT INTO meta (key, value) VALUES ('format', %s) ON CONFLICT (key) DO UPDATE SET value = "
                "EXCLUDED.value", (str(STORE_FORMAT),))
    return migrated


def _ensure_append_fn(con: psycopg.Connection[Any], schema: str, lock_key: int) -> bool:
    """Whether the schema has ailedger_append_v1, creating it if not (a schema made by an older version; under
    the sequencer lock, as other servers may be opening it too). False when this role may not create it: its
    appends then take ``writer``'s two round trips. The function is no part of the store's format (no data)."""
    with con.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = %s AND p.proname = %s", (schema, _APPEND_FN))
        if cur.fetchone() is not None:
            return True
        try:
            with con.transaction():
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
                cur.execute(f'SET LOCAL search_path TO "{schema}"')
                cur.execute(_APPEND_DDL)
        except psycopg.errors.InsufficientPrivilege:
            return False
    return True


def _node_hashes(cur: psycopg.Cursor[Any], ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    out: dict[tuple[int, int], bytes] = {}
    leaf_ids = [i for lv, i in ids if lv == 0]
    inner = [(lv, i) for lv, i in ids if lv > 0]
    if leaf_ids:
        cur.execute("SELECT idx, hash FROM leaves WHERE idx = ANY(%s)", (leaf_ids,))
        for idx, h in cur.fetchall():
            out[(0, int(idx))] = bytes(h)
    if inner:
        out.update(stripe_hashes(inner, _stripes(cur, stripe_keys(inner))))
    return out


def _stripes(cur: psycopg.Cursor[Any], keys: list[int], *, take: bool = False) -> dict[int, bytes]:
    if take:
        cur.execute("DELETE FROM node_stripes WHERE id = ANY(%s) RETURNING id, hashes", (keys,), binary=True)
    else:  # binary results: no hex text to decode (8 KiB per stripe)
        cur.execute("SELECT id, hashes FROM node_stripes WHERE id = ANY(%s)", (keys,), binary=True)
    return {int(k): bytes(b) for k, b in cur.fetchall()}


def _copy_stripes(cur: psycopg.Cursor[Any], rows: Iterable[tuple[int, bytes]]) -> None:
    pack = _STRIPE_ROW.pack
    parts = [_COPY_HEADER]
    for key, blob in rows:
        parts.append(pack(2, 8, key, len(blob)))
        parts.append(blob)
    if len(parts) > 1:
        _copy(cur, "COPY node_stripes (id, hashes) FROM STDIN (FORMAT BINARY)", parts)


def _indices_of(cur: psycopg.Cursor[Any], hashes: Sequence[bytes]) -> dict[bytes, int]:
    if not hashes:
        return {}
    cur.execute("SELECT hash, idx FROM leaves WHERE hash = ANY(%s)", ([bytes(h) for h in hashes],))
    return {bytes(h): int(i) for h, i in cur.fetchall()}


class PostgresStore:
    """A LogStore in one PostgreSQL schema. Safe to share between threads and processes."""

    def __init__(self, dsn: str, *, schema: str | None = None, create: bool = False,
                 connect_timeout: int = 5, readers: int = 8, writers: int = 2) -> None:
        self.dsn = dsn
        self.schema = schema or "ailedger"
        if not _SCHEMA_RE.match(self.schema):
            raise StorageError(f"bad PostgreSQL schema name {self.schema!r} (lowercase letters, digits, _)")
        self.connect_timeout = connect_timeout
        self._lock_key = _lock_key(self.schema)
        self._readers = _Pool(readers)
        self._writers = _Pool(writers)
        self.migrated = False  # True when opening found a store of an older format and migrated it
        self._edge = Edge()  # the right-edge stripes after this object's last append (replaced, never changed)
        self._fn = False  # ailedger_append_v1 is in the schema (writer_at's one-call commit)
        con = self._connect()
        try:
            with con.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,))
                exists = cur.fetchone() is not None
                if not exists and not create:
                    raise StorageError(f"no ledger schema {self.schema!r} in the PostgreSQL database")
                if create:
                    # creating the same schema from two processes at once: serialise on the lock too
                    with con.transaction():
                        cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                        cur.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
                        cur.execute(f'SET LOCAL search_path TO "{self.schema}"')
                        cur.execute(_DDL)
                        cur.execute(_BUDGET_DDL)
                        cur.execute(_APPEND_DDL)
                        self._fn = True
                        self.migrated = _migrate(cur, new=True)
                else:
                    with con.transaction():
                        cur.execute(f'SET LOCAL search_path TO "{self.schema}"')
                        cur.execute("SELECT value FROM meta WHERE key = 'format'")
                        row = cur.fetchone()
                        if check_format(None if row is None else str(row[0])) < STORE_FORMAT:
                            cur.execute("SELECT pg_advisory_xact_lock(%s)", (self._lock_key,))
                            cur.execute(_DDL)
                            self.migrated = _migrate(cur, new=False)
            if not self._fn:  # a schema made by an older version: the function is created now if missing
                self._fn = _ensure_append_fn(con, self.schema, self._lock_key)
        except psycopg.Error as exc:
            raise StorageError(f"cannot prepare PostgreSQL schema {self.schema!r}: {exc}") from exc
        finally:
            con.close()

    # -- connections ------------------------------------------------------------
    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout,
                                   options=f"-c search_path={self.schema}",
                                   application_name=f"ailedger:{self.schema}"[:63])
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to PostgreSQL: {str(exc).strip()}") from exc

    @contextmanager
    def _borrow(self, pool: _Pool) -> Iterator[psycopg.Connection[Any]]:
        con = pool.get(self._connect)
        broken = False
        try:
            yield con
        except psycopg.Error as exc:
            broken = _is_conn_error(exc) or con.closed or con.broken
            raise
        finally:
            pool.put(con, broken or con.closed or con.broken)

    @contextmanager
    def _read(self) -> Iterator[psycopg.Cursor[Any]]:
        try:
            with self._borrow(self._readers) as con, con.cursor() as cur:
                yield cur
        except psycopg.Error as exc:
            raise StorageError(f"PostgreSQL read failed: {str(exc).strip()}") from exc

    # -- writes -------------------------------------------------------------
    def writer(self) -> AbstractContextManager[_Txn]:
        """A write transaction: begun, the sequencer lock taken and the size read in one round trip now."""
        return self._writer(None)

    def writer_at(self, size: int, rows: int) -> AbstractContextManager[_Txn]:
        """A write transaction for an append of ``rows`` entries that assumes the log has ``size`` entries (the
        size after this process's last append) and sends nothing yet: a small append's commit is then ONE call
        (ailedger_append_v1: the lock, the size checked, the rows, stripes and checkpoint, committed as one
        statement), one round trip where ``writer`` takes two. A read or a COPY first begins it as ``writer``
        does, the size checked then. When the log is not at ``size`` (another writer appended), StaleSizeError
        and nothing written: the caller redoes the append with ``writer``. An append too large to be held for
        one call (its rows go by COPY), or a schema without the function (a role that may not create it):
        ``writer``, the size read first."""
        return self._writer(size if self._fn and rows <= _INLINE_ROWS else None)

    @contextmanager
    def _writer(self, expect: int | None) -> Iterator[_Txn]:
        con = self._writers.get(self._connect)
        try:
            cur = con.cursor()
        except psycopg.Error as exc:
            self._writers.put(con, True)
            raise StorageError(f"cannot start a write transaction: {str(exc).strip()}") from exc

        def begin() -> int:
            # one round trip (the simple query protocol: no parameters, the key is this store's own integer):
            # begin, take the sequencer lock, then read the size under it (a fixed cost of every group)
            cur.execute(f"BEGIN; SELECT pg_advisory_xact_lock({int(self._lock_key)}); SELECT max(idx) FROM leaves")
            while cur.nextset():
                pass
            row = cur.fetchone()
            return 0 if row is None or row[0] is None else int(row[0]) + 1

        if expect is None:
            try:
                size = begin()
            except psycopg.Error as exc:
                self._writers.put(con, True)
                raise StorageError(f"cannot start a write transaction: {str(exc).strip()}") from exc
            txn = _Txn(cur, self._edge)  # its stripes used only if the log is at the edge's size
            txn._size = txn._start = size
        else:
            txn = _Txn(cur, self._edge, opener=begin)
            txn._size = txn._start = int(expect)
        broken = False
        try:
            try:
                yield txn
            except BaseException as exc:
                if not txn.deferred:  # begun: rolled back (a deferred one sent nothing)
                    try:
                        cur.execute("ROLLBACK")
                    except psycopg.Error:
                        broken = True
                if isinstance(exc, psycopg.Error):
                    broken = broken or _is_conn_error(exc)
                    raise StorageError(f"PostgreSQL write failed: {str(exc).strip()}") from exc
                raise
            if txn.deferred:
                try:
                    found = _call_append(cur, txn, self._lock_key)
                except psycopg.Error as exc:
                    # the call is its own transaction: one that failed left nothing written and none open
                    broken = _is_conn_error(exc) or con.closed or con.broken
                    if not broken and con.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        try:
                            cur.execute("ROLLBACK")
                        except psycopg.Error:
                            broken = True
                    if isinstance(exc, psycopg.errors.UniqueViolation):
                        _raise_if_duplicate(exc)  # a leaf already stored: the log's dedup path, not a failure
                    raise StorageError(f"PostgreSQL write failed: {str(exc).strip()}") from exc
                if found != txn._start:
                    raise StaleSizeError(f"the log has {found} entries, not the {txn._start} this append assumed")
            else:
                try:
                    _commit(con, cur, txn)
                except psycopg.Error as exc:
                    if con.info.transaction_status == psycopg.pq.TransactionStatus.INERROR:
                        # a statement before the COMMIT (a held INSERT, a checkpoint's) failed: nothing committed
                        try:
                            cur.execute("ROLLBACK")
                        except psycopg.Error:
                            broken = True
                        broken = broken or _is_conn_error(exc)
                        if isinstance(exc, psycopg.errors.UniqueViolation):
                            _raise_if_duplicate(exc)  # a leaf already stored: the log's dedup path, not a failure
                        raise StorageError(f"PostgreSQL write failed: {str(exc).strip()}") from exc
                    broken = True
                    raise StorageError(f"commit failed: {str(exc).strip()}") from exc
            if txn.new_edge is not None and txn._size is not None:
                self._edge = Edge(txn._size, txn.new_edge)  # one reference replaced: other threads see old or new
        finally:
            try:
                cur.close()
            except psycopg.Error:
                broken = True
            self._writers.put(con, broken or con.closed or con.broken)

    # -- reads --------------------------------------------------------------
    def size(self) -> int:
        with self._read() as cur:
            cur.execute("SELECT max(idx) FROM leaves")
            row = cur.fetchone()
        return 0 if row is None or row[0] is None else int(row[0]) + 1

    def node_hashes(self, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        with self._read() as cur:
            return _node_hashes(cur, ids)

    def indices_of(self, hashes: Sequence[bytes]) -> dict[bytes, int]:
        with self._read() as cur:
            return _indices_of(cur, hashes)

    def leaves(self, start: int, end: int) -> list[bytes]:
        with self._read() as cur:
            cur.execute("SELECT data FROM leaves WHERE idx >= %s AND idx < %s ORDER BY idx", (start, end))
            return [bytes(r[0]) for r in cur.fetchall()]

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        with self._read() as cur:
            cur.execute("SELECT hash FROM leaves WHERE idx >= %s AND idx < %s ORDER BY idx", (start, end))
            return [bytes(r[0]) for r in cur.fetchall()]

    def iter_leaves(self, start: int, end: int, batch: int = 10000) -> Iterator[tuple[int, bytes, bytes]]:
        pos = start
        while pos < end:
            with self._read() as cur:
                cur.execute(
                    "SELECT idx, hash, data FROM leaves WHERE idx >= %s AND idx < %s ORDER BY idx LIMIT %s",
                    (pos, end, batch),
                )
                rows = cur.fetchall()
            if not rows:
                return
            for idx, h, d in rows:
                yield int(idx), bytes(h), bytes(d)
            pos = int(rows[-1][0]) + 1

    def iter_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        after = -1
        while True:
            with self._read() as cur:
                cur.execute("SELECT id, hashes FROM node_stripes WHERE id > %s ORDER BY id LIMIT 100", (after,))
                rows = [(int(k), bytes(b)) for k, b in cur.fetchall()]
            if not rows:
                return
            yield from stripe_nodes(rows)
            after = rows[-1][0]

    def latest_checkpoint(self) -> bytes | None:
        with self._read() as cur:
            cur.execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
            row = cur.fetchone()
        return None if row is None else bytes(row[0])

    def checkpoint_at(self, size: int) -> bytes | None:
        if not 0 <= size <= INT64_MAX:  # no such size; the database's integer would overflow
            return None
        with self._read() as cur:
            cur.execute("SELECT note FROM checkpoints WHERE size = %s", (size,))
            row = cur.fetchone()
        return None if row is None else bytes(row[0])

    def checkpoint_size_at_least(self, size: int) -> int | None:
        if size > INT64_MAX:
            return None
        with self._read() as cur:
            cur.execute("SELECT min(size) FROM checkpoints WHERE size >= %s", (size,))
            row = cur.fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def checkpoints(self) -> list[tuple[int, bytes]]:
        with self._read() as cur:
            cur.execute("SELECT size, note FROM checkpoints ORDER BY size")
            return [(int(s), bytes(n)) for s, n in cur.fetchall()]

    def find(self, term: str, after: int = -1, limit: int = 1000) -> list[int]:
        with self._read() as cur:
            cur.execute("SELECT idx FROM terms WHERE term = %s AND idx > %s ORDER BY idx LIMIT %s",
                        (term, after, limit))
            singles = [int(r[0]) for r in cur.fetchall()]
            cur.execute("SELECT first, last FROM term_runs WHERE term = %s AND last > %s ORDER BY last LIMIT %s",
                        (term, after, limit))
            runs = [(int(a), int(b)) for a, b in cur.fetchall()]
        return merge_oldest(singles, runs, after, limit) if runs else singles

    def find_newest(self, term: str, offset: int = 0, limit: int = 50) -> list[int]:
        need = offset + limit
        with self._read() as cur:
            cur.execute("SELECT idx FROM terms WHERE term = %s ORDER BY idx DESC LIMIT %s", (term, need))
            singles = [int(r[0]) for r in cur.fetchall()]
            cur.execute("SELECT first, last FROM term_runs WHERE term = %s ORDER BY last DESC LIMIT %s", (term, need))
            runs = [(int(a), int(b)) for a, b in cur.fetchall()]
        return merge_newest(singles, runs, offset, limit)

    def count(self, term: str) -> int:
        with self._read() as cur:
            cur.execute("SELECT (SELECT count(*) FROM terms WHERE term = %s)"
                        " + (SELECT coalesce(sum(last - first + 1), 0) FROM term_runs WHERE term = %s)", (term, term))
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def checkpoint_count(self) -> int:
        with self._read() as cur:
            cur.execute("SELECT count(*) FROM checkpoints")
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def checkpoints_newest(self, offset: int = 0, limit: int = 50) -> list[tuple[int, bytes]]:
        with self._read() as cur:
            cur.execute("SELECT size, note FROM checkpoints ORDER BY size DESC LIMIT %s OFFSET %s", (limit, offset))
            return [(int(s), bytes(n)) for s, n in cur.fetchall()]

    def terms_present(self, terms: Sequence[str]) -> set[str]:
        if not terms:
            return set()
        with self._read() as cur:
            want = list(dict.fromkeys(terms))
            cur.execute("SELECT DISTINCT term FROM terms WHERE term = ANY(%s)"
                        " UNION SELECT DISTINCT term FROM term_runs WHERE term = ANY(%s)", (want, want))
            return {str(r[0]) for r in cur.fetchall()}

    def index_row_count(self) -> int:
        with self._read() as cur:
            cur.execute("SELECT count(*) FROM leaves")
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def get_meta(self, key: str) -> str | None:
        with self._read() as cur:
            cur.execute("SELECT value FROM meta WHERE key = %s", (key,))
            row = cur.fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._read() as cur:
            cur.execute("INSERT INTO meta (key, value) VALUES (%s, %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, value))

    def budgets(self, *, lease_fraction: float = 0.01) -> PostgresBuckets:
        """The per-identity token buckets of this schema, shared by every server on it (``ingest.Ingestor``)."""
        return PostgresBuckets(self, lease_fraction=lease_fraction)

    def drop_schema(self) -> None:
        """Delete the whole schema (tests, tear-down). Irreversible."""
        with self._read() as cur:
            cur.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def close(self) -> None:
        self._readers.close()
        self._writers.close()


class PostgresBuckets:
    """Token buckets per identity in the ``budgets`` table of the ledger's schema: every API server on the
    schema, on any host, charges the same rows, so one identity has one budget whatever the number of
    servers. Same interface as ``ingest.SharedBuckets``.

    A charge takes tokens from the table in one round trip (refill from the database's clock, all counts or
    none, atomically under row locks). So that a busy identity does not cost a round trip per request, a
    server takes a small *lease* beyond what the request needs (``lease_fraction`` of the smaller of the
    rate and the burst: by default 1%, 10 ms of the rate) and spends it locally before it asks again. Leased
    tokens have left the shared bucket, so the servers together never admit more than the budget; at worst
    an idle server sits on one lease per identity, which other servers then cannot use (``lease_fraction=0``:
    exact, one round trip per admission). When the table cannot give the lease, the exact need is asked."""

    MAX_LEASES = 100_000  # identities with a lease held locally; beyond it the leases are forfeited

    def __init__(self, store: PostgresStore, *, lease_fraction: float = 0.01) -> None:
        self.store = store
        self.lease_fraction = lease_fraction
        self._held: dict[str, float] = {}
        self._lock = threading.Lock()
        # a schema made before the table existed gets it now (serialised with the other servers' starts)
        with store._borrow(store._writers) as con:
            try:
                with con.transaction(), con.cursor() as cur:
                    cur.execute("SELECT pg_advisory_xact_lock(%s)", (store._lock_key,))
                    cur.execute("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                                "WHERE n.nspname = %s AND p.proname = 'budget_charge'", (store.schema,))
                    if cur.fetchone() is None:
                        cur.execute(_BUDGET_DDL)
            except psycopg.Error as exc:
                raise StorageError(f"cannot prepare the rate-limit table: {str(exc).strip()}") from exc

    def charge(self, counts: dict[str, int], rate: float, burst: float, now: float) -> float:
        """Take ``counts`` tokens per signer, all or none. Returns 0.0, or the seconds to wait (``inf`` when
        a count exceeds the burst). ``now`` is not used: the database's clock is the one every server shares."""
        if not counts:
            return 0.0
        if max(counts.values()) > burst:
            return float("inf")  # never possible: no round trip
        with self._lock:
            held = self._held
            need = {d: n - held.get(d, 0.0) for d, n in counts.items() if n > held.get(d, 0.0)}
            if need:
                lease = self.lease_fraction * min(rate, burst)
                got = {d: min(burst, n + lease) for d, n in need.items()} if lease > 0 else need
                wait = self._take(got, rate, burst)
                if wait and got is not need:
                    got = need
                    wait = self._take(got, rate, burst)
                if wait:
                    return wait
                if len(held) >= self.MAX_LEASES:
                    held.clear()  # forfeit the leases (they only ever under-admit)
                for d, n in got.items():
                    held[d] = held.get(d, 0.0) + n
            for d, n in counts.items():
                left = held.get(d, 0.0) - n  # a negative count (a refund) adds to the lease held here
                if left > 1e-9:
                    held[d] = left
                else:
                    del held[d]
            return 0.0

    def _take(self, counts: dict[str, float], rate: float, burst: float) -> float:
        with self.store._read() as cur:
            if len(counts) == 1:
                ((did, n),) = counts.items()
                cur.execute(_CHARGE_ONE, {"did": did, "n": float(n), "rate": float(rate), "burst": float(burst)})
                row = cur.fetchone()
                if row is None:
                    raise StorageError("the rate-limit upsert returned no row")
                return 0.0 if row[0] else (n - float(row[1])) / rate
            dids = sorted(counts)
            cur.execute("SELECT budget_charge(%s::text[], %s::float8[], %s, %s)",
                        (dids, [float(counts[d]) for d in dids], float(rate), float(burst)))
            row = cur.fetchone()
        return float(row[0]) if row else 0.0

    def close(self) -> None:
        pass  # the store's connections


class _Pool:
    """At most ``size`` connections, shared by threads; a broken one is closed and replaced lazily.

    Bounded so that many threads (a web server's thread pool) x many processes stay well below the
    server's max_connections."""

    def __init__(self, size: int, wait: float = 30.0) -> None:
        self.size = size
        self.wait = wait
        self.idle: list[psycopg.Connection[Any]] = []
        self.count = 0
        self.cond = threading.Condition()

    def get(self, connect: Any) -> psycopg.Connection[Any]:
        with self.cond:
            deadline = None
            while not self.idle and self.count >= self.size:
                import time as _t

                deadline = deadline or _t.monotonic() + self.wait
                left = deadline - _t.monotonic()
                if left <= 0:
                    raise StorageError("no PostgreSQL connection free (pool exhausted)")
                self.cond.wait(left)
            if self.idle:
                return self.idle.pop()
            self.count += 1
        try:
            return connect()  # type: ignore[no-any-return]
        except BaseException:
            with self.cond:
                self.count -= 1
                self.cond.notify()
            raise

    def put(self, con: psycopg.Connection[Any], broken: bool) -> None:
        stale: list[psycopg.Connection[Any]] = []
        with self.cond:
            if broken:
                # a lost connection usually means the server restarted or killed them all:
                # drop the idle ones too rather than fail once per pooled connection
                stale, self.idle = [con, *self.idle], []
                self.count -= len(stale)
            else:
                self.idle.append(con)
            self.cond.notify_all()
        for c in stale:
            try:
                c.close()
            except Exception:  # noqa: BLE001, S110 - it is already broken
                pass

    def close(self) -> None:
        with self.cond:
            cons, self.idle = self.idle, []
            self.count -= len(cons)
        for con in cons:
            try:
                con.close()
            except Exception:  # noqa: BLE001, S110 - closing at shutdown: nothing left to tell
                pass
