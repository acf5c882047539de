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

import asyncio
import base64
import errno
import hashlib
import os
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool

from ailedger.encoding.httpsig import ForbiddenError, UnauthenticatedError
from ailedger.errors import BadInputError
from ailedger.provenance.shardproof import SEGMENT, ShardHasher, inclusion_proof
from ailedger.server.asgi import Guard, Receive, Scope, Send, Server, error_body, send_json
from ailedger.server.auth import WWW_AUTHENTICATE, Credential, KeyList, TokenFile, WriteAuth
from ailedger.server.guard import Deadlines

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["StorageNode", "serve"]

_NAME = re.compile(r"^/v1/shards/([0-9a-f]{64})(/proof)?$")
_IO = 1 << 20
FAULTS = ("corrupt", "vanish", "slow", "hang")


class _NoSpace(Exception):
    pass


class _Vanish(Exception):
    """Raised by the ``vanish``/``hang`` faults to drop the connection mid-answer (on purpose: not logged)."""


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
        self._tmp_seq = 0
        deadlines = deadlines or Deadlines()
        app = Guard(_NodeApp(self), deadlines=deadlines, write_methods=("PUT", "DELETE"), name="storage-node")
        self.httpd = Server(app, host, port, deadlines=deadlines, name="storage-node", quiet_exceptions=(_Vanish,))
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self.httpd.port

    @property
    def url(self) -> str:
        return self.httpd.url

    def used(self) -> int:
        return sum(p.stat().st_size for p in self.dir.iterdir() if len(p.name) == 64)

    def start(self) -> Self:
        self._thread = self.httpd.start_background()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

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

    def tmp_name(self, name: str) -> Path:
        with self._lock:
            self._tmp_seq += 1
            return self.dir / f".tmp-{os.getpid()}-{self._tmp_seq}-{name}"


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _error(send: Send, status: int, code: str, message: str, close: bool = False,
                 headers: list[tuple[str, str]] | None = None) -> None:
    hs = list(headers or [])
    if close:
        hs.append(("Connection", "close"))
    await send_json(send, status, error_body(code, message), hs)


async def _drain(receive: Receive) -> None:
    """Read and drop the rest of a body (within its deadline, through the guard)."""
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body", False):
            return


