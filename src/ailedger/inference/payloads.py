"""Off-ledger payload store: inputs and outputs encrypted under a key per data subject.

Layout under ``<ledger>/inference/``:

* ``subject.secret`` - 32 random bytes (mode 0600); a subject is stored only as
  ``HMAC-SHA256(secret, subject)`` so the files never name a person in clear;
* ``keys.db`` - one AES-256 key per subject reference, and the log of erasures;
* ``payloads.db`` - AES-256-GCM ciphertexts, one per (batch, subject), each holding the
  salt and canonical input/output bytes of that subject's calls in the batch.

Erasure deletes the subject's key and ciphertexts with SQLite ``secure_delete`` on (freed
pages are overwritten with zeros), truncates the write-ahead logs and VACUUMs both files.
Without the key a ciphertext cannot be read; without the salt a commitment on the ledger
cannot be tested against guessed inputs.
"""

from __future__ import annotations

import hashlib
import hmac
import mmap
import os
import sqlite3
import struct
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ailedger.errors import NotFoundError, StorageError, TamperError
from ailedger.inference.journal import key_id
from ailedger.tlog.private import connect_private, private_dir

__all__ = ["ErasedError", "PayloadItem", "PayloadStore", "inference_dir", "pack_items", "unpack_items"]

_AAD = b"ailedger-inference-payload/v1|"
_NONE = 0xFFFFFFFF


class ErasedError(NotFoundError):
    """The payload existed but its data subject was erased."""

    code = "erased"


@dataclass(frozen=True)
class PayloadItem:
    rid: str
    salt: bytes
    input: bytes | None   # canonical JSON bytes
    output: bytes | None


def inference_dir(ledger_path: str | os.PathLike[str]) -> Path:
    """``<ledger>/inference``, created 0700: it holds subject keys, payloads and API key hashes."""
    return private_dir(Path(ledger_path) / "inference")


def _connect(path: Path, durable: bool) -> sqlite3.Connection:
    try:
        con = connect_private(path, timeout=60, isolation_level=None, check_same_thread=False)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        con.execute("PRAGMA secure_delete=ON")
        con.execute("PRAGMA busy_timeout=60000")
    except sqlite3.Error as exc:
        raise StorageError(f"cannot open {path}: {exc}") from exc
    return con


_NONE_B = struct.pack(">I", _NONE)
_u32 = struct.Struct(">I").pack


def pack_items(items: Sequence[tuple[str, bytes, bytes | None, bytes | None]]) -> bytes:
    """(rid, salt, input, output) tuples -> len(rid) rid salt (u32 len + bytes | u32 0xFFFFFFFF) x 2."""
    out: list[bytes] = []
    for rid_s, salt, inp, outp in items:
        rid = rid_s.encode()
        out += (bytes((len(rid),)), rid, salt,
                _NONE_B if inp is None else _u32(len(inp)), inp or b"",
                _NONE_B if outp is None else _u32(len(outp)), outp or b"")
    return b"".join(out)


def unpack_items(data: bytes) -> list[PayloadItem]:
    """Inverse of :func:`pack_items`; damaged bytes (every length is checked) raise TamperError."""
    items, pos, end = [], 0, len(data)

    def take(n: int) -> bytes:
        nonlocal pos
        if n > end - pos:
            raise TamperError("stored payload group is truncated or damaged", expected=n, found=end - pos)
        pos += n
        return data[pos - n : pos]

    while pos < end:
        try:
            rid = take(take(1)[0]).decode("ascii")
        except UnicodeDecodeError:
            raise TamperError("stored payload group has a damaged receipt id") from None
        salt = take(16)
        parts: list[bytes | None] = []
        for _ in range(2):
            (ln,) = struct.unpack(">I", take(4))
            parts.append(None if ln == _NONE else take(ln))
        items.append(PayloadItem(rid, salt, parts[0], parts[1]))
    return items


_pack, _unpack = pack_items, unpack_items  # the names the fuzz harness uses


