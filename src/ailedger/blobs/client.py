"""HTTP client for storage nodes. Every failure is a NetworkError (the node's fault) or a
VerificationError (the node returned bytes that are not what the ledger committed to)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from ailedger.errors import BadInputError, NetworkError, VerificationError
from ailedger.provenance.shardproof import ShardHasher
from ailedger.server.auth import signed_headers

__all__ = ["Cancelled", "MemoryShard", "NodeClient", "ShardSink", "ShardSource", "check_url", "corrupted",
           "source_size"]

_IO = 1 << 20


class Cancelled(Exception):
    """A download was stopped because enough other shards arrived first."""


class ShardReceiver:
    """One shard streamed from a node or an S3 target into a file: every byte counted and hashed, the transfer
    cut short when the source sends more than the shard's size, then :meth:`check` against the committed
    ``name`` (its SHA-256) and size.  ``who`` names the source in errors ("storage node", "S3 target")."""

    def __init__(self, name: str, size: int, who: str, url: str, verify: bool = True) -> None:
        """``verify=False``: the bytes are not hashed here (only counted); the caller proves them another way
        (a blob get's end-to-end checks) and hashes them itself when that fails (:meth:`ShardSink.sha256`)."""
        self.name, self.size, self.who, self.url = name, size, who, url
        self.got = 0
        self.sha = hashlib.sha256() if verify else None

    def pump(self, read: Callable[[int], bytes], out: BinaryIO, cancel: threading.Event | None, verb: str) -> None:
        """Copy ``read``'s bytes into ``out`` until the end (``verb``: what an oversized source did)."""
        step = getattr(out, "chunk", _IO)
        while True:
            if cancel is not None and cancel.is_set():
                raise Cancelled()
            buf = read(min(step, self.size - self.got + 1) if self.got < self.size else 1)
            if not buf:
                break
            self.got += len(buf)
            if self.got > self.size:
                raise VerificationError(f"{self.who} {self.url} {verb} more than the shard's {self.size} bytes",
                                        expected=self.size, found=self.got, node=self.url)
            if self.sha is not None:
                self.sha.update(buf)
            out.write(buf)

    def check(self) -> None:
        """The whole shard arrived and it is the committed one."""
        if self.got != self.size:
            raise NetworkError(f"{self.who} {self.url} sent {self.got} of {self.size} bytes of shard "
                               f"{self.name[:16]}", node=self.url, expected=self.size, found=self.got)
        if self.sha is not None:
            corrupted(self.who, self.url, self.name, self.sha.hexdigest())


def corrupted(who: str, url: str, name: str, found: str) -> None:
    """Raise the error of a shard whose bytes do not hash to its committed ``name`` (unless they do)."""
    if found != name:
        raise VerificationError(f"{who} {url} returned a corrupted shard {name[:16]}", expected=name, found=found,
                                node=url)


def check_url(url: str) -> str:
    u = urlparse(url)
    if u.scheme != "http" or not u.hostname or u.port is None:
        raise BadInputError(f"storage node URL must look like http://HOST:PORT, got {url!r}", field="nodes")
    return f"http://{u.hostname}:{u.port}"


_EMPTY_SHA256 = hashlib.sha256(b"").digest()


class MemoryShard:
    """A shard held in memory as the list of its pieces, as the encoder made them (no spool file, no copy):
    :meth:`reader` is a seekable file over them for an upload body, ``leaves`` its segment leaf hashes."""

    def __init__(self) -> None:
        self.pieces: list[memoryview] = []
        self.size = 0
        self.leaves: bytes | None = None

    def append(self, piece: bytes | bytearray | memoryview) -> None:
        mv = memoryview(piece).cast("B")
        self.pieces.append(mv)
        self.size += len(mv)

    def reader(self) -> _PiecesReader:
        return _PiecesReader(self.pieces, self.size)


class _PiecesReader(io.RawIOBase):
    """Reads over a list of buffers; ``read`` hands out views (at most one piece at a time), no copies."""

    def __init__(self, pieces: list[memoryview], size: int) -> None:
        super().__init__()
        self._pieces = pieces
        self._size = size
        self._pos = 0
        self._i = 0
        self._off = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        pos = max(0, min(self._size, base + pos))
        self._pos, self._i, self._off = pos, 0, pos
        while self._i < len(self._pieces) and self._off >= len(self._pieces[self._i]):
            self._off -= len(self._pieces[self._i])
            self._i += 1
        return pos

    def read(self, n: int | None = -1) -> memoryview | bytes:  # type: ignore[override]
        if n is None or n < 0:
            n = self._size - self._pos
        while self._i < len(self._pieces) and self._off >= len(self._pieces[self._i]):
            self._i, self._off = self._i + 1, 0
        if n == 0 or self._i >= len(self._pieces):
            return b""
        piece = self._pieces[self._i]
        out = piece[self._off : self._off + n]
        self._off += len(out)
        self._pos += len(out)
        return out

    def readinto(self, b: Any) -> int:
        out = self.read(len(b))
        memoryview(b).cast("B")[: len(out)] = out
        return len(out)


ShardSource = Path | MemoryShard


def source_size(src: ShardSource) -> int:
    return src.size if isinstance(src, MemoryShard) else src.stat().st_size


def _open_source(src: ShardSource) -> BinaryIO:
    return src.reader() if isinstance(src, MemoryShard) else open(src, "rb")  # type: ignore[return-value]


class ShardSink:
    """Where a fetched shard goes: memory (the chunks as received, no copy; reads are asked in ``chunk``
    sizes, a shard's piece size, so stripe s of the shard is chunk s) or a spool file; ``last`` is when bytes
    last arrived (a fetch that stopped making progress is hedged by another shard)."""

    def __init__(self, size: int, path: Path | None = None,
                 progress: Callable[[int], None] | None = None, chunk: int = _IO) -> None:
        """``progress(bytes received so far)`` is called after every write."""
        self.size = size
        self.path = path
        self.progress = progress
        self.chunk = chunk
        self.chunks: list[bytes] | None = [] if path is None else None
        self._aligned = True
        self._joined: bytes | None = None
        self._f: Any = open(path, "wb") if path is not None else None  # noqa: SIM115 - closed in close()
        self.got = 0
        self.last = time.monotonic()
        self.url: str | None = None  # where the bytes came from (set by the fetcher)
        self.verified = False  # whether the fetcher checked the bytes against the shard's SHA-256

    def sha256(self) -> str:
        """SHA-256 (hex) of the bytes received (for a shard fetched without its hash check)."""
        h = hashlib.sha256()
        if self.chunks is not None:
            for c in self.chunks:
                h.update(c)
        elif self.path is not None:
            with open(self.path, "rb") as f:
                while buf := f.read(_IO):
                    h.update(buf)
        return h.hexdigest()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        n = len(data)
        if self.chunks is not None:
            if self.got + n > self.size:
                raise VerificationError("shard longer than committed", expected=self.size, found=self.got + n)
            if n != self.chunk:
                self._aligned = False  # a read of another size: chunk i is no longer bytes [i*chunk, (i+1)*chunk)
            self.chunks.append(data if isinstance(data, bytes) else bytes(data))
        else:
            self._f.write(data)
        self.got += n
        self.last = time.monotonic()
        if self.progress is not None:
            self.progress(self.got)
        return n

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def discard(self) -> None:
        self.close()
        self.chunks = None
        self._joined = None
        if self.path is not None:
            remove(self.path)

    def piece(self, s: int, p: int) -> bytes | memoryview | None:
        """Bytes ``[s*p, (s+1)*p)`` of a memory sink (None once discarded): chunk s itself when reads came
        in pieces of p, else a view of all chunks joined (once)."""
        chunks = self.chunks
        if chunks is None:
            return None
        if self._aligned and p == self.chunk and s < len(chunks):
            return chunks[s]
        if self._joined is None or len(self._joined) < min(self.got, (s + 1) * p):
            self._joined = b"".join(chunks)  # (again, when more has arrived since)
        return memoryview(self._joined)[s * p : (s + 1) * p]


@dataclass(frozen=True)
class NodeClient:
    """One storage node. Reads are open; writes (upload, delete) carry a credential: an RFC 9421
    signature by ``signer`` (an identity with ``did`` and ``sign``) or the operator's ``token``."""

    url: str
    timeout: float = 30.0
    signer: Any = None
    token: str | None = None

    def _auth(self, method: str, target: str, body_sha256: bytes) -> dict[str, str]:
        if self.token is not None:
            return {"Authorization": f"Bearer {self.token}"}
        if self.signer is not None:
            return signed_headers(method, target, body_sha256, self.signer)
        return {}

    def _conn(self) -> http.client.HTTPConnection:
        u = urlparse(self.url)
        return http.client.HTTPConnection(u.hostname or "127.0.0.1", u.port, timeout=self.timeout)

    def _fail(self, what: str, e: BaseException) -> NetworkError:
        return NetworkError(f"storage node {self.url}: {what}: {e}", node=self.url)

    def _request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                 ) -> tuple[int, bytes]:
        conn = self._conn()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException) as e:
            raise self._fail(f"{method} {path} failed", e) from None
        finally:
            conn.close()

    def health(self) -> dict[str, Any]:
        status, body = self._request("GET", "/v1/health")
        if status != 200:
            raise NetworkError(f"storage node {self.url} is unhealthy (HTTP {status})", node=self.url)
        return dict(json.loads(body))

    def put_shard(self, name: str, path: ShardSource) -> None:
        size = source_size(path)
        conn = self._conn()
        try:
            with _open_source(path) as f:
                target = f"/v1/shards/{name}"
                conn.putrequest("PUT", target)
                conn.putheader("Content-Length", str(size))
                conn.putheader("Content-Type", "application/octet-stream")
                # the shard's name is its SHA-256: the signature binds the body without reading it twice
                for k, v in self._auth("PUT", target, bytes.fromhex(name)).items():
                    conn.putheader(k, v)
                conn.endheaders()
                while buf := f.read(_IO):
                    conn.send(buf)
            r = conn.getresponse()
            body = r.read()
        except (OSError, http.client.HTTPException) as e:
            raise self._fail("upload failed", e) from None
        finally:
            conn.close()
        if r.status == 507:
            raise NetworkError(f"storage node {self.url} is full (HTTP 507)", node=self.url, status=507)
        if r.status not in (200, 201):
            msg = body.decode("utf-8", "replace")[:200]
            raise NetworkError(f"storage node {self.url} refused shard {name[:16]}: HTTP {r.status} {msg}",
                               node=self.url, status=r.status)

    def get_shard(self, name: str, size: int, out: BinaryIO, cancel: threading.Event | None = None,
                  register: Any = None, verify: bool = True) -> None:
        """Stream a shard into ``out``; checks length and (unless ``verify=False``: see :class:`ShardReceiver`)
        SHA-256 against the committed ``name``. ``register(conn)`` lets a caller keep the connection so it can
        cut a stalled transfer short."""
        conn = self._conn()
        if register is not None:
            register(conn)
        rx = ShardReceiver(name, size, "storage node", self.url, verify)
        try:
            conn.request("GET", f"/v1/shards/{name}")
            r = conn.getresponse()
            if r.status != 200:
                r.read()
                raise NetworkError(f"storage node {self.url} does not serve shard {name[:16]} (HTTP {r.status})",
                                   node=self.url, status=r.status)
            rx.pump(r.read, out, cancel, "sent")
        except (OSError, http.client.HTTPException, AttributeError) as e:
            if cancel is not None and cancel.is_set():
                raise Cancelled() from None
            raise self._fail(f"transfer of shard {name[:16]} broke after {rx.got} bytes", e) from None
        finally:
            conn.close()
        rx.check()

    def has_shard(self, name: str) -> bool:
        status, _ = self._request("HEAD", f"/v1/shards/{name}")
        return status == 200

    def delete_shard(self, name: str) -> None:
        target = f"/v1/shards/{name}"
        status, body = self._request("DELETE", target, headers=self._auth("DELETE", target, _EMPTY_SHA256))
        if status != 200:
            msg = body.decode("utf-8", "replace")[:200]
            raise NetworkError(f"storage node {self.url} refused to delete shard {name[:16]}: HTTP {status} {msg}",
                               node=self.url, status=status)

    def challenge(self, name: str, index: int) -> tuple[bytes, list[bytes], int]:
        status, body = self._request("GET", f"/v1/shards/{name}/proof?index={index}")
        if status != 200:
            raise NetworkError(f"storage node {self.url} did not answer a challenge for {name[:16]} "
                               f"(HTTP {status})", node=self.url, status=status)
        try:
            d = json.loads(body)
            return (base64.b64decode(d["segment"]), [bytes.fromhex(h) for h in d["proof"]], int(d["size"]))
        except (ValueError, KeyError, TypeError):
            raise NetworkError(f"storage node {self.url} sent a malformed challenge answer", node=self.url) from None


def hash_file(path: Path) -> tuple[bytes, bytes, int]:
    h = ShardHasher()
    with open(path, "rb") as f:
        while buf := f.read(_IO):
            h.update(buf)
    sha, root = h.finish()
    return sha, root, h.size


def remove(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