class _NodeApp:
    """The node's ASGI app (behind the shared :class:`~ailedger.server.asgi.Guard`): file work runs in
    the thread pool, bodies stream to disk as they arrive."""

    def __init__(self, node: StorageNode) -> None:
        self.node = node

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method in ("GET", "HEAD"):
            await self.get(scope, send, head=method == "HEAD")
        elif method == "PUT":
            await self.put(scope, receive, send)
        elif method == "DELETE":
            await self.delete(scope, send)
        else:
            await _error(send, 501, "not_implemented", f"unsupported method {method[:20]!r}", close=True)

    def _path(self, scope: Scope) -> tuple[Path, bool] | None:
        m = _NAME.match(scope["path"])
        if not m:
            return None
        return self.node.dir / m.group(1), bool(m.group(2))

    async def _authorise(self, scope: Scope, send: Send) -> Credential | None:
        """The write credential, or None after answering 401/403 (the body is not read; the
        connection is closed so its bytes are never taken as a next request)."""
        path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"").decode("latin-1")
        try:
            return await run_in_threadpool(self.node.auth.check, scope["method"], path.decode("latin-1"), query,
                                           _headers(scope))
        except (UnauthenticatedError, ForbiddenError) as exc:
            await self._deny(send, exc)
            return None

    @staticmethod
    async def _deny(send: Send, exc: UnauthenticatedError | ForbiddenError) -> None:
        status = 401 if isinstance(exc, UnauthenticatedError) else 403
        await _error(send, status, exc.code, exc.message, close=True,
                     headers=[("WWW-Authenticate", WWW_AUTHENTICATE)] if status == 401 else None)

    # -- reads ------------------------------------------------------------------------------------
    async def get(self, scope: Scope, send: Send, head: bool) -> None:
        node = self.node
        if scope["path"] == "/v1/health" and not head:
            def health() -> dict[str, Any]:
                names = [p for p in node.dir.iterdir() if len(p.name) == 64]
                return {"ok": True, "shards": len(names), "used": sum(p.stat().st_size for p in names),
                        "capacity": node.capacity}

            await send_json(send, 200, await run_in_threadpool(health))
            return
        found = self._path(scope)
        if head:
            size = None if found is None or found[1] else await run_in_threadpool(_size, found[0])
            await send({"type": "http.response.start", "status": 404 if size is None else 200,
                        "headers": [(b"content-length", str(size or 0).encode())]})
            await send({"type": "http.response.body", "body": b""})
            return
        if found is None:
            await _error(send, 404, "not_found", "no such endpoint")
            return
        path, proof = found
        if not await run_in_threadpool(path.exists):
            await _error(send, 404, "not_found", "shard not held here")
            return
        if proof:
            await self._proof(scope, send, path)
        else:
            await self._send(send, path)

    async def _send(self, send: Send, path: Path) -> None:
        fault = self.node.fault
        try:
            f = await run_in_threadpool(open, path, "rb")
        except FileNotFoundError:
            await _error(send, 404, "not_found", "shard not held here")
            return
        try:
            size = os.fstat(f.fileno()).st_size
            await send({"type": "http.response.start", "status": 200, "headers": [
                (b"content-type", b"application/octet-stream"), (b"content-length", str(size).encode())]})
            sent = 0
            while True:
                buf = await run_in_threadpool(f.read, _IO)
                if not buf:
                    break
                if fault == "corrupt" and sent == 0:
                    buf = bytes([buf[0] ^ 0x01]) + buf[1:]
                if fault in ("hang", "vanish") and sent + len(buf) >= size // 2:
                    await send({"type": "http.response.body", "body": buf[: max(0, size // 2 - sent)],
                                "more_body": True})
                    if fault == "hang":
                        await asyncio.sleep(60)
                    raise _Vanish()
                if fault == "slow":
                    await asyncio.sleep(0.2 * len(buf) / _IO)
                sent += len(buf)
                await send({"type": "http.response.body", "body": buf, "more_body": sent < size})
            if sent < size:  # the file shrank under us: end the answer rather than hang the client
                raise _Vanish()
            if size == 0:
                await send({"type": "http.response.body", "body": b""})
        finally:
            f.close()

    async def _proof(self, scope: Scope, send: Send, path: Path) -> None:
        q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        raw = q.get("index", [""])[0]
        index = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else -1
        fault = self.node.fault

        def prove() -> tuple[int, bytes, list[bytes], int] | int:
            leaves_path = path.with_name(path.name + ".leaves")
            data = leaves_path.read_bytes() if leaves_path.exists() else b""
            leaves = [data[i : i + 32] for i in range(0, len(data), 32)]
            if not 0 <= index < len(leaves):
                return len(leaves)
            with open(path, "rb") as f:
                f.seek(index * SEGMENT)
                seg = f.read(SEGMENT)
            if fault == "corrupt" and seg:
                seg = bytes([seg[0] ^ 0x01]) + seg[1:]
            return index, seg, inclusion_proof(leaves, index), path.stat().st_size

        got = await run_in_threadpool(prove)
        if isinstance(got, int):
            await _error(send, 400, "bad_input", f"segment index must be in [0, {got})")
            return
        i, seg, proof, size = got
        await send_json(send, 200, {"index": i, "size": size, "segment": base64.b64encode(seg).decode(),
                                    "proof": [h.hex() for h in proof]})

    # -- writes -----------------------------------------------------------------------------------
    async def put(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self._path(scope)
        if found is None or found[1]:
            await _error(send, 404, "not_found", "no such endpoint", close=True)
            return
        path, _ = found
        headers = _headers(scope)
        if "content-length" not in headers or "transfer-encoding" in headers:
            await _error(send, 411, "length_required", "Content-Length required (no chunked uploads)", close=True)
            return
        length = int(headers["content-length"])  # strict digits: checked by the guard
        cred = await self._authorise(scope, send)
        if cred is None:
            return
        if cred.body_sha256 is not None and cred.body_sha256.hex() != path.name:
            await self._deny(send, UnauthenticatedError("the signed Content-Digest is not the shard's name: a shard "
                                                        "is stored under its SHA-256", field="content-digest"))
            return
        node = self.node
        if await run_in_threadpool(lambda: path.exists() and _holds(path)):
            await _drain(receive)
            size = await run_in_threadpool(_size, path)
            await send_json(send, 200, {"stored": path.name, "size": size, "existing": True})
            return
        try:
            await run_in_threadpool(node.reserve, length)
        except _NoSpace:
            await _drain(receive)
            await _error(send, 507, "insufficient_storage", "insufficient storage: node is full")
            return
        try:
            status, body = await self._receive_shard(receive, path, length)
        finally:
            node.release(length)
        if status == 201:
            await send_json(send, 201, body)
        else:
            await send_json(send, status, body, [("Connection", "close")] if status == 400 else [])

    async def _receive_shard(self, receive: Receive, path: Path, length: int) -> tuple[int, dict[str, Any]]:
        """Stream the body to a temporary file (hashing as it goes), then rename it into place if its
        bytes hash to the name. A disconnect or a late body (raised by the guard) leaves nothing."""
        tmp = self.node.tmp_name(path.name)
        hasher = ShardHasher()
        f = await run_in_threadpool(open, tmp, "wb")
        pending: list[bytes] = []
        npending = 0
        got = 0
        full = False

        def write(chunks: list[bytes]) -> None:
            for c in chunks:
                hasher.update(c)
                f.write(c)

        try:
            try:
                while True:
                    msg = await receive()
                    chunk = msg.get("body", b"")
                    if chunk and not full:
                        pending.append(chunk)
                        npending += len(chunk)
                        got += len(chunk)
                    more = msg.get("more_body", False)
                    if pending and (npending >= _IO or not more):
                        try:
                            await run_in_threadpool(write, pending)
                        except OSError as e:
                            if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                                raise
                            full = True
                        pending, npending = [], 0
                    if not more:
                        break
                if not full:
                    await run_in_threadpool(_flush_and_sync, f)
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                full = True
            finally:
                f.close()
            if full:
                return 507, error_body("insufficient_storage", "insufficient storage: disk full")
            if got != length:
                return 400, error_body("bad_input", f"body ended after {got} of {length} bytes")
            digest, _root = hasher.finish()
            if digest.hex() != path.name:
                return 400, error_body("bad_input", f"shard bytes hash to {digest.hex()}, not to the name {path.name}")

            def place() -> bool:
                try:
                    path.with_name(path.name + ".leaves").write_bytes(b"".join(hasher.leaf_hashes))
                except OSError as e:
                    if e.errno in (errno.ENOSPC, errno.EDQUOT):
                        return False
                    raise
                os.replace(tmp, path)
                return True

            if not await run_in_threadpool(place):
                return 507, error_body("insufficient_storage", "insufficient storage: disk full")
            return 201, {"stored": path.name, "size": length}
        finally:
            tmp.unlink(missing_ok=True)

    async def delete(self, scope: Scope, send: Send) -> None:
        found = self._path(scope)
        if found is None or found[1]:
            await _error(send, 404, "not_found", "no such endpoint", close=True)
            return
        path, _ = found
        cred = await self._authorise(scope, send)
        if cred is None:
            return
        if cred.body_sha256 is not None and cred.body_sha256 != hashlib.sha256(b"").digest():
            await self._deny(send, UnauthenticatedError("a signed DELETE covers an empty body", field="content-digest"))
            return

        def remove() -> bool:
            existed = path.exists()
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".leaves").unlink(missing_ok=True)
            return existed

        await send_json(send, 200, {"deleted": await run_in_threadpool(remove)})


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


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


def _flush_and_sync(f: Any) -> None:
    f.flush()
    os.fsync(f.fileno())
