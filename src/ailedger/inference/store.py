"""``<ledger>/inference/records.db``: inference records, stored a batch per row.

A batch row holds the signed ``inference.batch`` entry (kept *before* it is appended to the log,
so a crash between the two writes is repaired by appending the stored entry again; the log
deduplicates identical leaves), the batch's records (canonical bytes, 4-byte length prefixed) and
what is needed to find a record: the model, the time range and the receipt counters it covers.
One row per batch keeps the writer's cost per record low.
"""

from __future__ import annotations

import contextlib
import sqlite3
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ailedger.errors import BadInputError, StorageError, TamperError
from ailedger.tlog.private import connect_private

__all__ = ["RecordStore", "pack_records", "split_rid", "unpack_records"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
  id INTEGER PRIMARY KEY, stream TEXT NOT NULL, seq INTEGER NOT NULL, count INTEGER NOT NULL,
  root BLOB NOT NULL, entry BLOB NOT NULL, log_index INTEGER, model TEXT NOT NULL,
  t_first INTEGER NOT NULL, t_last INTEGER NOT NULL, n_min INTEGER NOT NULL, n_max INTEGER NOT NULL,
  records BLOB NOT NULL, rids TEXT NOT NULL, times BLOB NOT NULL, UNIQUE(stream, seq));
