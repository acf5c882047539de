"""HTTP client for storage nodes. Every failure is a NetworkError (the node's fault) or a
VerificationError (the node returned bytes that are not what the ledger committed to)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from ailedger.errors import BadInputError, NetworkError, VerificationError
from ailedger.provenance.shardproof import ShardHasher
from ailedger.server.auth import signed_headers

__all__ = ["Cancelled", "NodeClient", "check_url"]

_IO = 1 << 20


class Cancelled(Exception):
    """A download was stopped because enough other shards arrived first."""


def check_url(url: str) -> str:
    u = urlparse(url)
    if u.scheme != "http" or not u.hostname or u.port is None:
        raise BadInputError(f"storage node URL must look like http://HOST:PORT, got {url!r}", field="nodes")
    return f"http://{u.hostname}:{u.port}"


_EMPTY_SHA256 = hashlib.sha256(b"").digest()


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

    def put_shard(self, name: str, path: Path) -> None:
        size = path.stat().st_size
        conn = self._conn()
        try:
            with open(path, "rb") as f:
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
                  register: Any = None) -> None:
        """Stream a shard into ``out``; checks length and SHA-256 against the committed ``name``.
        ``register(conn)`` lets a caller keep the connection so it can cut a stalled transfer short."""
        conn = self._conn()
        if register is not None:
            register(conn)
        sha = hashlib.sha256()
        got = 0
        try:
            conn.request("GET", f"/v1/shards/{name}")
            r = conn.getresponse()
            if r.status != 200:
                r.read()
                raise NetworkError(f"storage node {self.url} does not serve shard {name[:16]} (HTTP {r.status})",
                                   node=self.url, status=r.status)
            while True:
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
                buf = r.read(min(_IO, size - got + 1))
                if not buf:
                    break
                got += len(buf)
                if got > size:
                    raise VerificationError(f"storage node {self.url} sent more than the shard's {size} bytes",
                                            expected=size, found=got, node=self.url)
                sha.update(buf)
                out.write(buf)
        except (OSError, http.client.HTTPException, AttributeError) as e:
            if cancel is not None and cancel.is_set():
                raise Cancelled() from None
            raise self._fail(f"transfer of shard {name[:16]} broke after {got} bytes", e) from None
        finally:
            conn.close()
        if got != size:
            raise NetworkError(f"storage node {self.url} sent {got} of {size} bytes of shard {name[:16]}",
                               node=self.url, expected=size, found=got)
        if sha.hexdigest() != name:
            raise VerificationError(f"storage node {self.url} returned a corrupted shard {name[:16]}",
                                    expected=name, found=sha.hexdigest(), node=self.url)

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
