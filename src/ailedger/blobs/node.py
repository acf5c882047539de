"""A storage node: an HTTP server that keeps shards by their SHA-256 and answers storage challenges.

It never sees plaintext (clients encrypt before erasure coding) and trusts no client: an upload is
accepted only if its bytes hash to the name it is stored under. On upload it also keeps the shard's
segment leaf hashes (``core.shardproof``) in a sidecar file so a challenge is answered without
rehashing the shard.

Writes (PUT and DELETE) need a credential (docs/storage.md): an RFC 9421 signature by a did:key the
operator admitted (``--allow`` / ``--allow-file``) or an operator-issued bearer token
(``--token-file``); without one the answer is 401 (403 for a key not admitted), before any byte of
the body is read, and nothing is stored. Reads are open: shards are ciphertext, named by their hash.
Request heads and bodies have deadlines (:mod:`ailedger.server.guard`).

API (all under ``/v1``):
  GET    /v1/health                      -> {"ok": true, "shards": N, "used": bytes, "capacity": ...}
  PUT    /v1/shards/<sha256-hex>         body = shard bytes (Content-Length required)
                                         201 stored, 200 already held, 400 hash/length mismatch,
                                         507 no space (disk full or over --capacity)
  GET    /v1/shards/<sha256-hex>         -> shard bytes
  HEAD   /v1/shards/<sha256-hex>         -> 200 with Content-Length, or 404
  GET    /v1/shards/<hex>/proof?index=i  -> {"index", "size", "segment" (base64), "proof" [hex]}
  DELETE /v1/shards/<sha256-hex>

``fault`` makes the node misbehave on purpose, for fault-injection tests and demos:
``corrupt`` flips a bit in every shard it serves, ``vanish`` sends half a shard and drops the
connection, ``slow`` waits 0.2 s per MiB, ``hang`` sends half a shard and then stalls (60 s).
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlparse

from ailedger.encoding.httpsig import ForbiddenError, UnauthenticatedError
from ailedger.errors import BadInputError
from ailedger.provenance.shardproof import SEGMENT, ShardHasher, inclusion_proof
from ailedger.server.auth import WWW_AUTHENTICATE, Credential, KeyList, TokenFile, WriteAuth
from ailedger.server.guard import Deadlines, GuardedHandler, GuardedServer, content_length

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["StorageNode", "serve"]

_NAME = re.compile(r"^/v1/shards/([0-9a-f]{64})(/proof)?$")
_IO = 1 << 20
FAULTS = ("corrupt", "vanish", "slow", "hang")


class _NoSpace(Exception):
    pass


class StorageNode:
    def __init__(self, directory: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0,
                 capacity: int | None = None, fault: str | None = None, *, allow: Any = (),
                 allow_file: str | os.PathLike[str] | None = None, token_file: str | os.PathLike[str] | None = None,
                 deadlines: Deadlines | None = None) -> None:
        """``allow``/``allow_file``: did:keys whose signed requests may write; ``token_file``: the
        operator's write tokens (``ailedger write-token new --file``). With none of them the node
        takes no writes at all."""
        if fault is not None and fault not in FAULTS:
            raise BadInputError(f"unknown fault {fault!r} (one of {', '.join(FAULTS)})", field="fault")
        tokens = TokenFile(token_file) if token_file is not None else None
        if tokens is not None:
            tokens.check_file()
        self.auth = WriteAuth(tokens=tokens, admit=KeyList(allow, allow_file), what="this storage node")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        for stale in self.dir.glob(".tmp-*"):
            stale.unlink(missing_ok=True)
        self.capacity = capacity
        self.fault = fault
        self._lock = threading.Lock()
        self._reserved = 0
        node = self

        class Handler(_Handler):
            pass

        Handler.node = node
        Handler.deadlines = deadlines or Deadlines()
        self.httpd = GuardedServer((host, port), Handler)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    @property
    def url(self) -> str:
        host = self.httpd.server_address[0]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{self.port}"

    def used(self) -> int:
        return sum(p.stat().st_size for p in self.dir.iterdir() if len(p.name) == 64)

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), name=f"storage-node-{self.port}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # quota bookkeeping (the real disk can also fill up: ENOSPC is mapped to the same answer)
    def reserve(self, n: int) -> None:
        if self.capacity is None:
            return
        with self._lock:
            if self.used() + self._reserved + n > self.capacity:
                raise _NoSpace()
            self._reserved += n

    def release(self, n: int) -> None:
        if self.capacity is None:
            return
        with self._lock:
            self._reserved -= n


class _Handler(GuardedHandler):
    node: StorageNode
    protocol_version = "HTTP/1.1"
    server_version = "ailedger-storage/1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests start many nodes
        pass

    def _json(self, status: int, obj: dict[str, Any]) -> None:
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        self._json(status, {"error": message, **({"code": code} if code else {})})

    def _authorise(self) -> Credential | None:
        """The write credential, or None after answering 401/403 (the body is not read; the
        connection is closed so its bytes are never taken as a next request)."""
        path, _, query = self.path.partition("?")
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            return self.node.auth.check(self.command, path, query, headers)
        except (UnauthenticatedError, ForbiddenError) as exc:
            self._deny(exc)
            return None

    def _deny(self, exc: UnauthenticatedError | ForbiddenError) -> None:
        self.close_connection = True
        status = 401 if isinstance(exc, UnauthenticatedError) else 403
        body = json.dumps({"error": exc.message, "code": exc.code}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", WWW_AUTHENTICATE)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _path(self) -> tuple[Path, bool] | None:
        m = _NAME.match(urlparse(self.path).path)
        if not m:
            return None
        return self.node.dir / m.group(1), bool(m.group(2))

    def do_GET(self) -> None:
        if urlparse(self.path).path == "/v1/health":
            n = self.node
            names = [p for p in n.dir.iterdir() if len(p.name) == 64]
            self._json(200, {"ok": True, "shards": len(names), "used": sum(p.stat().st_size for p in names),
                             "capacity": n.capacity})
            return
        found = self._path()
        if found is None:
            self._error(404, "no such endpoint")
            return
        path, proof = found
        if not path.exists():
            self._error(404, "shard not held here")
            return
        if proof:
            self._proof(path)
        else:
            self._send(path)

    def do_HEAD(self) -> None:
        found = self._path()
        if found is None or found[1] or not found[0].exists():
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(found[0].stat().st_size))
        self.end_headers()

    def _send(self, path: Path) -> None:
        size = path.stat().st_size
        fault = self.node.fault
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size))
        self.end_headers()
        sent = 0
        with open(path, "rb") as f:
            while True:
                buf = f.read(_IO)
                if not buf:
                    break
                if fault == "corrupt" and sent == 0:
                    buf = bytes([buf[0] ^ 0x01]) + buf[1:]
                if fault == "hang" and sent + len(buf) >= size // 2:
                    self.wfile.write(buf[: max(0, size // 2 - sent)])
                    self.wfile.flush()
                    time.sleep(60)
                    self.close_connection = True
                    return
                if fault == "vanish" and sent + len(buf) >= size // 2:
                    self.wfile.write(buf[: max(0, size // 2 - sent)])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                if fault == "slow":
                    time.sleep(0.2 * len(buf) / _IO)
                self.wfile.write(buf)
                sent += len(buf)

    def _proof(self, path: Path) -> None:
        q = parse_qs(urlparse(self.path).query)
        raw = q.get("index", [""])[0]
        index = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else -1
        leaves_path = path.with_name(path.name + ".leaves")
        hashes = leaves_path.read_bytes() if leaves_path.exists() else b""
        leaves = [hashes[i : i + 32] for i in range(0, len(hashes), 32)]
        if not 0 <= index < len(leaves):
            self._error(400, f"segment index must be in [0, {len(leaves)})")
            return
        with open(path, "rb") as f:
            f.seek(index * SEGMENT)
            seg = f.read(SEGMENT)
        if self.node.fault == "corrupt" and seg:
            seg = bytes([seg[0] ^ 0x01]) + seg[1:]
        self._json(200, {"index": index, "size": path.stat().st_size,
                         "segment": base64.b64encode(seg).decode(),
                         "proof": [h.hex() for h in inclusion_proof(leaves, index)]})

    def do_PUT(self) -> None:
        found = self._path()
        if found is None or found[1]:
            self._error(404, "no such endpoint")
            return
        path, _ = found
        try:
            length = content_length(self.headers.get("Content-Length"))
        except BadInputError as exc:
            self.close_connection = True
            self._error(400, exc.message)
            return
        if length is None or "Transfer-Encoding" in self.headers:
            self.close_connection = True
            self._error(411, "Content-Length required (no chunked uploads)")
            return
        cred = self._authorise()
        if cred is None:
            return
        if cred.body_sha256 is not None and cred.body_sha256.hex() != path.name:
            self._deny(UnauthenticatedError("the signed Content-Digest is not the shard's name: a shard is stored "
                                            "under its SHA-256", field="content-digest"))
            return
        if path.exists() and _holds(path):
            self._drain(length)
            self._json(200, {"stored": path.name, "size": path.stat().st_size, "existing": True})
            return
        try:
            self.node.reserve(length)
        except _NoSpace:
            self._drain(length)
            self._error(507, "insufficient storage: node is full")
            return
        tmp = path.with_name(f".tmp-{os.getpid()}-{threading.get_ident()}-{path.name}")
        hasher = ShardHasher()
        try:
            try:
                with open(tmp, "wb") as f:
                    left = length
                    while left:
                        buf = self.rfile.read(min(_IO, left))
                        if not buf:
                            break
                        left -= len(buf)
                        hasher.update(buf)
                        f.write(buf)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                tmp.unlink(missing_ok=True)
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    self._drain(left)
                    self._error(507, "insufficient storage: disk full")
                    return
                raise
            if left:
                tmp.unlink(missing_ok=True)
                self._error(400, f"body ended after {length - left} of {length} bytes")
                self.close_connection = True
                return
            digest, _root = hasher.finish()
            if digest.hex() != path.name:
                tmp.unlink(missing_ok=True)
                self._error(400, f"shard bytes hash to {digest.hex()}, not to the name {path.name}")
                return
            try:
                leaves = path.with_name(path.name + ".leaves")
                leaves.write_bytes(b"".join(hasher.leaf_hashes))
            except OSError as e:
                tmp.unlink(missing_ok=True)
                if e.errno in (errno.ENOSPC, errno.EDQUOT):
                    self._error(507, "insufficient storage: disk full")
                    return
                raise
            os.replace(tmp, path)
        finally:
            self.node.release(length)
        self._json(201, {"stored": path.name, "size": length})

    def _drain(self, n: int) -> None:
        while n > 0:
            buf = self.rfile.read(min(_IO, n))
            if not buf:
                return
            n -= len(buf)

    def do_DELETE(self) -> None:
        found = self._path()
        if found is None or found[1]:
            self._error(404, "no such endpoint")
            return
        path, _ = found
        cred = self._authorise()
        if cred is None:
            return
        if cred.body_sha256 is not None and cred.body_sha256 != hashlib.sha256(b"").digest():
            self._deny(UnauthenticatedError("a signed DELETE covers an empty body", field="content-digest"))
            return
        existed = path.exists()
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".leaves").unlink(missing_ok=True)
        self._json(200, {"deleted": existed})


def serve(directory: str, host: str, port: int, capacity: int | None = None, fault: str | None = None,
          ready: Any = None, **auth: Any) -> None:
    node = StorageNode(directory, host, port, capacity=capacity, fault=fault, **auth)
    if ready is not None:
        ready(node)
    try:
        node.httpd.serve_forever()
    finally:
        node.httpd.server_close()


def _holds(path: Path) -> bool:
    """Does the file still hash to its name?  A second upload of a shard is answered "existing" only
    then: a copy that rotted on disk is replaced by the upload instead of being vouched for (a
    repair placing a rebuilt shard back on this node relies on it)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while buf := f.read(_IO):
                h.update(buf)
    except OSError:
        return False
    return h.hexdigest() == path.name


def shard_name(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
