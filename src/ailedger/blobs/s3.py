"""Storage targets on S3-compatible object stores (AWS S3, Ceph RGW, MinIO, Cloudflare R2, SeaweedFS...).

A target is written ``s3://BUCKET[/PREFIX]``; the endpoint comes from ``--s3-endpoint`` (or the standard
``AWS_ENDPOINT_URL``) and the credentials from the standard AWS chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE`` and ~/.aws files), all through boto3. The ledger records the
target as written (``s3://bucket/prefix``) and, beside it, the endpoint that was used when it was not AWS's
own (``recordable_endpoint``: an http(s) URL, never one carrying a user or password); never a credential.

An S3 target behaves like a storage node (:class:`ailedger.blobs.client.NodeClient`): a shard is the
object ``PREFIX/<sha256-hex>``; next to it ``PREFIX/<sha256-hex>.leaves`` keeps the shard's segment leaf
hashes so a storage challenge costs one small read and one ranged read of a 16 KiB segment, not a
read of the shard. Nothing is trusted: a fetched shard is checked against its SHA-256 in the ledger, and
a challenged segment against the shard's Merkle root in the ledger (a forged ``.leaves`` object just
fails the check).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlparse

from ailedger.blobs.client import Cancelled, MemoryShard, ShardReceiver
from ailedger.errors import BadInputError, NetworkError, VerificationError
from ailedger.provenance.shardproof import SEGMENT, ShardHasher, inclusion_proof

__all__ = ["S3Target", "check_target", "endpoint_for", "endpoint_in_use", "is_s3", "parse_endpoints", "preflight",
           "recordable_endpoint", "s3_client"]

_IO = 1 << 20
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9!_.*'()/-]*$")


def is_s3(location: str) -> bool:
    return location.startswith("s3://")


def check_target(url: str) -> str:
    """Validate ``s3://bucket[/prefix]`` and return its normal form (no trailing slash)."""
    rest = url[len("s3://"):] if is_s3(url) else ""
    bucket, _, prefix = rest.partition("/")
    prefix = prefix.strip("/")
    if not _BUCKET.match(bucket):
        raise BadInputError(f"S3 target must look like s3://BUCKET[/PREFIX] with a valid bucket name "
                            f"(3-63 of a-z 0-9 . -), got {url!r}", field="target")
    if not _PREFIX.match(prefix) or "//" in prefix or ".." in prefix.split("/"):
        raise BadInputError(f"S3 target {url!r}: the prefix may hold only letters, digits and !_.*'()/- "
                            "(no empty or '..' parts)", field="target")
    return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"


_clients: dict[tuple[int, str | None, float, str], Any] = {}
_CRED_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_REGION",
              "AWS_REGION", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")
_clients_lock = threading.Lock()


def _after_fork_in_child() -> None:
    # a forked process must not share the parent's pooled sockets (answers read by the wrong process)
    global _clients_lock
    _clients_lock = threading.Lock()
    _clients.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def s3_client(endpoint: str | None, timeout: float = 30.0) -> Any:
    """One boto3 client per (endpoint, timeout), shared by threads (boto3 clients are thread-safe)."""
    endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    # a new client when the credential settings change (never kept in the clear: a digest of them)
    creds = hashlib.sha256("\0".join(os.environ.get(v, "") for v in _CRED_VARS).encode()).hexdigest()
    with _clients_lock:
        key = (os.getpid(), endpoint, timeout, creds)
        c = _clients.get(key)
        if c is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session()
            cfg = Config(s3={"addressing_style": "path"} if endpoint else {},
                         retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=min(timeout, 10),
                         read_timeout=timeout, max_pool_connections=64,
                         request_checksum_calculation="when_required", response_checksum_validation="when_required")
            c = session.client("s3", endpoint_url=endpoint,
                               region_name=session.region_name or "us-east-1", config=cfg)
            _known_payload_signer()
            c.meta.events.register("before-parameter-build.s3.PutObject", _take_content_sha256)
            c.meta.events.register_first("choose-signer.s3.PutObject", _choose_known_payload_signer)
            _clients[key] = c
        return c


