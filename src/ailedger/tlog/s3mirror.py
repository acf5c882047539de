"""Export the log's tiles to an S3-compatible bucket (`ailedger tiles export s3://BUCKET/PREFIX`).

The same files as a directory export (C2SP tlog-tiles: ``checkpoint``, ``tile/<L>/<N>[.p/<W>]``,
``tile/entries/<N>[.p/<W>]``) put as objects under PREFIX, the way Tessera's S3 driver publishes a log:
tiles and entry bundles first (uploaded in parallel), the checkpoint last, once every tile it needs is
stored, each with a ``Cache-Control`` a CDN can act on (``mirror.CACHE_CONTROL``: full tiles immutable
for a year, partial ones a minute, the checkpoint ``no-cache``).  Readers fetch them over the store's
plain HTTP endpoint (``ailedger tiles verify http://HOST/BUCKET/PREFIX``) and trust none of it.

boto3 is imported here only (the ``s3`` extra); credentials come from boto3's usual chain (the
``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` environment variables, ``AWS_PROFILE``, the shared
config files); the endpoint from ``--s3-endpoint`` or ``AWS_ENDPOINT_URL`` (AWS itself without one).
An unreachable endpoint, missing or refused credentials and a missing bucket are found before
anything is written, each a clear error."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from ailedger.errors import AiledgerError, BadInputError, NetworkError, NotFoundError
from ailedger.tlog.mirror import CACHE_CONTROL, TileSink

__all__ = ["S3Sink", "parse_s3_url"]

CONTENT_TYPE = {"checkpoint": "text/plain; charset=utf-8", "full": "application/octet-stream",
                "partial": "application/octet-stream"}


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket[/prefix]`` -> (bucket, prefix without slashes at its ends)."""
    if not url.startswith("s3://"):
        raise BadInputError(f"{url!r} is not an s3://BUCKET[/PREFIX] URL", field="target")
    bucket, _, prefix = url[5:].partition("/")
    prefix = prefix.strip("/")
    if not bucket or not all(c.isalnum() or c in ".-_" for c in bucket) or len(bucket) > 255:
        raise BadInputError(f"{url!r} does not name a bucket (s3://BUCKET[/PREFIX])", field="target")
    if "//" in prefix or any(part in (".", "..") for part in prefix.split("/")):
        raise BadInputError(f"the prefix of {url!r} has an empty, '.' or '..' part", field="target")
    return bucket, prefix