class PayloadStore:
    def __init__(self, ledger_path: str | os.PathLike[str], *, durable: bool = True) -> None:
        self.dir = inference_dir(ledger_path)
        secret_path = self.dir / "subject.secret"
        if not secret_path.exists():
            tmp = self.dir / f"subject.secret.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(os.urandom(32))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, secret_path)  # first writer wins, never overwrites
            except FileExistsError:
                pass
            os.unlink(tmp)
        self._secret = secret_path.read_bytes()
        self._lock = threading.Lock()
        self._durable = durable
        # the journal's key cache (durable trails): valid while `keys.gen` (8 bytes, mapped in memory) is
        # unchanged; every erasure writes new random bytes there after destroying the key, so a call made
        # after an erasure returned (in any process) never encrypts under the destroyed key
        self._kcon: sqlite3.Connection | None = None
        self._klock = threading.Lock()
        self._kcache: dict[str, tuple[bytes, AESGCM, bytes]] = {}
        self._kgen = b""
        self._gen: mmap.mmap | None = None
        self.keys = _connect(self.dir / "keys.db", durable)
        self.db = _connect(self.dir / "payloads.db", durable)
        self.keys.executescript(
            "CREATE TABLE IF NOT EXISTS subject_keys (ref TEXT PRIMARY KEY, key BLOB NOT NULL, created INTEGER);"
            "CREATE TABLE IF NOT EXISTS erasures (ref TEXT NOT NULL, time TEXT NOT NULL, records INTEGER,"
            " log_index INTEGER);")
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS groups (id INTEGER PRIMARY KEY, ref TEXT NOT NULL, nonce BLOB NOT NULL,"
            " ct BLOB NOT NULL, stream TEXT NOT NULL, n_min INTEGER NOT NULL, n_max INTEGER NOT NULL,"
            " rids TEXT NOT NULL);"
            "CREATE INDEX IF NOT EXISTS groups_ref ON groups(ref);"
            "CREATE INDEX IF NOT EXISTS groups_stream_n ON groups(stream, n_min);")

    def close(self) -> None:
        self.keys.close()
        self.db.close()
        if self._kcon is not None:
            self._kcon.close()
        if self._gen is not None:
            self._gen.close()

    def _gen_file(self) -> int:
        """An fd on ``keys.gen`` (created 0600 holding 8 bytes if missing)."""
        path = self.dir / "keys.gen"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        if os.fstat(fd).st_size < 8:
            os.pwrite(fd, b"\0" * 8, 0)
        return fd

    def _bump_generation(self) -> None:
        fd = self._gen_file()
        try:
            os.pwrite(fd, os.urandom(8), 0)
        finally:
            os.close(fd)

    # -- subjects -------------------------------------------------------------
    def subject_ref(self, subject: str) -> str:
        return hmac.new(self._secret, subject.encode(), hashlib.sha256).hexdigest()

    def _key(self, ref: str, create: bool) -> bytes | None:
        row = self.keys.execute("SELECT key FROM subject_keys WHERE ref=?", (ref,)).fetchone()
        if row is None:
            if not create:
                return None
            k = AESGCM.generate_key(256)
            self.keys.execute("INSERT OR IGNORE INTO subject_keys VALUES (?,?,strftime('%s','now'))", (ref, k))
            row = self.keys.execute("SELECT key FROM subject_keys WHERE ref=?", (ref,)).fetchone()
        return bytes(row[0])

    def cipher(self, ref: str) -> tuple[bytes, AESGCM, bytes]:
        """The subject's key (created, and committed with ``synchronous=FULL``, if it has none), its
        AES-GCM cipher and its key id (``journal.key_id``), for the journal of a durable trail.  Cached while no other connection changed
        ``keys.db``: an erasure anywhere empties the cache, so a call after it never uses the destroyed key."""
        gen = self._gen
        if gen is not None and gen[:8] == self._kgen:
            got = self._kcache.get(ref)
            if got is not None:
                return got
        with self._klock:
            kc, gen = self._kcon, self._gen
            if kc is None:
                kc = self._kcon = _connect(self.dir / "keys.db", True)
                fd = self._gen_file()
                try:
                    self._gen = gen = mmap.mmap(fd, 8)
                finally:
                    os.close(fd)
            assert gen is not None
            g = gen[:8]
            if g != self._kgen:
                self._kcache.clear()
                self._kgen = g
            got = self._kcache.get(ref)
            if got is None:
                row = kc.execute("SELECT key FROM subject_keys WHERE ref=?", (ref,)).fetchone()
                if row is None:
                    kc.execute("INSERT OR IGNORE INTO subject_keys VALUES (?,?,strftime('%s','now'))",
                               (ref, AESGCM.generate_key(256)))
                    row = kc.execute("SELECT key FROM subject_keys WHERE ref=?", (ref,)).fetchone()
                k = bytes(row[0])
                got = self._kcache[ref] = (k, AESGCM(k), key_id(k))
            return got

    def key_of(self, ref: str) -> bytes | None:
        """The subject's key, or None (never had one, or erased)."""
        with self._lock:
            return self._key(ref, create=False)

    def stream_rids(self, stream: str) -> set[str]:
        """Receipt ids of a stream that have a stored payload."""
        return {r for (rs,) in self.db.execute("SELECT rids FROM groups WHERE stream=?", (stream,))
                for r in rs.split("\n")}

    # -- write ------------------------------------------------------------------
    def put_journalled(self, items: Sequence[tuple[str, bytes, str, bytes, bytes | None, bytes | None]]) -> int:
        """Store payloads journalled under a subject key: ``(ref, key, rid, salt, input, output)``.

        An item is stored only if its subject's key is still the one it was journalled under; otherwise
        the subject was erased after the call (its payload is erased with it: never stored under a new
        key).  The keys are read inside the payload transaction, so an erasure running at the same time
        either comes first (the item is dropped) or deletes what was stored.  Returns the items dropped."""
        with self._lock:
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                current: dict[str, bytes | None] = {}
                groups: dict[str, list[tuple[str, bytes, bytes | None, bytes | None]]] = {}
                dropped = 0
                for ref, key, rid, salt, ib, ob in items:
                    if ref not in current:
                        current[ref] = self._key(ref, create=False)
                    if current[ref] != key:
                        dropped += 1
                        continue
                    g = groups.get(ref)
                    if g is None:
                        g = groups[ref] = []
                    g.append((rid, salt, ib, ob))
                if groups:
                    self._insert(db, groups, {r: k for r, k in current.items() if k is not None})
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return dropped

    def put(self, groups: dict[str, list[tuple[str, bytes, bytes | None, bytes | None]]]) -> None:
        """Store each subject's items (keyed by subject reference) as one ciphertext, atomically."""
        with self._lock:
            keys: dict[str, bytes] = {}
            for ref in groups:
                k = self._key(ref, create=True)
                assert k is not None
                keys[ref] = k
            db = self.db
            db.execute("BEGIN IMMEDIATE")
            try:
                self._insert(db, groups, keys)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself after some errors (disk full)
                    db.execute("ROLLBACK")
                raise

    @staticmethod
    def _insert(db: sqlite3.Connection, groups: dict[str, list[tuple[str, bytes, bytes | None, bytes | None]]],
                keys: dict[str, bytes]) -> None:
        (gid,) = db.execute("SELECT coalesce(max(id), 0) FROM groups").fetchone()
        rows = []
        for ref, items in groups.items():
            gid += 1
            nonce = os.urandom(12)
            ct = AESGCM(keys[ref]).encrypt(nonce, pack_items(items), _AAD + ref.encode() + b"|%d" % gid)
            ns = [int(it[0][13:]) for it in items]
            rows.append((gid, ref, nonce, ct, items[0][0][:12], min(ns), max(ns),
                         "\n".join(it[0] for it in items)))
        db.executemany("INSERT INTO groups VALUES (?,?,?,?,?,?,?,?)", rows)

    # -- read -------------------------------------------------------------------
    def get(self, rid: str) -> PayloadItem:
        from ailedger.inference.store import split_rid

        stream, n = split_rid(rid)
        row = None
        for cand in self.db.execute("SELECT id, ref, nonce, ct, rids FROM groups WHERE stream=? AND n_min<=?"
                                    " AND n_max>=?", (stream, n, n)):
            if rid in cand[4].split("\n"):
                row = cand[:4]
                break
        if row is None:
            raise NotFoundError(f"no stored payload for receipt {rid} (never stored, or its subject was erased)",
                                field="receipt")
        gid, ref, nonce, ct = row
        key = self._key(ref, create=False)
        if key is None:
            raise ErasedError(f"the payload of receipt {rid} was erased (its subject key is destroyed)",
                              field="receipt")
        try:
            pt = AESGCM(key).decrypt(bytes(nonce), bytes(ct), _AAD + ref.encode() + b"|%d" % gid)
        except InvalidTag as exc:
            raise TamperError(f"payload ciphertext for receipt {rid} fails authentication") from exc
        for it in unpack_items(pt):
            if it.rid == rid:
                return it
        raise TamperError(f"payload group {gid} does not hold receipt {rid}")

    def erased(self, subject: str) -> list[dict[str, Any]]:
        ref = self.subject_ref(subject)
        return [{"time": t, "records": n, "log_index": i} for t, n, i in
                self.keys.execute("SELECT time, records, log_index FROM erasures WHERE ref=?", (ref,))]

    # -- erase ------------------------------------------------------------------
    def erase(self, subject: str) -> dict[str, Any]:
        """Destroy a subject's key and ciphertexts. Returns what was erased (receipt ids)."""
        ref = self.subject_ref(subject)
        with self._lock:
            rids = [r for (rs,) in self.db.execute("SELECT rids FROM groups WHERE ref=? ORDER BY id", (ref,))
                    for r in rs.split("\n")]
            had_key = self.keys.execute("SELECT 1 FROM subject_keys WHERE ref=?", (ref,)).fetchone() is not None
            # the key first: once it is gone nothing is readable, whatever happens next
            self.keys.execute("DELETE FROM subject_keys WHERE ref=?", (ref,))
            self._bump_generation()
            self.db.execute("BEGIN IMMEDIATE")
            n_groups = self.db.execute("DELETE FROM groups WHERE ref=?", (ref,)).rowcount
            self.db.execute("COMMIT")
            for con in (self.keys, self.db):
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                con.execute("VACUUM")
                con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return {"subject_ref": ref, "had_key": had_key, "records": len(rids), "ciphertexts": n_groups,
                "receipts": rids}

    def note_erasure(self, ref: str, time: str, records: int, log_index: int | None) -> None:
        self.keys.execute("INSERT INTO erasures VALUES (?,?,?,?)", (ref, time, records, log_index))

    def refs_with_payloads(self) -> Iterable[str]:
        return [r for (r,) in self.db.execute("SELECT DISTINCT ref FROM groups")]