def _take_content_sha256(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """``put_object(..., ContentSHA256=HEX)``: the body's SHA-256, already known (a shard's name), kept for
    the signer instead of being sent as an (unknown) parameter."""
    sha = params.pop("ContentSHA256", None)
    if sha is not None:
        context["ailedger_content_sha256"] = sha


_KNOWN_PAYLOAD = "s3v4-ailedger-known-payload"


def _known_payload_signer() -> None:
    """Register (once) a SigV4-for-S3 signer that takes the payload hash from the request's context when
    the caller knows it, instead of reading the body. Over plain http botocore otherwise hashes every
    uploaded byte once more (S3 requires the hash in the signature there)."""
    from botocore import auth

    if _KNOWN_PAYLOAD in auth.AUTH_TYPE_MAPS:
        return

    class KnownPayloadS3SigV4Auth(auth.S3SigV4Auth):
        def payload(self, request: Any) -> str:
            sha = request.context.get("ailedger_content_sha256")
            return str(sha) if sha is not None else str(super().payload(request))

    auth.AUTH_TYPE_MAPS.setdefault(_KNOWN_PAYLOAD, KnownPayloadS3SigV4Auth)


def _choose_known_payload_signer(signature_version: Any, context: dict[str, Any], **_: Any) -> str | None:
    # only where botocore would use plain SigV4 for S3 anyway (not S3 Express, SigV4a or unsigned requests)
    if context.get("ailedger_content_sha256") is not None and signature_version in ("v4", "s3v4") and \
            context.get("auth_type") in (None, "v4"):
        return _KNOWN_PAYLOAD
    return None


def _explain(e: BaseException) -> tuple[str, str]:
    """(short code, what a user should read) for a boto3/botocore failure."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(e, (NoCredentialsError, PartialCredentialsError)):
        return "credentials", ("no usable AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                               "or AWS_PROFILE)")
    if isinstance(e, EndpointConnectionError):
        return "unreachable", f"cannot connect to the endpoint ({e})"
    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("NoSuchBucket",) or (code == "404" and e.operation_name == "HeadBucket"):
            return "no_bucket", "the bucket does not exist"
        if code in ("NoSuchKey", "404"):
            return "no_key", "the object is not there"
        if code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "AccessDenied", "403") or status == 403:
            return "denied", (f"access denied ({code}): wrong credentials, or the key may not use this bucket "
                              "(check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE)")
        return code or "error", f"{code or status}: {err.get('Message', '')}".strip()
    return type(e).__name__, str(e)


def _errors() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError, OSError)


@dataclass(frozen=True)
class _Stream:
    """What :meth:`S3Target.get_shard` registers: a stream the caller may cut short (``sock``: the socket
    under botocore's body, when urllib3 exposes it, so a stalled transfer is ended at once)."""

    body: Any

    @property
    def sock(self) -> Any:
        raw = getattr(self.body, "_raw_stream", None)
        conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
        return getattr(conn, "sock", None)

    def close(self) -> None:
        try:
            self.body.close()
        except Exception:  # noqa: BLE001, S110 - closing a stream that already broke
            pass


@dataclass(frozen=True)
class S3Target:
    """One ``s3://bucket[/prefix]`` target, with the same methods as a storage node's client."""

    url: str
    timeout: float = 30.0
    endpoint: str | None = None

    @property
    def bucket(self) -> str:
        return self.url[len("s3://"):].partition("/")[0]

    @property
    def prefix(self) -> str:
        return self.url[len("s3://"):].partition("/")[2]

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    @property
    def s3(self) -> Any:
        return s3_client(self.endpoint, self.timeout)

    def _fail(self, what: str, e: BaseException) -> NetworkError:
        code, msg = _explain(e)
        return NetworkError(f"S3 target {self.url}: {what}: {msg}", node=self.url, reason=code)

    def health(self) -> dict[str, Any]:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except _errors() as e:
            raise self._fail("not usable", e) from None
        return {"ok": True, "target": self.url}

    def put_shard(self, name: str, path: Path | MemoryShard) -> None:
        """Upload a shard (a spool file or a :class:`MemoryShard`) and its segment leaf hashes. The shard's
        name is its SHA-256, so it is handed to the request signer as the payload hash (botocore would
        otherwise read and hash the whole body once more before sending it)."""
        if isinstance(path, MemoryShard):
            if path.leaves is None:
                raise VerificationError(f"shard {name[:16]} has no leaf hashes yet", expected="leaves", found=None)
            leaves, size = path.leaves, path.size
        else:
            size = path.stat().st_size
            leaves_path = path.with_name(path.name + ".leaves")
            if leaves_path.exists():
                leaves = leaves_path.read_bytes()
            else:
                h = ShardHasher()
                with open(path, "rb") as f:
                    while buf := f.read(_IO):
                        h.update(buf)
                sha, _root = h.finish()
                if sha.hex() != name:
                    raise VerificationError(f"shard file {path} does not hash to {name[:16]}", expected=name,
                                            found=sha.hex())
                leaves = b"".join(h.leaf_hashes)
        try:
            with path.reader() if isinstance(path, MemoryShard) else open(path, "rb") as f:
                self.s3.put_object(Bucket=self.bucket, Key=self.key(name), Body=f, ContentLength=size,
                                   ContentType="application/octet-stream", ContentSHA256=name)
            self.s3.put_object(Bucket=self.bucket, Key=self.key(name) + ".leaves", Body=leaves,
                               ContentType="application/octet-stream",
                               ContentSHA256=hashlib.sha256(leaves).hexdigest())
        except _errors() as e:
            raise self._fail(f"upload of shard {name[:16]} failed", e) from None

    def get_shard(self, name: str, size: int, out: BinaryIO, cancel: threading.Event | None = None,
                  register: Any = None, verify: bool = True) -> None:
        """Stream a shard into ``out``; checks length and (unless ``verify=False``) SHA-256 against the
        committed ``name``."""
        rx = ShardReceiver(name, size, "S3 target", self.url, verify)
        try:
            r = self.s3.get_object(Bucket=self.bucket, Key=self.key(name))
            body = r["Body"]
            if register is not None:
                register(_Stream(body))
            rx.pump(body.read, out, cancel, "holds")
        except _errors() as e:
            if cancel is not None and cancel.is_set():
                raise Cancelled() from None
            raise self._fail(f"shard {name[:16]} (after {rx.got} bytes)", e) from None
        rx.check()

    def has_shard(self, name: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=self.key(name))
            return True
        except _errors() as e:
            if _explain(e)[0] == "no_key":
                return False
            raise self._fail(f"cannot check shard {name[:16]}", e) from None

    def delete_shard(self, name: str) -> None:
        try:
            self.s3.delete_objects(Bucket=self.bucket, Delete={"Objects": [
                {"Key": self.key(name)}, {"Key": self.key(name) + ".leaves"}], "Quiet": True})
        except _errors() as e:
            raise self._fail(f"delete of shard {name[:16]} failed", e) from None

    def challenge(self, name: str, index: int) -> tuple[bytes, list[bytes], int]:
        """One storage challenge: segment ``index`` (a ranged read) and its Merkle path, computed from the
        ``.leaves`` object; the caller checks both against the shard's root in the ledger."""
        try:
            size = int(self.s3.head_object(Bucket=self.bucket, Key=self.key(name))["ContentLength"])
            leaves_raw = self.s3.get_object(Bucket=self.bucket, Key=self.key(name) + ".leaves")["Body"].read()
            leaves = [leaves_raw[i : i + 32] for i in range(0, len(leaves_raw), 32)]
            if not 0 <= index < len(leaves):
                raise NetworkError(f"S3 target {self.url}: the leaf hashes of shard {name[:16]} do not reach "
                                   f"segment {index}", node=self.url)
            lo = index * SEGMENT
            hi = min(size, lo + SEGMENT) - 1
            seg = b"" if hi < lo else self.s3.get_object(
                Bucket=self.bucket, Key=self.key(name), Range=f"bytes={lo}-{hi}")["Body"].read()
        except _errors() as e:
            raise self._fail(f"challenge for shard {name[:16]}", e) from None
        return seg, inclusion_proof(leaves, index), size


def endpoint_for(endpoints: str | Mapping[str, str] | None, target: str) -> str | None:
    """The endpoint of one target: ``endpoints`` is one URL for all, or ``{bucket: URL, "": default}``."""
    if endpoints is None or isinstance(endpoints, str):
        return endpoints
    bucket = target[len("s3://"):].partition("/")[0]
    return endpoints.get(bucket) or endpoints.get("") or None


def parse_endpoints(values: Iterable[str]) -> str | dict[str, str] | None:
    """``--s3-endpoint`` values: ``URL`` (every bucket) or ``BUCKET=URL`` (that bucket's store)."""
    out: dict[str, str] = {}
    for v in values:
        bucket, eq, url = v.partition("=")
        if not eq:
            bucket, url = "", v
        u = urlparse(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise BadInputError(f"--s3-endpoint must be URL or BUCKET=URL with an http(s) URL, got {v!r}",
                                field="s3-endpoint")
        if bucket and not _BUCKET.match(bucket):
            raise BadInputError(f"--s3-endpoint {v!r}: {bucket!r} is not a bucket name", field="s3-endpoint")
        out[bucket] = url
    if not out:
        return None
    if list(out) == [""]:
        return out[""]
    return out


def preflight(targets: list[str], endpoints: str | Mapping[str, str] | None, timeout: float = 10.0) -> None:
    """Check every S3 target answers (endpoint reachable, credentials accepted, bucket there) before any
    work starts; a clear :class:`BadInputError` naming the target otherwise."""
    for t in targets:
        endpoint = endpoint_for(endpoints, t)
        tgt = S3Target(t, timeout, endpoint)
        try:
            tgt.s3.head_bucket(Bucket=tgt.bucket)
        except _errors() as e:
            code, msg = _explain(e)
            where = endpoint or os.environ.get("AWS_ENDPOINT_URL") or "the default AWS endpoint"
            raise BadInputError(f"S3 target {t} (endpoint {where}): {msg}", field="target", reason=code) from None


def endpoint_in_use(endpoint: str | None) -> str | None:
    """The endpoint a client made for ``endpoint`` talks to (the rule of ``s3_client``): it, else
    $AWS_ENDPOINT_URL_S3, else $AWS_ENDPOINT_URL, else None (AWS itself)."""
    return endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def recordable_endpoint(endpoint: str | None) -> str | None:
    """``endpoint`` as a blob record may name it: an http(s) URL with a host and no user, password, query or
    fragment; None for AWS itself (no endpoint) and for anything else (it is then simply not recorded)."""
    if not endpoint:
        return None
    u = urlparse(endpoint)
    if u.scheme not in ("http", "https") or not u.hostname or u.username is not None or u.password is not None \
            or u.query or u.fragment:
        return None
    return endpoint
