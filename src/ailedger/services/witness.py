"""Witnesses (C2SP tlog-witness) and the log's side of collecting their cosignatures.

Witness side
    A witness directory holds ``witness.key`` (Ed25519 PKCS#8 PEM, mode 0600), ``witness.json``
    (its name and the logs it accepts: origin -> list of log vkeys) and ``state.db`` (SQLite: the
    latest cosigned checkpoint per origin, and an ``evidence`` table of refused checkpoints that
    are signed by the log but conflict with what the witness cosigned before -- split views).
    :meth:`Witness.add_checkpoint` is the whole add-checkpoint algorithm; the HTTP server in
    :mod:`ailedger.services.witness_http` only maps its errors to status codes.

Log side
    :func:`collect_cosignatures` sends the ledger's current checkpoint, with a consistency proof
    from the size each witness last cosigned, to each witness URL, and returns the checkpoint
    carrying the log signature plus every cosignature it got.  What each witness last cosigned is
    remembered in ``<ledger>/witnesses.db`` (so the next request sends the right ``old`` size; a
    409 answer re-syncs it), together with the latest cosigned checkpoint of each size, which
    :func:`cosigned_checkpoint` and :func:`attach_cosignatures` hand out.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.core.checkpoint import Checkpoint, parse_checkpoint_text, parse_u64
from ailedger.core.cosignature import add_cosignatures, cosign, verify_cosignature
from ailedger.core.errors import (
    AiledgerError,
    BadInputError,
    ConflictError,
    NetworkError,
    NotFoundError,
    ProofError,
)
from ailedger.core.merkle import verify_consistency
from ailedger.core.note import ALG_COSIGNATURE_V1, ALG_ED25519, Signer, Verifier, parse_note, parse_vkey
from ailedger.core.proofbundle import ProofBundle, parse_proof_bundle
from ailedger.services.identities import read_private_key, write_private_key
from ailedger.storage.private import PRIVATE_DIR_MODE, connect_private, private_dir, write_private

__all__ = [
    "Witness",
    "WitnessClient",
    "WitnessError",
    "WitnessReply",
    "attach_cosignatures",
    "collect_cosignatures",
    "configure_witness",
    "configured_witnesses",
    "remove_witness",
    "cosigned_checkpoint",
    "format_add_checkpoint_body",
    "parse_add_checkpoint_body",
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


@dataclass
class WitnessReply:
    url: str
    ok: bool
    status: int
    lines: bytes = b""
    error: str = ""
    seconds: float = 0.0


class WitnessClient:
    """HTTP client for one witness URL (the submission prefix), with a keep-alive-free simple POST."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def add_checkpoint(self, body: bytes) -> tuple[int, str, bytes]:
        req = urllib.request.Request(self.url + "/add-checkpoint", data=body, method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.status, resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("Content-Type", "") if exc.headers else "", exc.read()
        except (urllib.error.URLError, OSError) as exc:
            raise NetworkError(f"witness {self.url} unreachable: {exc}", url=self.url) from None


def _client_db(ledger_path: Path) -> sqlite3.Connection:
    db = connect_private(ledger_path / "witnesses.db", isolation_level=None, timeout=30)
    db.execute("CREATE TABLE IF NOT EXISTS witness_sizes (url TEXT PRIMARY KEY, size INTEGER NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS cosigned (size INTEGER PRIMARY KEY, note BLOB NOT NULL)")
    db.execute("CREATE TABLE IF NOT EXISTS configured (url TEXT PRIMARY KEY, vkey TEXT)")
    return db


def configure_witness(ledger: Any, url: str, vkey: str | None = None) -> None:
    """Add (or update) a witness the log asks for cosignatures by default; with its vkey, only
    cosignatures verifying under it are kept."""
    if not url.startswith(("http://", "https://")):
        raise BadInputError("witness URL must be http:// or https://", field="url", found=url)
    if vkey is not None and parse_vkey(vkey).alg != ALG_COSIGNATURE_V1:
        raise BadInputError("a witness vkey must be a cosignature/v1 (0x04) key", field="vkey")
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


def collect_cosignatures(ledger: Any, urls: Sequence[str] | None = None, *, timeout: float = 10.0,
                         witness_vkeys: Sequence[str] = (),
                         on_reply: Callable[[WitnessReply], None] | None = None) -> bytes:
    """The ledger's current checkpoint carrying the cosignatures of the witnesses at ``urls``.

    All witnesses are asked at once (one thread each), each with a consistency proof from the size
    it last cosigned (remembered in ``<ledger>/witnesses.db``; a 409 answer re-syncs it and the
    request is sent once more).  Witnesses that fail (unreachable, refusing) are skipped and
    ``on_reply`` is told about each.  If ``witness_vkeys`` are given, only cosignatures verifying
    under them are kept.  The result is also remembered (see :func:`cosigned_checkpoint`).

    With no ``urls``, the log's configured witnesses are asked (:func:`configure_witness`), and
    those configured with a vkey contribute only cosignatures that verify under it."""
    from concurrent.futures import ThreadPoolExecutor

    if not urls:
        conf = configured_witnesses(ledger)
        if not conf:
            raise BadInputError("no witness URL given and none configured "
                                "(ailedger witness configure --url URL --vkey VKEY)", field="url")
        urls = [u for u, _ in conf]
        if not witness_vkeys and all(v for _, v in conf):
            witness_vkeys = [v for _, v in conf if v]
    urls = [u.rstrip("/") for u in urls]
    note = ledger.checkpoint()
    cp = parse_checkpoint_text(parse_note(note).text)
    db = _client_db(Path(ledger.path))
    try:
        known = [parse_vkey(v) for v in witness_vkeys]
        olds = {}
        for url in urls:
            row = db.execute("SELECT size FROM witness_sizes WHERE url = ?", (url,)).fetchone()
            olds[url] = int(row[0]) if row else 0
        # proofs are read here, in this thread (the store's connection belongs to it)
        proofs = {o: ledger.log.consistency_proof(o, cp.size) for o in set(olds.values()) if 0 < o < cp.size}
        clients = {u: WitnessClient(u, timeout) for u in urls}
        with ThreadPoolExecutor(max_workers=max(1, min(16, len(urls)))) as ex:
            firsts = list(ex.map(lambda u: _ask(ledger, clients[u], olds[u], note, cp, proofs), urls))
        out = note
        row = db.execute("SELECT note FROM cosigned WHERE size = ?", (cp.size,)).fetchone()
        if row and parse_note(bytes(row[0])).text == parse_note(note).text:
            out = add_cosignatures(note, parse_note(bytes(row[0])).signatures)
        updates: list[tuple[str, int]] = []
        for url, (status, ctype, body, secs) in zip(urls, firsts):
            if status == 409 and ctype.startswith(SIZE_CONTENT_TYPE):
                try:
                    new_old = int(body.strip())
                except ValueError:
                    new_old = olds[url]
                if new_old != olds[url]:  # out of sync: once more from the size the witness holds
                    status, ctype, body, secs2 = _ask(ledger, clients[url], new_old, note, cp)
                    secs += secs2
            reply = WitnessReply(url, status == 200, status, body if status == 200 else b"",
                                 "" if status == 200 else (body.decode(errors="replace").strip() or "unreachable"),
                                 secs)
            if reply.ok:
                try:
                    sigs = parse_note(b"x\n\n" + reply.lines).signatures
                except BadInputError as exc:
                    reply = WitnessReply(url, False, status, error=f"bad response: {exc.message}", seconds=secs)
                    sigs = ()
                if known:
                    sigs = tuple(s for s in sigs if any(_cosig_ok(cp, s, v) for v in known))
                if reply.ok:
                    updates.append((url, cp.size))
                out = add_cosignatures(out, sigs)
            if on_reply:
                on_reply(reply)
        db.execute("BEGIN")
        db.executemany("INSERT OR REPLACE INTO witness_sizes (url, size) VALUES (?, ?)", updates)
        db.execute("INSERT OR REPLACE INTO cosigned (size, note) VALUES (?, ?)", (cp.size, out))
        db.execute("COMMIT")
        return out
    finally:
        db.close()


def _cosig_ok(cp: Checkpoint, s: Any, v: Verifier) -> bool:
    try:
        verify_cosignature(cp.text(), s, v)
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
