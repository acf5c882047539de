"""Witnesses (C2SP tlog-witness) and the log's side of collecting their cosignatures.

Witness side
    A witness directory holds ``witness.key`` (Ed25519 PKCS#8 PEM, mode 0600), ``witness.json``
    (its name and the logs it accepts: origin -> list of log vkeys) and ``state.db`` (SQLite: the
    latest cosigned checkpoint per origin, and an ``evidence`` table of refused checkpoints that
    are signed by the log but conflict with what the witness cosigned before -- split views).
    :meth:`Witness.add_checkpoint` is the whole add-checkpoint algorithm; the HTTP server in
    :mod:`ailedger.tlog.witness_http` only maps its errors to status codes.

Log side
    :func:`cosign_checkpoint` sends the ledger's current checkpoint, with a consistency proof
    from the size each witness last cosigned, to each witness URL, and keeps only the
    cosignatures that verify under a witness key the log trusts (named on the command line,
    ``witness trust``, or a configured witness's key): C2SP tlog-witness says a client MUST ignore
    cosignatures from keys it does not know. A witness that refuses, cannot be reached or answers
    with an unknown key is reported by name with the reason; :func:`collect_cosignatures` raises
    :class:`MissingCosignaturesError` unless the threshold is met or missing ones are allowed.
    What each witness last cosigned is remembered in ``<ledger>/witnesses.db`` (so the next request
    sends the right ``old`` size; a 409 answer re-syncs it), with the trusted keys and the latest
    checkpoint of each size that carries a trusted cosignature, which :func:`cosigned_checkpoint`
    and :func:`attach_cosignatures` hand out. Connections are kept alive and reused.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import sqlite3
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.errors import (
    AiledgerError,
    BadInputError,
    ConflictError,
    NetworkError,
    NotFoundError,
    ProofError,
)
from ailedger.tlog.checkpoint import Checkpoint, parse_checkpoint_text, parse_u64
from ailedger.tlog.cosignature import add_cosignatures, cosign, verify_cosignature
from ailedger.tlog.identities import read_private_key, write_private_key
from ailedger.tlog.merkle import verify_consistency
from ailedger.tlog.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Signature,
    Signer,
    Verifier,
    format_note,
    parse_note,
    parse_vkey,
)
from ailedger.tlog.private import PRIVATE_DIR_MODE, connect_private, private_dir, write_private
from ailedger.tlog.proofbundle import ProofBundle, parse_proof_bundle

__all__ = [
    "CosignResult",
    "MissingCosignaturesError",
    "Witness",
    "WitnessClient",
    "WitnessError",
    "WitnessReply",
    "attach_cosignatures",
    "collect_cosignatures",
    "configure_witness",
    "configured_witnesses",
    "cosign_checkpoint",
    "cosigned_checkpoint",
    "format_add_checkpoint_body",
    "missing_error",
    "parse_add_checkpoint_body",
    "remove_witness",
    "trust_witness_key",
    "trusted_witness_keys",
]

KEY_FILE = "witness.key"
CONFIG_FILE = "witness.json"
STATE_DB = "state.db"
MAX_PROOF_LINES = 63
SIZE_CONTENT_TYPE = "text/x.tlog.size"


class WitnessError(AiledgerError):
    """An add-checkpoint request the witness refuses, with the HTTP status the protocol gives it."""

    code = "witness_refused"

    def __init__(self, status: int, message: str, *, body: bytes | None = None,
                 content_type: str = "text/plain; charset=utf-8", **details: Any) -> None:
        super().__init__(message, status=status, **details)
        self.status = status
        self.body = body if body is not None else (message + "\n").encode()
        self.content_type = content_type


def parse_add_checkpoint_body(body: bytes) -> tuple[int, list[bytes], bytes]:
    """Split an add-checkpoint request body into (old size, consistency proof, checkpoint note)."""
    head, sep, note = body.partition(b"\n\n")
    if not sep or not head:
        raise WitnessError(400, "body must be an old size line, proof lines, a blank line and a checkpoint")
    lines = head.split(b"\n")
    first = lines[0]
    if not first.startswith(b"old "):
        raise WitnessError(400, "first line must be 'old <size>'")
    try:
        old = parse_u64(first[4:], "old size", "old")
    except BadInputError as exc:
        raise WitnessError(400, exc.message) from None
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise WitnessError(400, f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof: list[bytes] = []
    for ln in lines[1:]:
        try:
            h = base64.b64decode(ln, validate=True)
        except ValueError:  # binascii.Error is a ValueError
            raise WitnessError(400, "a consistency proof line is not base64") from None
        if len(h) != 32:
            raise WitnessError(400, "a consistency proof line is not a 32-byte hash")
        proof.append(h)
    return old, proof, note


def format_add_checkpoint_body(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    head = [f"old {old_size}"] + [base64.b64encode(h).decode() for h in proof]
    return ("\n".join(head) + "\n\n").encode() + note


# --------------------------------------------------------------------------- witness side


class Witness:
    """A C2SP tlog-witness: cosigns checkpoints that are consistent with what it cosigned before."""

    def __init__(self, path: Path, name: str, key: Ed25519PrivateKey, logs: dict[str, list[str]]) -> None:
        self.path = path
        self.name = name
        self.signer = Signer(name, key, alg=ALG_COSIGNATURE_V1)
        self.logs = {origin: [parse_vkey(v) for v in vkeys] for origin, vkeys in logs.items()}
        self._lock = threading.Lock()
        self._db = connect_private(path / STATE_DB, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS heads (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " root BLOB NOT NULL, note BLOB NOT NULL, cosigned_at INTEGER NOT NULL)"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS evidence (id INTEGER PRIMARY KEY, origin TEXT NOT NULL, at INTEGER NOT NULL,"
            " reason TEXT NOT NULL, cosigned_note BLOB NOT NULL, offered_note BLOB NOT NULL, old_size INTEGER,"
            " proof TEXT NOT NULL)"
        )

    # -- lifecycle
    @classmethod
    def init(cls, path: str | os.PathLike[str], name: str) -> Witness:
        p = Path(path)
        Signer(name, Ed25519PrivateKey.generate())  # validates the name
        if (p / CONFIG_FILE).exists():
            raise ConflictError(f"{p} already holds a witness", field="path")
        if p.is_dir() and not any(p.iterdir()):
            os.chmod(p, PRIVATE_DIR_MODE)  # an empty folder made for it: private before the key is written
        private_dir(p)
        write_private_key(p / KEY_FILE, Ed25519PrivateKey.generate())
        _write_json(p / CONFIG_FILE, {"format": "ailedger-witness/v1", "name": name, "logs": {}})
        return cls.open(p)

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Witness:
        p = Path(path)
        if not (p / CONFIG_FILE).exists():
            raise NotFoundError(f"no witness at {p} (create one with: ailedger witness init {p} --name NAME)",
                                field="witness")
        cfg = json.loads((p / CONFIG_FILE).read_text())
        key = read_private_key(p / KEY_FILE, os.environ.get("AILEDGER_WITNESS_PASSPHRASE"))
        return cls(p, cfg["name"], key, cfg.get("logs", {}))

    def close(self) -> None:
        self._db.close()

    @property
    def vkey(self) -> str:
        return self.signer.vkey

    def add_log(self, vkey: str, origin: str | None = None) -> str:
        """Accept checkpoints of the log with this Ed25519 vkey (origin defaults to the key name)."""
        v = parse_vkey(vkey)
        if v.alg != ALG_ED25519:
            raise BadInputError("a log key must be an Ed25519 (0x01) signed-note vkey", field="vkey")
        origin = origin or v.name
        cfg = json.loads((self.path / CONFIG_FILE).read_text())
        keys = cfg.setdefault("logs", {}).setdefault(origin, [])
        if v.vkey not in keys:
            keys.append(v.vkey)
        _write_json(self.path / CONFIG_FILE, cfg)
        self.logs.setdefault(origin, [])
        if all(x.vkey != v.vkey for x in self.logs[origin]):
            self.logs[origin].append(v)
        return origin

    # -- state
    def head(self, origin: str) -> tuple[int, bytes, bytes] | None:
        row = self._db.execute("SELECT size, root, note FROM heads WHERE origin = ?", (origin,)).fetchone()
        return (int(row[0]), bytes(row[1]), bytes(row[2])) if row else None

    def evidence(self, origin: str | None = None) -> list[dict[str, Any]]:
        q = "SELECT id, origin, at, reason, cosigned_note, offered_note, old_size, proof FROM evidence"
        rows = self._db.execute(q + (" WHERE origin = ?" if origin else "") + " ORDER BY id",
                                (origin,) if origin else ()).fetchall()
        return [
            {"id": r[0], "origin": r[1], "at": r[2], "reason": r[3], "cosigned_checkpoint": bytes(r[4]).decode(),
             "offered_checkpoint": bytes(r[5]).decode(), "old_size": r[6], "proof": json.loads(r[7])}
            for r in rows
        ]

    # -- the protocol
    def add_checkpoint(self, body: bytes, now: int | None = None) -> bytes:
        """Handle one add-checkpoint request body; return the cosignature line(s) or raise WitnessError."""
        old_size, proof, note_bytes = parse_add_checkpoint_body(body)
        try:
            note = parse_note(note_bytes)
            cp = parse_checkpoint_text(note.text)
        except BadInputError as exc:
            raise WitnessError(400, f"malformed checkpoint: {exc.message}") from None
        keys = self.logs.get(cp.origin)
        if not keys:
            raise WitnessError(404, f"unknown log origin {cp.origin!r}")
        if not _log_signed(note_bytes, note, keys):
            raise WitnessError(403, "no signature on the checkpoint verifies under a known key of this log")
        if old_size > cp.size:
            raise WitnessError(400, f"old size {old_size} is larger than the checkpoint size {cp.size}")
        if old_size == 0 and proof:
            raise WitnessError(400, "the consistency proof must be empty when the old size is 0")
        ts = int(time.time()) if now is None else now
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                line = self._check_and_cosign(cp, note.text, note_bytes, old_size, proof, ts)
            except BaseException:
                self._db.execute("COMMIT")  # evidence rows (if any) are kept; the head is unchanged
                raise
            self._db.execute("COMMIT")
        return line

    def _check_and_cosign(self, cp: Checkpoint, text: str, note_bytes: bytes, old_size: int,
                          proof: list[bytes], ts: int) -> bytes:
        head = self.head(cp.origin)
        cur_size = head[0] if head else 0
        if old_size != cur_size:
            raise WitnessError(409, f"old size {old_size} does not match the latest cosigned size {cur_size}",
                               body=f"{cur_size}\n".encode(), content_type=SIZE_CONTENT_TYPE)
        if head is not None:
            _, cur_root, cur_note = head
            if cp.size == cur_size:
                if cp.root != cur_root:
                    self._keep_evidence(cp.origin, ts, "same size, different root (split view)", cur_note,
                                        note_bytes, old_size, proof)
                    raise WitnessError(409, "checkpoint has the cosigned size but a different root: split view",
                                       body=f"{cur_size}\n".encode(), content_type=SIZE_CONTENT_TYPE)
                if proof:
                    raise WitnessError(422, "consistency proof between equal sizes must be empty")
            else:
                try:
                    verify_consistency(cur_size, cp.size, cur_root, cp.root, proof)
                except ProofError as exc:
                    self._keep_evidence(cp.origin, ts, f"inconsistent with the cosigned checkpoint: {exc.message}",
                                        cur_note, note_bytes, old_size, proof)
                    raise WitnessError(422, f"consistency proof does not verify: {exc.message}") from None
        sig = cosign(text, self.signer, ts)
        self._db.execute(
            "INSERT OR REPLACE INTO heads (origin, size, root, note, cosigned_at) VALUES (?, ?, ?, ?, ?)",
            (cp.origin, cp.size, cp.root, note_bytes, ts),
        )
        return sig.line().encode()

    def _keep_evidence(self, origin: str, at: int, reason: str, cosigned: bytes, offered: bytes, old_size: int,
                       proof: list[bytes]) -> None:
        self._db.execute(
            "INSERT INTO evidence (origin, at, reason, cosigned_note, offered_note, old_size, proof)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (origin, at, reason, cosigned, offered, old_size,
             json.dumps([base64.b64encode(h).decode() for h in proof])),
        )


def _log_signed(note_bytes: bytes, note: Any, keys: list[Verifier]) -> bool:
    for k in keys:
        for s in note.signatures:
            if s.name == k.name and s.key_id == k.key_id and k.verify(note.text.encode(), s.sig):
                return True
    return False


def _write_json(path: Path, obj: Any) -> None:
    write_private(path, json.dumps(obj, indent=1, sort_keys=True) + "\n", durable=True)


# --------------------------------------------------------------------------- log side


class MissingCosignaturesError(NetworkError):
    """Fewer witnesses cosigned than were asked for (or than the threshold); says which and why."""

    code = "cosignatures_missing"


@dataclass
class WitnessReply:
    url: str
    ok: bool  # a cosignature verifying under a trusted key was received
    status: int  # HTTP status, 0 when the witness could not be reached
    lines: bytes = b""  # the trusted cosignature lines kept
    error: str = ""
    seconds: float = 0.0
    name: str = ""  # the witness's key name when known (its trusted cosignature, or its configured key)
    dropped: tuple[str, ...] = ()  # "name/keyid" of cosignatures ignored: keys nobody trusts

    @property
    def label(self) -> str:
        return f"{self.name} ({self.url})" if self.name else self.url

    def to_dict(self) -> dict[str, Any]:
        return {"url": self.url, "name": self.name or None, "ok": self.ok, "status": self.status,
                "error": self.error, "dropped": list(self.dropped), "seconds": round(self.seconds, 4)}


@dataclass
class CosignResult:
    """What collecting cosignatures gave: the checkpoint with the trusted cosignatures, each
    witness's answer, and whether the policy (``needed`` distinct trusted keys) was met."""

    checkpoint: bytes
    replies: list[WitnessReply]
    cosigners: list[str]  # key names whose cosignature of this checkpoint was received now
    needed: int

    @property
    def ok(self) -> bool:
        return len(self.cosigners) >= self.needed

    def failures(self) -> list[WitnessReply]:
        return [r for r in self.replies if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "cosigned_by": self.cosigners, "needed": self.needed,
                "witnesses": [r.to_dict() for r in self.replies]}