CREATE INDEX IF NOT EXISTS batches_stream_n ON batches(stream, n_min);
CREATE INDEX IF NOT EXISTS batches_model_t ON batches(model, t_first);
"""


def split_rid(rid: str) -> tuple[str, int]:
    stream, sep, n = rid.partition("-")
    if not sep or len(stream) != 12 or not (n.isascii() and n.isdigit()) or len(n) > 19:
        raise BadInputError(f"{rid!r} is not a receipt id (like 0123456789ab-42)", field="receipt")
    try:
        int(stream, 16)
    except ValueError:
        raise BadInputError(f"{rid!r} is not a receipt id (like 0123456789ab-42)", field="receipt") from None
    return stream, int(n)


def pack_records(datas: Sequence[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(d)) + d for d in datas)


def unpack_records(blob: bytes) -> list[bytes]:
    """Inverse of :func:`pack_records`; a damaged blob (a length running past its end) raises
    TamperError instead of yielding a short record."""
    out, pos, n = [], 0, len(blob)
    while pos < n:
        if n - pos < 4:
            raise TamperError("stored inference batch is truncated", expected=4, found=n - pos)
        (ln,) = struct.unpack_from(">I", blob, pos)
        if ln > n - pos - 4:
            raise TamperError("stored inference batch is truncated", expected=ln, found=n - pos - 4)
        out.append(blob[pos + 4 : pos + 4 + ln])
        pos += 4 + ln
    return out


class RecordStore:
    def __init__(self, dir: Path, *, durable: bool = True) -> None:
        self.path = dir / "records.db"
        try:
            self.con = connect_private(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self.con.execute("PRAGMA journal_mode=WAL")
            self.con.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self.con.execute("PRAGMA busy_timeout=60000")
            self.con.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open {self.path}: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        self.con.close()

    def add_batch(self, stream: str, seq: int, root: bytes, entry: bytes, model: str, rids: Sequence[str],
                  times_us: Sequence[int], datas: Sequence[bytes],
                  log_indices: Sequence[tuple[int, int]] = ()) -> int:
        """Store a batch (not yet in the log) with its records; ``log_indices`` (batch id, log index)
        of earlier batches are recorded in the same transaction (one commit, one fsync)."""
        ns = [split_rid(r)[1] for r in (rids[0], rids[-1])]
        n_min, n_max = min(ns), max(ns)
        for r in rids:  # threads may interleave counters slightly; keep the true range
            n = int(r[13:])
            if n < n_min:
                n_min = n
            elif n > n_max:
                n_max = n
        with self._lock:
            try:
                if log_indices:
                    self.con.execute("BEGIN IMMEDIATE")
                    self.con.executemany("UPDATE batches SET log_index=? WHERE id=?",
                                         [(i, b) for b, i in log_indices])
                cur = self.con.execute(
                    "INSERT INTO batches (stream, seq, count, root, entry, model, t_first, t_last, n_min, n_max,"
                    " records, rids, times) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (stream, seq, len(datas), root, entry, model, min(times_us), max(times_us), n_min, n_max,
                     pack_records(datas), "\n".join(rids), struct.pack(f">{len(times_us)}q", *times_us)))
                if log_indices:
                    self.con.execute("COMMIT")
            except sqlite3.Error as exc:
                if self.con.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self.con.execute("ROLLBACK")
                raise StorageError(f"cannot store an inference batch: {exc}") from exc
            assert cur.lastrowid is not None
            return cur.lastrowid

    def drop_batch(self, bid: int) -> None:
        """Remove a stored batch that is not in the log (its payloads could not be stored): recovery must
        not append it."""
        with self._lock:
            self.con.execute("DELETE FROM batches WHERE id=? AND log_index IS NULL", (bid,))

    def set_log_index(self, bid: int, index: int) -> None:
        with self._lock:
            self.con.execute("UPDATE batches SET log_index=? WHERE id=?", (index, bid))

    def stream_rids(self, stream: str) -> set[str]:
        """Receipt ids of a stream that have a stored record."""
        return {r for (rs,) in self.con.execute("SELECT rids FROM batches WHERE stream=?", (stream,))
                for r in rs.split("\n")}

    def max_seq(self, stream: str) -> int:
        (s,) = self.con.execute("SELECT coalesce(max(seq), 0) FROM batches WHERE stream=?", (stream,)).fetchone()
        return int(s)

    def pending_batches(self) -> list[tuple[int, bytes]]:
        return [(b, bytes(e)) for b, e in self.con.execute(
            "SELECT id, entry FROM batches WHERE log_index IS NULL ORDER BY id")]

    def record(self, rid: str) -> tuple[bytes, int, int] | None:
        """(record bytes, batch id, position) or None."""
        stream, n = split_rid(rid)
        for bid, rids in self.con.execute(
                "SELECT id, rids FROM batches WHERE stream=? AND n_min<=? AND n_max>=? ORDER BY id",
                (stream, n, n)):
            names = rids.split("\n")
            if rid in names:
                pos = names.index(rid)
                (blob,) = self.con.execute("SELECT records FROM batches WHERE id=?", (bid,)).fetchone()
                return unpack_records(bytes(blob))[pos], bid, pos
        return None

    def batch(self, bid: int) -> dict[str, Any]:
        row = self.con.execute("SELECT stream, seq, count, root, entry, log_index FROM batches WHERE id=?",
                               (bid,)).fetchone()
        if row is None:
            raise StorageError(f"batch {bid} is missing from {self.path}")
        return {"stream": row[0], "seq": row[1], "count": row[2], "root": bytes(row[3]), "entry": bytes(row[4]),
                "log_index": row[5]}

    def batch_records(self, bid: int) -> list[bytes]:
        (blob,) = self.con.execute("SELECT records FROM batches WHERE id=?", (bid,)).fetchone()
        return unpack_records(bytes(blob))

    def query(self, model: str | None, t_from: int | None, t_to: int | None,
              limit: int | None = None) -> Iterator[tuple[str, int, int, int, bytes, int | None]]:
        """(rid, batch, pos, t_us, data, log_index) in time order; ``t_to`` is exclusive."""
        q = "SELECT id, log_index, records, rids, times FROM batches WHERE 1=1"
        args: list[Any] = []
        if model is not None:
            q += " AND model=?"
            args.append(model)
        if t_from is not None:
            q += " AND t_last>=?"
            args.append(t_from)
        if t_to is not None:
            q += " AND t_first<?"
            args.append(t_to)
        hits: list[tuple[int, str, int, int, bytes, int | None]] = []
        for bid, li, blob, rids, times in self.con.execute(q + " ORDER BY t_first", args):
            datas = unpack_records(bytes(blob))
            ts = struct.unpack(f">{len(datas)}q", bytes(times))
            for pos, (rid, t, d) in enumerate(zip(rids.split("\n"), ts, datas)):
                if (t_from is None or t >= t_from) and (t_to is None or t < t_to):
                    hits.append((t, rid, bid, pos, d, li))
        hits.sort(key=lambda h: (h[0], h[1]))
        for k, (t, rid, bid, pos, d, li) in enumerate(hits):
            if limit is not None and k >= limit:
                return
            yield rid, bid, pos, t, d, li

    def counts(self) -> dict[str, int]:
        row = self.con.execute("SELECT count(*), coalesce(sum(count), 0), coalesce(sum(log_index IS NULL), 0)"
                               " FROM batches").fetchone()
        return {"batches": row[0], "records": row[1], "pending_batches": row[2]}