class S3Sink(TileSink):
    """An export target in an S3 bucket.  Puts run on ``workers`` threads; ``flush`` waits for them."""

    trust_known = True

    def __init__(self, url: str, *, endpoint: str | None = None, workers: int = 16, timeout: float = 30.0,
                 client: Any = None) -> None:
        self.bucket, self.prefix = parse_s3_url(url)
        self.location = f"s3://{self.bucket}/{self.prefix}".rstrip("/")
        self.endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL") or None
        self.where = self.endpoint or "AWS S3"
        self.client = client if client is not None else self._client(workers, timeout)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="s3-tiles")
        self._pending: list[Future[None]] = []
        self._max_pending = 8 * workers
        self._listing: dict[str, int] | None = None
        self._partials: dict[str, str] = {}  # partial tile key -> its full tile's key
        self._doomed: dict[str, float] = {}  # partial key -> when its full tile was stored
        self._lock = threading.Lock()
        self.last_checkpoint: bytes | None = None
        self.puts = self.bytes_put = 0
        self._check_bucket()

    # -- connection -----------------------------------------------------------------------------------
    def _client(self, workers: int, timeout: float) -> Any:
        import boto3
        from botocore.config import Config

        if self.endpoint is not None and not self.endpoint.startswith(("http://", "https://")):
            raise BadInputError(f"--s3-endpoint {self.endpoint!r} is not an http(s) URL", field="s3_endpoint")
        cfg = Config(max_pool_connections=workers, connect_timeout=min(timeout, 5.0), read_timeout=timeout,
                     retries={"max_attempts": 3, "mode": "standard"},
                     # an endpoint of one's own (SeaweedFS, MinIO, Ceph) answers path-style requests
                     s3={"addressing_style": "path" if self.endpoint else "auto"})
        session = boto3.session.Session()
        region = session.region_name or "us-east-1"
        return session.client("s3", endpoint_url=self.endpoint, region_name=region, config=cfg)

    def _error(self, exc: Exception, what: str) -> AiledgerError:
        """A boto3/botocore failure as the error a user can act on."""
        from botocore import exceptions as bx

        b = self.bucket
        if isinstance(exc, (bx.NoCredentialsError, bx.PartialCredentialsError)):
            return BadInputError(f"no AWS credentials for s3://{b}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                                 "(or AWS_PROFILE)", field="credentials")
        if isinstance(exc, (bx.EndpointConnectionError, bx.ConnectTimeoutError, bx.ReadTimeoutError,
                            bx.ConnectionClosedError)):
            return NetworkError(f"cannot reach the S3 endpoint {self.where} ({what}): {exc}", url=self.where)
        if isinstance(exc, bx.ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchBucket",) or (code in ("404", "NotFound") and what == "checking the bucket"):
                return NotFoundError(f"bucket {b} does not exist at {self.where}", field="target", bucket=b)
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "Forbidden",
                        "InvalidToken", "ExpiredToken") or status == 403:
                return BadInputError(f"{self.where} refused the credentials for bucket {b} ({code or status}, "
                                     f"{what}): check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE and "
                                     "that they may write the bucket", field="credentials", bucket=b)
            return NetworkError(f"{self.where} answered {code or status} ({what}) for bucket {b}: "
                                f"{err.get('Message', '')}".rstrip(": "), url=self.where)
        if isinstance(exc, bx.BotoCoreError):
            return NetworkError(f"S3 request to {self.where} failed ({what}): {exc}", url=self.where)
        raise exc

    def _check_bucket(self) -> None:
        from botocore import exceptions as bx

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (bx.BotoCoreError, bx.ClientError) as e:
            raise self._error(e, "checking the bucket") from None

    def _key(self, path: str) -> str:
        return f"{self.prefix}/{path}" if self.prefix else path

    # -- the sink -------------------------------------------------------------------------------------
    def read_checkpoint(self) -> bytes | None:
        from botocore import exceptions as bx

        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=self._key("checkpoint"))
            data: bytes = obj["Body"].read(1 << 16)
        except bx.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise self._error(e, "reading the checkpoint") from None
        except bx.BotoCoreError as e:
            raise self._error(e, "reading the checkpoint") from None
        self.last_checkpoint = data
        return data

    def _list(self) -> dict[str, int]:
        """Every tile object under the prefix with its size (one listing, the first time it is needed)."""
        from botocore import exceptions as bx

        if self._listing is None:
            found: dict[str, int] = {}
            try:
                pages = self.client.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=self._key("tile/"))
                for page in pages:
                    for o in page.get("Contents", ()):
                        found[o["Key"]] = int(o["Size"])
            except (bx.BotoCoreError, bx.ClientError) as e:
                raise self._error(e, "listing the tiles") from None
            self._listing = found
            # partial tiles an earlier export left whose full tile is there now: removable after the grace
            now = time.time()
            for key in found:
                head, sep, _ = key.rpartition(".p/")
                if sep and head in found:
                    self._doomed.setdefault(key, now)
        return self._listing

    def has(self, path: str, size: int | None) -> bool:
        got = self._list().get(self._key(path))
        return got is not None and (got == size if size is not None else got > 0)

    def _put(self, key: str, data: bytes, kind: str) -> None:
        from botocore import exceptions as bx

        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, CacheControl=CACHE_CONTROL[kind],
                                   ContentType=CONTENT_TYPE[kind])
        except (bx.BotoCoreError, bx.ClientError) as e:
            raise self._error(e, f"writing {key}") from None
        with self._lock:
            self.puts += 1
            self.bytes_put += len(data)

    def put(self, path: str, data: bytes, kind: str) -> None:
        key = self._key(path)
        if kind == "checkpoint":
            self.flush()
            self._put(key, data, kind)
            self.last_checkpoint = data
            return
        if kind == "partial":
            self._partials[key] = key.rpartition(".p/")[0]
        elif key in self._partials.values():
            now = time.time()
            for p, full in list(self._partials.items()):
                if full == key:
                    self._doomed[p] = now
                    del self._partials[p]
        self._pending.append(self._pool.submit(self._put, key, data, kind))
        if len(self._pending) >= self._max_pending:
            self._wait(self._max_pending // 2)

    def _wait(self, keep: int = 0) -> None:
        while len(self._pending) > keep:
            fut = self._pending.pop(0)
            try:
                fut.result()
            except BaseException:
                for f in self._pending:
                    f.cancel()
                # wait for the uploads already running (the first failure is the one reported)
                wait([f for f in self._pending if not f.cancelled()])
                self._pending.clear()
                raise

    def flush(self) -> None:
        self._wait(0)

    def prune(self, grace_seconds: float) -> int:
        """Delete partial tiles whose full tile has been stored for ``grace_seconds`` (readers holding
        an older checkpoint may still ask for them a little while).  Returns how many went."""
        from botocore import exceptions as bx

        now = time.time()
        due = [k for k, t in self._doomed.items() if now - t >= grace_seconds]
        for i in range(0, len(due), 1000):
            batch = due[i:i + 1000]
            try:
                self.client.delete_objects(Bucket=self.bucket,
                                           Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
            except (bx.BotoCoreError, bx.ClientError) as e:
                raise self._error(e, "removing old partial tiles") from None
            for k in batch:
                del self._doomed[k]
        return len(due)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