class _ConnectionPool:
    """Idle keep-alive HTTP connections by (scheme, host, port), shared by every WitnessClient of
    the process: asking several witnesses on one host, a 409 re-sync and the next round reuse them."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int, float], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self.opened = 0  # connections made (for tests and stats)

    def get(self, scheme: str, host: str, port: int, timeout: float) -> tuple[http.client.HTTPConnection, bool]:
        key = (scheme, host, port, timeout)
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
            self.opened += 1
        cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        return cls(host, port, timeout=timeout), False

    def put(self, scheme: str, host: str, port: int, timeout: float, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault((scheme, host, port, timeout), [])
            if len(idle) < 8:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            conns = [c for cs in self._idle.values() for c in cs]
            self._idle.clear()
        for c in conns:
            c.close()


_POOL = _ConnectionPool()


class WitnessClient:
    """HTTP client for one witness URL (the submission prefix); connections are kept alive and
    reused (HTTP/1.1) through a process-wide pool."""

    def __init__(self, url: str, timeout: float = 10.0, pool: _ConnectionPool | None = None) -> None:
        u = urllib.parse.urlsplit(url.rstrip("/"))
        if u.scheme not in ("http", "https") or not u.hostname:
            raise BadInputError("witness URL must be http:// or https://", field="url", found=url)
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._scheme = u.scheme
        self._host = u.hostname
        try:
            self._port = u.port or (443 if u.scheme == "https" else 80)
        except ValueError:
            raise BadInputError(f"witness URL {url!r} has a bad port", field="url") from None
        self._path = (u.path or "") + "/add-checkpoint"
        self._pool = pool or _POOL

    def add_checkpoint(self, body: bytes) -> tuple[int, str, bytes]:
        where = (self._scheme, self._host, self._port, self.timeout)
        for attempt in range(2):
            conn, reused = self._pool.get(*where)
            try:
                conn.request("POST", self._path, body=body,
                             headers={"Content-Type": "text/plain; charset=utf-8", "Connection": "keep-alive"})
                resp = conn.getresponse()
                data = resp.read()
            except (http.client.HTTPException, OSError) as exc:
                conn.close()
                if reused and attempt == 0:  # the witness closed an idle connection: once more on a new one
                    continue
                raise NetworkError(f"witness {self.url} unreachable: {exc}", url=self.url) from None
            if resp.will_close:
                conn.close()
            else:
                self._pool.put(*where, conn)
            return resp.status, resp.getheader("Content-Type", ""), data
        raise NetworkError(f"witness {self.url} unreachable", url=self.url)  # pragma: no cover


def _client_db(ledger_path: Path) -> sqlite3.Connection:
    db = connect_private(ledger_path / "witnesses.db", isolation_level=None, timeout=30)
    db.execute("CREATE TABLE IF NOT EXISTS witness_sizes (url TEXT PRIMARY KEY, size INTEGER NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS cosigned (size INTEGER PRIMARY KEY, note BLOB NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS configured (url TEXT PRIMARY KEY, vkey TEXT)")
    db.execute("CREATE TABLE IF NOT EXISTS trusted (vkey TEXT PRIMARY KEY)")
    if db.execute("PRAGMA user_version").fetchone()[0] < 1:
        _drop_untrusted_rows(db, ledger_path)
        db.execute("PRAGMA user_version = 1")
    return db


def _drop_untrusted_rows(db: sqlite3.Connection, ledger_path: Path) -> None:
    """Ledgers written before cosignatures were checked may hold lines from keys nobody trusted:
    keep only those verifying under a trusted or configured key (a row left without any goes)."""
    keys = _known_keys(db)
    try:
        log: Verifier | None = parse_vkey((ledger_path / "log.vkey").read_text())
    except (OSError, BadInputError):
        log = None
    for size, note in db.execute("SELECT size, note FROM cosigned").fetchall():
        kept = _trusted_only(bytes(note), keys, log)
        if kept is None:
            db.execute("DELETE FROM cosigned WHERE size = ?", (size,))
        elif kept != bytes(note):
            db.execute("UPDATE cosigned SET note = ? WHERE size = ?", (kept, size))


def _witness_key(vkey: str | Verifier) -> Verifier:
    v = parse_vkey(vkey) if isinstance(vkey, str) else vkey
    if v.alg != ALG_COSIGNATURE_V1:
        raise BadInputError(f"witness key {v.name} is not a cosignature/v1 (0x04) key (the witness's "
                            "`ailedger witness vkey`)", field="witness_vkey")
    return v


def _known_keys(db: sqlite3.Connection) -> list[Verifier]:
    out: dict[str, Verifier] = {}
    rows = db.execute("SELECT vkey FROM trusted UNION ALL SELECT vkey FROM configured WHERE vkey IS NOT NULL")
    for (v,) in rows:
        try:
            w = _witness_key(v)
        except BadInputError:
            continue
        out[w.vkey] = w
    return list(out.values())


def _trusted_only(note_bytes: bytes, keys: Sequence[Verifier], log: Verifier | None) -> bytes | None:
    """The note with only the log's signature and the cosignatures verifying under ``keys``;
    None when no such cosignature is left. (``log`` None: keep the Ed25519 signature lines, which
    in a stored checkpoint are the log's.)"""
    note = parse_note(note_bytes)
    text = note.text
    good = [s for s in note.signatures if any(_cosig_ok(text, s, k) for k in keys)]
    if not good:
        return None
    if log is not None:
        head = [s for s in note.signatures if (s.name, s.key_id) == (log.name, log.key_id)]
    else:
        head = [s for s in note.signatures if len(s.sig) == 64 and s not in good]
    return format_note(text, [*head, *good])


def configure_witness(ledger: Any, url: str, vkey: str | None = None) -> None:
    """Add (or update) a witness the log asks for cosignatures by default. With its vkey, only
    cosignatures verifying under that key count for that URL; without, those by trusted keys."""
    WitnessClient(url)  # validates the URL
    if vkey is not None:
        vkey = _witness_key(vkey).vkey
    db = _client_db(Path(ledger.path))
    try:
        db.execute("INSERT OR REPLACE INTO configured (url, vkey) VALUES (?, ?)", (url.rstrip("/"), vkey))
    finally:
        db.close()


def remove_witness(ledger: Any, url: str) -> bool:
    db = _client_db(Path(ledger.path))
    try:
        return db.execute("DELETE FROM configured WHERE url = ?", (url.rstrip("/"),)).rowcount > 0
    finally:
        db.close()


def configured_witnesses(ledger: Any) -> list[tuple[str, str | None]]:
    """The log's configured witnesses: (url, vkey or None), in the order they were added."""
    if not (Path(ledger.path) / "witnesses.db").exists():
        return []
    db = _client_db(Path(ledger.path))
    try:
        return [(str(u), v) for u, v in db.execute("SELECT url, vkey FROM configured ORDER BY rowid")]
    finally:
        db.close()


def trust_witness_key(ledger: Any, vkey: str, *, remove: bool = False) -> bool:
    """Add (or with ``remove``, drop) a witness key whose cosignatures this log keeps, whichever
    URL they come from; returns whether the list changed."""
    v = _witness_key(vkey)
    db = _client_db(Path(ledger.path))
    try:
        if remove:
            return db.execute("DELETE FROM trusted WHERE vkey = ?", (v.vkey,)).rowcount > 0
        return db.execute("INSERT OR IGNORE INTO trusted (vkey) VALUES (?)", (v.vkey,)).rowcount > 0
    finally:
        db.close()


def trusted_witness_keys(ledger: Any) -> list[str]:
    """Witness vkeys this log trusts (`witness trust`), in the order they were added."""
    if not (Path(ledger.path) / "witnesses.db").exists():
        return []
    db = _client_db(Path(ledger.path))
    try:
        return [str(v) for (v,) in db.execute("SELECT vkey FROM trusted ORDER BY rowid")]
    finally:
        db.close()


def _ask(ledger: Any, client: WitnessClient, old: int, note: bytes, cp: Checkpoint,
         proofs: dict[int, list[bytes]] | None = None) -> tuple[int, str, bytes, float]:
    if old > cp.size:
        return 409, "", f"witness has cosigned size {old}, larger than ours {cp.size}".encode(), 0.0
    if proofs is not None and old in proofs:
        proof = proofs[old]
    else:
        proof = ledger.log.consistency_proof(old, cp.size) if 0 < old < cp.size else []
    t0 = time.perf_counter()
    try:
        status, ctype, body = client.add_checkpoint(format_add_checkpoint_body(old, proof, note))
    except NetworkError as exc:
        return 0, "", exc.message.encode(), time.perf_counter() - t0
    return status, ctype, body, time.perf_counter() - t0


CLOCK_SKEW_S = 600  # a cosignature dated more than this in the future is not kept


def cosign_checkpoint(ledger: Any, urls: Sequence[str] | None = None, *, timeout: float = 10.0,
                      witness_vkeys: Sequence[str | Verifier] = (), threshold: int | None = None,
                      on_reply: Callable[[WitnessReply], None] | None = None) -> CosignResult:
    """Ask the witnesses at ``urls`` (default: the configured ones) to cosign the ledger's current
    checkpoint and keep only what a client may keep (C2SP tlog-witness: cosignatures from keys it
    does not know are ignored).

    A cosignature counts when it verifies, for this very checkpoint, under a trusted key: one of
    ``witness_vkeys``, the ledger's trusted keys (:func:`trust_witness_key`) or the keys of the
    configured witnesses; for a URL configured with a key, only that key. Every witness is asked at
    once (one thread each, keep-alive connections), each with a consistency proof from the size it
    last cosigned (remembered in ``<ledger>/witnesses.db``; a 409 answer re-syncs it and the request
    is sent once more). ``threshold`` (default: every witness asked) is how many distinct trusted
    keys must have cosigned for :attr:`CosignResult.ok`. The checkpoint is stored (for
    :func:`cosigned_checkpoint` and proof bundles) only when it carries a trusted cosignature."""
    from concurrent.futures import ThreadPoolExecutor

    given = [_witness_key(v) for v in witness_vkeys]
    conf = configured_witnesses(ledger)
    if not urls:
        if not conf:
            raise BadInputError("no witness URL given and none configured "
                                "(ailedger witness configure --url URL --vkey VKEY)", field="url")
        urls = [u for u, _ in conf]
    urls = list(dict.fromkeys(u.rstrip("/") for u in urls))
    clients = {u: WitnessClient(u, timeout) for u in urls}  # validates every URL first
    bound = {u: _witness_key(v) for u, v in conf if v}
    db = _client_db(Path(ledger.path))
    try:
        known = {v.vkey: v for v in [*given, *_known_keys(db)]}
        accept: dict[str, list[Verifier]] = {u: [bound[u]] if u in bound else list(known.values()) for u in urls}
        unkeyed = [u for u in urls if not accept[u]]
        if unkeyed:
            raise BadInputError(
                "no trusted witness key for " + ", ".join(unkeyed) + ": pass --witness-vkey VKEY (the witness's "
                "`ailedger witness vkey`) or trust it once with `ailedger witness trust VKEY`; a client ignores "
                "cosignatures from keys it does not know (C2SP tlog-witness)", field="witness_vkey")
        needed = len(urls) if threshold is None else threshold
        if not 0 <= needed <= len(urls):
            raise BadInputError(f"witness threshold {needed} must be between 0 and the number of witnesses "
                                f"asked ({len(urls)})", field="witness_threshold")
        note = ledger.checkpoint()
        text = parse_note(note).text
        cp = parse_checkpoint_text(text)
        olds = {}
        for url in urls:
            row = db.execute("SELECT size FROM witness_sizes WHERE url = ?", (url,)).fetchone()
            olds[url] = int(row[0]) if row else 0
        # proofs are read here, in this thread (the store's connection belongs to it)
        proofs = {o: ledger.log.consistency_proof(o, cp.size) for o in set(olds.values()) if 0 < o < cp.size}
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(urls)))) as ex:
            firsts = list(ex.map(lambda u: _ask(ledger, clients[u], olds[u], note, cp, proofs), urls))
        now = int(time.time()) + CLOCK_SKEW_S
        replies: list[WitnessReply] = []
        kept: list[Signature] = []
        cosigners: list[str] = []
        counted: set[tuple[str, bytes]] = set()
        updates: list[tuple[str, int]] = []
        for url, (status, ctype, body, secs) in zip(urls, firsts):
            if status == 409 and ctype.startswith(SIZE_CONTENT_TYPE):
                try:
                    new_old = parse_u64(body.strip(), "witness size")
                except BadInputError:
                    new_old = olds[url]
                if new_old != olds[url]:  # out of sync: once more from the size the witness holds
                    status, ctype, body, secs2 = _ask(ledger, clients[url], new_old, note, cp)
                    secs += secs2
            reply = _judge(url, status, body, secs, text, accept[url], bound.get(url), now)
            if status == 200:
                updates.append((url, cp.size))  # the witness's view of the log moved, whoever's key it is
            for s in parse_note(b"x\n\n" + reply.lines).signatures if reply.lines else ():
                if (s.name, s.key_id) not in counted:  # one key counts (and is kept) once, whichever URL
                    counted.add((s.name, s.key_id))
                    kept.append(s)
                    cosigners.append(s.name)
            replies.append(reply)
            if on_reply:
                on_reply(reply)
        out = add_cosignatures(note, kept) if kept else note
        row = db.execute("SELECT note FROM cosigned WHERE size = ?", (cp.size,)).fetchone()
        if row and parse_note(bytes(row[0])).text == text:  # cosignatures of this checkpoint from earlier rounds
            earlier = _trusted_only(bytes(row[0]), [*known.values(), *bound.values()], ledger.verifier)
            if earlier is not None:  # one line per key: this round's (a newer timestamp) wins
                have = {(s.name, s.key_id) for s in parse_note(out).signatures}
                out = add_cosignatures(out, [s for s in parse_note(earlier).signatures
                                             if (s.name, s.key_id) not in have])
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO witness_sizes (url, size) VALUES (?, ?)", updates)
        if len(parse_note(out).signatures) > len(parse_note(note).signatures):
            db.execute("INSERT OR REPLACE INTO cosigned (size, note) VALUES (?, ?)", (cp.size, out))
        db.execute("COMMIT")
        return CosignResult(out, replies, cosigners, needed)
    finally:
        db.close()


