"""`/checkpoint` of a running `ailedger serve` covers entries another process appended (`ailedger append`),
within checkpoint_refresh + checkpoint_ttl seconds, not only after the server's next write (docs/api.md)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from ailedger.tlog.ledger import Ledger
from ailedger.tlog.log import TransparencyLog
from tests.http.helpers import Server

TTL = 0.5  # ServeConfig.checkpoint_ttl


def _size(note: str) -> int:
    return int(note.split("\n")[1])


def _cli_append(ledger: Path, tmp: Path, n: int) -> tuple[int, float]:
    rec = tmp / f"r{n}.json"
    rec.write_text(json.dumps({"type": "note", "body": {"n": n}}))
    p = subprocess.run([sys.executable, "-m", "ailedger", "append", "--ledger", str(ledger), "--as", "alice",
                        str(rec), "--json"], capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)["index"], time.monotonic()


def _wait_covering(url: str, size: int, limit: float) -> float:
    t0 = time.monotonic()
    while True:
        if _size(httpx.get(url + "/checkpoint").text) >= size:
            return time.monotonic() - t0
        if time.monotonic() - t0 > limit:
            raise AssertionError(f"/checkpoint did not reach size {size} within {limit} s")
        time.sleep(0.02)


def _ledger(tmp_path: Path) -> Path:
    d = tmp_path / "ledger"
    with Ledger.init(d, origin="test.example/follow") as led:
        led.new_identity("alice")
    return d


def test_checkpoint_covers_a_cli_append_within_the_bound(tmp_path: Path) -> None:
    d = _ledger(tmp_path)
    refresh = 1.0
    srv = Server(d)  # the defaults: checkpoint_refresh 1 s, checkpoint_ttl 0.5 s
    try:
        assert _size(httpx.get(srv.url + "/checkpoint").text) == 1
        lags = []
        for n in range(3):
            index, _ = _cli_append(d, tmp_path, n)
            lag = _wait_covering(srv.url, index + 1, refresh + TTL + 1.0)
            lags.append(lag)
            # the checkpoint it serves is the log's, signed by the server's key, at the store's size
            note = httpx.get(srv.url + "/checkpoint").text
            with Ledger.open(d, read_only=True) as led:
                assert note.encode() == led.store.checkpoint_at(index + 1)
            # and the proofs that depend on it are there at once
            r = httpx.get(f"{srv.url}/v1/entries/{index}/proof")
            assert r.status_code == 200, r.text
        assert max(lags) <= refresh + TTL + 0.5, lags
        print(f"lag from the end of `ailedger append` to a covering /checkpoint: {[round(x, 3) for x in lags]} s")
    finally:
        srv.stop()


def test_a_partial_tile_of_the_new_size_is_served(tmp_path: Path) -> None:
    """A client that asks for the right-edge tile of the grown tree (before reading /checkpoint) gets it."""
    d = _ledger(tmp_path)
    srv = Server(d, "--checkpoint-refresh", "0")
    try:
        httpx.get(srv.url + "/checkpoint")
        index, _ = _cli_append(d, tmp_path, 0)
        r = httpx.get(f"{srv.url}/tile/0/000.p/{index + 1}")
        assert r.status_code == 200 and len(r.content) == 32 * (index + 1), r.text
        r = httpx.get(f"{srv.url}/tile/entries/000.p/{index + 1}")
        assert r.status_code == 200
    finally:
        srv.stop()


def test_reads_sign_at_most_once_per_refresh_interval(tmp_path: Path) -> None:
    d = _ledger(tmp_path)
    refresh, seconds = 0.5, 2.0
    srv = Server(d, "--checkpoint-refresh", str(refresh))
    stop = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        with httpx.Client() as c:
            while not stop.is_set():
                seen.append(_size(c.get(srv.url + "/checkpoint").text))

    try:
        with Ledger.open(d) as led:
            before = len(led.store.checkpoints())
            th = threading.Thread(target=reader)
            th.start()
            t0 = time.monotonic()
            n = 0
            # another writer without the log key (it cannot sign checkpoints) appends all the time
            keyless = TransparencyLog(led.store, led.origin)
            while time.monotonic() - t0 < seconds:
                keyless.append_data([f"x{n}".encode()])
                n += 1
                time.sleep(0.005)
            stop.set()
            th.join()
            size = led.size
            signed = len(led.store.checkpoints()) - before
        assert n > 50 and len(seen) > 20
        assert 1 <= signed <= seconds / refresh + 2, (signed, n)
        assert _wait_covering(srv.url, size, refresh + TTL + 1.0) <= refresh + TTL + 0.5
    finally:
        srv.stop()
