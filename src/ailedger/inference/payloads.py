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
from ailedger.tlog.private import connect_private, private_dir

__all__ = ["ErasedError", "PayloadItem", "PayloadStore", "inference_dir"]

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


def _pack(items: Sequence[tuple[str, bytes, bytes | None, bytes | None]]) -> bytes:
    """(rid, salt, input, output) tuples -> len(rid) rid salt (u32 len + bytes | u32 0xFFFFFFFF) x 2."""
    out: list[bytes] = []
    for rid_s, salt, inp, outp in items:
        rid = rid_s.encode()
        out += (bytes((len(rid),)), rid, salt,
                _NONE_B if inp is None else _u32(len(inp)), inp or b"",
                _NONE_B if outp is None else _u32(len(outp)), outp or b"")
    return b"".join(out)


def _unpack(data: bytes) -> list[PayloadItem]:
    """Inverse of :func:`_pack`; damaged bytes (every length is checked) raise TamperError."""
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

    # -- write ------------------------------------------------------------------
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
                (gid,) = db.execute("SELECT coalesce(max(id), 0) FROM groups").fetchone()
                rows = []
                for ref, items in groups.items():
                    gid += 1
                    nonce = os.urandom(12)
                    ct = AESGCM(keys[ref]).encrypt(nonce, _pack(items), _AAD + ref.encode() + b"|%d" % gid)
                    ns = [int(it[0][13:]) for it in items]
                    rows.append((gid, ref, nonce, ct, items[0][0][:12], min(ns), max(ns),
                                 "\n".join(it[0] for it in items)))
                db.executemany("INSERT INTO groups VALUES (?,?,?,?,?,?,?,?)", rows)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself after some errors (disk full)
                    db.execute("ROLLBACK")
                raise

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
        for it in _unpack(pt):
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