def _judge(url: str, status: int, body: bytes, secs: float, text: str, accept: Sequence[Verifier],
           bound: Verifier | None, now: int) -> WitnessReply:
    """One witness's answer -> the cosignature lines kept (trusted key, this checkpoint) and why not."""
    name = bound.name if bound else ""
    if status != 200:
        msg = body.decode(errors="replace").strip()[:300]
        if status == 0:
            return WitnessReply(url, False, 0, error=f"unreachable: {msg}", seconds=secs, name=name)
        return WitnessReply(url, False, status, error=f"refused ({status}): {msg or 'no reason given'}",
                            seconds=secs, name=name)
    try:
        sigs = parse_note(b"x\n\n" + body).signatures if body else ()
    except BadInputError as exc:
        return WitnessReply(url, False, status, error=f"bad response: {exc.message}", seconds=secs, name=name)
    good: list[Signature] = []
    dropped: list[str] = []
    for s in sigs:
        if any(_cosig_ok(text, s, k, now) for k in accept):
            good.append(s)
        else:
            dropped.append(f"{s.name}/{s.key_id.hex()}")
    if not good:
        why = ("answered with no cosignature" if not sigs else
               "answered only with cosignatures that do not verify under a trusted key (ignored: "
               + ", ".join(dropped) + ")")
        return WitnessReply(url, False, status, error=why, seconds=secs, name=name or (sigs[0].name if sigs else ""),
                            dropped=tuple(dropped))
    lines = b"".join(s.line().encode() for s in good)
    return WitnessReply(url, True, status, lines, seconds=secs, name=good[0].name, dropped=tuple(dropped))


