"""Dataset inputs on S3-compatible object stores: ``dataset commit s3://BUCKET/PREFIX``.

``s3://bucket/key.jsonl`` (``.csv``, ``.parquet``) is one file source; any other ``s3://bucket[/prefix]``
is a folder: every object under ``prefix/`` is one record (as a local folder's files are).  The
endpoint comes from ``--s3-endpoint`` (or the standard ``AWS_ENDPOINT_URL``), the credentials from the
standard AWS chain (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, ~/.aws files), all
through boto3, in this process and on every Dask worker (each worker reads its own byte ranges).

Objects are read through :class:`RangeReader`, a seekable file over ranged GETs, so the same code
that reads local files reads objects: a JSONL work unit is one GET of its byte range, a Parquet row
group a few GETs, a CSV file or a folder's object one streamed read.  Every GET checks the object's
ETag against the one seen when the commit was planned: an object replaced meanwhile stops the commit
("changed while it was being hashed"), as a local file whose stat changed does.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
from typing import Any

from ailedger.errors import AiledgerError, BadInputError, NetworkError
from ailedger.provenance.hashing import DEFAULT_IGNORED

__all__ = ["RangeReader", "S3Path", "describe_error", "is_s3", "list_folder", "open_binary", "parse", "stat_object"]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CRED_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION",
              "AWS_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL",
              "AWS_ENDPOINT_URL_S3")
_clients: dict[tuple[int, str | None, str], Any] = {}
_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # A forked hashing process must not reuse the parent's pooled connections: two processes reading
    # answers off one socket get each other's bytes or wait forever (seen as read timeouts).
    global _lock
    _lock = threading.Lock()
    _clients.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class S3Path(str):
    """``s3://bucket/key`` (a plain str everywhere: messages, source names) carrying the endpoint to use
    and, once planned, the object's size and ETag.  Pickles with them, so Dask workers get them too."""

    endpoint: str | None
    size: int | None
    etag: str | None

    def __new__(cls, uri: str, endpoint: str | None = None, size: int | None = None,  # noqa: PYI034
                etag: str | None = None) -> S3Path:
        self = super().__new__(cls, uri)
        self.endpoint, self.size, self.etag = endpoint, size, etag
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (S3Path, (str(self), self.endpoint, self.size, self.etag))

    @property
    def bucket(self) -> str:
        return parse(self)[0]

    @property
    def key(self) -> str:
        return parse(self)[1]

    def child(self, key: str, size: int | None = None, etag: str | None = None) -> S3Path:
        return S3Path(f"s3://{self.bucket}/{key}", self.endpoint, size, etag)


def is_s3(p: Any) -> bool:
    return isinstance(p, str) and p.startswith("s3://")


def parse(uri: str) -> tuple[str, str]:
    """(bucket, key or prefix) of ``s3://bucket[/key]``; BadInputError naming what is wrong."""
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not _BUCKET.match(bucket):
        raise BadInputError(f"{uri}: not s3://BUCKET[/PREFIX] with a valid bucket name (3-63 of a-z 0-9 . -)",
                            field="path")
    if ".." in key.split("/") or "//" in key:
        raise BadInputError(f"{uri}: the key may not hold empty or '..' parts", field="path")
    return bucket, key


def client(endpoint: str | None) -> Any:
    """One boto3 S3 client per endpoint and credential settings in this process (thread-safe)."""
    creds = hashlib.sha256("\0".join(os.environ.get(v, "") for v in _CRED_VARS).encode()).hexdigest()
    with _lock:
        key = (os.getpid(), endpoint, creds)
        c = _clients.get(key)
        if c is None:
            try:
                import boto3
                from botocore.config import Config
            except ModuleNotFoundError as e:
                raise BadInputError("s3:// inputs need boto3: pip install 'ailedger[s3]'", field="path") from e
            session = boto3.session.Session()
            ep = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
            cfg = Config(s3={"addressing_style": "path"} if ep else {}, retries={"max_attempts": 3, "mode": "standard"},
                         connect_timeout=10, read_timeout=60, max_pool_connections=16,
                         request_checksum_calculation="when_required", response_checksum_validation="when_required")
            c = _clients[key] = session.client("s3", endpoint_url=ep,
                                                             region_name=session.region_name or "us-east-1",
                                                             config=cfg)
        return c