def collect_cosignatures(ledger: Any, urls: Sequence[str] | None = None, *, timeout: float = 10.0,
                         witness_vkeys: Sequence[str | Verifier] = (), threshold: int | None = None,
                         allow_missing: bool = False,
                         on_reply: Callable[[WitnessReply], None] | None = None) -> bytes:
    """:func:`cosign_checkpoint`, returning the cosigned checkpoint; unless ``allow_missing``, raise
    :class:`MissingCosignaturesError` naming each witness that did not cosign, and why, when fewer
    than ``threshold`` (default: all) trusted keys cosigned."""
    res = cosign_checkpoint(ledger, urls, timeout=timeout, witness_vkeys=witness_vkeys, threshold=threshold,
                            on_reply=on_reply)
    if not res.ok and not allow_missing:
        raise missing_error(res)
    return res.checkpoint


def missing_error(res: CosignResult) -> MissingCosignaturesError:
    why = "; ".join(f"witness {r.label}: {r.error}" for r in res.failures())
    return MissingCosignaturesError(
        f"{len(res.cosigners)} of {len(res.replies)} witnesses cosigned, {res.needed} needed ({why}); "
        "pass --allow-missing-cosignatures or a lower --witness-threshold to accept fewer",
        expected=res.needed, found=len(res.cosigners), witnesses=[r.to_dict() for r in res.replies])


def _cosig_ok(text: str, s: Signature, v: Verifier, now: int | None = None) -> bool:
    try:
        verify_cosignature(text, s, v, now)
        return True
    except AiledgerError:
        return False


def cosigned_checkpoint(ledger: Any, size: int | None = None) -> bytes | None:
    """The cosigned checkpoint of ``size`` (default: the largest) collected earlier, if any."""
    p = Path(ledger.path) / "witnesses.db"
    if not p.exists():
        return None
    db = _client_db(Path(ledger.path))
    try:
        if size is None:
            row = db.execute("SELECT note FROM cosigned ORDER BY size DESC LIMIT 1").fetchone()
        else:
            row = db.execute("SELECT note FROM cosigned WHERE size = ?", (size,)).fetchone()
        return bytes(row[0]) if row else None
    finally:
        db.close()


def attach_cosignatures(ledger: Any, bundle_bytes: bytes) -> bytes:
    """Return the proof bundle with its checkpoint replaced by the cosigned copy of the same
    checkpoint (same body), if cosignatures were collected for it; else the bundle unchanged."""
    b = parse_proof_bundle(bundle_bytes)
    text = parse_note(b.checkpoint).text
    size = parse_checkpoint_text(text).size
    cos = cosigned_checkpoint(ledger, size)
    if cos is None or parse_note(cos).text != text:
        return bundle_bytes
    merged = add_cosignatures(b.checkpoint, parse_note(cos).signatures)
    return ProofBundle(b.index, b.proof, merged, b.extra).to_bytes()