def describe_error(e: BaseException, uri: str, endpoint: str | None = None) -> AiledgerError:
    """A boto3/botocore failure as the error a user reads (what failed, on what, what to check)."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    where = f"{uri}" + (f" at {endpoint}" if endpoint else "")
    if isinstance(e, (NoCredentialsError, PartialCredentialsError)):
        return BadInputError(f"cannot read {where}: no usable AWS credentials (set AWS_ACCESS_KEY_ID and "
                             "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE); nothing was logged", field="credentials")
    if isinstance(e, EndpointConnectionError):
        return NetworkError(f"cannot read {where}: cannot connect to the S3 endpoint ({e}); nothing was logged",
                            field="s3_endpoint")
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket" or (code == "404" and e.operation_name == "HeadBucket"):
            return BadInputError(f"cannot read {where}: the bucket does not exist; nothing was logged", field="path")
        if code in ("NoSuchKey", "404"):
            return BadInputError(f"cannot read {where}: the object is not there; nothing was logged", field="path")
        if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403") or status == 403:
            return BadInputError(f"cannot read {where}: access denied ({code}): wrong credentials, or the key may "
                                 "not read this bucket (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / "
                                 "AWS_PROFILE); nothing was logged", field="credentials")
        if isinstance(status, int) and status >= 500:
            return NetworkError(f"cannot read {where}: the store failed ({code or 'error'}, HTTP {status}: "
                                f"{err.get('Message', '')}); nothing was logged", field="s3_endpoint")
        if code in ("PreconditionFailed", "412"):
            return BadInputError(f"{uri} changed while it was being hashed; nothing was logged", field="path")
        return BadInputError(f"cannot read {where}: {code or status} {err.get('Message', '')}; nothing was logged",
                             field="path")
    if isinstance(e, AiledgerError):
        return e
    return NetworkError(f"cannot read {where}: {e.__class__.__name__}: {str(e)[:200]}; nothing was logged",
                        field="s3_endpoint")


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, OSError)


def stat_object(p: S3Path) -> tuple[int, str] | None:
    """(size, ETag) of the object, or None when there is none by that key (the bucket must exist)."""
    c = client(p.endpoint)
    try:
        h = c.head_object(Bucket=p.bucket, Key=p.key)
    except _errors() as e:
        code = str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            return None
        raise describe_error(e, p, p.endpoint) from e
    return int(h["ContentLength"]), str(h.get("ETag", ""))


def list_folder(p: S3Path) -> list[tuple[S3Path, str]]:
    """(object, name relative to the prefix) of every object under ``p``'s prefix, sorted by key;
    "folder" marker objects (keys ending in /) and .git-style names a local folder skips are left out."""
    bucket, prefix = parse(p)
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    c = client(p.endpoint)
    out: list[tuple[S3Path, str]] = []
    try:
        c.head_bucket(Bucket=bucket)
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                k = o["Key"]
                rel = k[len(prefix):]
                if not rel or k.endswith("/") or any(part in DEFAULT_IGNORED for part in rel.split("/")):
                    continue
                out.append((p.child(k, int(o["Size"]), str(o.get("ETag", ""))), rel))
    except _errors() as e:
        raise describe_error(e, p, p.endpoint) from e
    out.sort(key=lambda x: x[0].key)
    return out


def _etag(tag: str) -> str:
    """An ETag compared as its value (listings and GETs may differ in quoting)."""
    return tag.strip().removeprefix("W/").strip('"')


class RangeReader(io.RawIOBase):
    """A read-only, seekable file over one object: each read is a ranged GET (checked against the
    ETag the object had when it was planned)."""

    def __init__(self, p: S3Path) -> None:
        super().__init__()
        self.p = p
        if p.size is None or p.etag is None:
            st = stat_object(p)
            if st is None:
                raise BadInputError(f"cannot read {p}: the object is not there; nothing was logged", field="path")
            p = self.p = S3Path(str(p), p.endpoint, st[0], st[1])
        self.size: int = p.size or 0
        self.pos = 0
        self._c = client(p.endpoint)
        self._bucket, self._key = parse(p)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, b: Any) -> int:
        mv = memoryview(b).cast("B")
        n = min(len(mv), self.size - self.pos)
        if n <= 0:
            return 0
        try:
            r = self._c.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self.pos}-{self.pos + n - 1}")
            if self.p.etag and r.get("ETag") and _etag(r["ETag"]) != _etag(self.p.etag):
                raise BadInputError(f"{self.p} changed while it was being hashed (its ETag is {r['ETag']}, was "
                                    f"{self.p.etag}); nothing was logged", field="path")
            body = r["Body"]
            got = 0
            while got < n:
                chunk = body.read(min(n - got, 1 << 20))
                if not chunk:
                    break
                mv[got:got + len(chunk)] = chunk
                got += len(chunk)
            body.close()
        except _errors() as e:
            raise describe_error(e, self.p, self.p.endpoint) from e
        if got < n:
            raise NetworkError(f"{self.p}: the store sent {got} of {n} bytes at offset {self.pos}", field="path")
        self.pos += got
        return got


def open_binary(p: str, buffer: int = 1 << 20) -> Any:
    """A binary file for reading: the local file, or the object through a buffered :class:`RangeReader`."""
    if isinstance(p, S3Path) or is_s3(p):
        return io.BufferedReader(RangeReader(p if isinstance(p, S3Path) else S3Path(p)), buffer)
    return open(p, "rb")
