"""Group commit over HTTP (issue 21): one bad request among many from other writers, writers that disconnect,
SIGKILL mid-group, a full disk. Real `ailedger serve` processes on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import shutil
import socket
import threading
import time

import httpx
import pytest

from ailedger.encoding.canonical import canonical_json
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.merkle import leaf_hash
from tests.http.commit_helpers import checkpoint_size, leaf_hex, register
from tests.http.helpers import Key, Server


def _bad_sig(e: dict) -> dict:
    sig = bytearray(base64.b64decode(e["sig"]))
    sig[5] ^= 1
    return {**e, "sig": base64.b64encode(bytes(sig)).decode()}


@pytest.mark.parametrize("kind", ["bad_signature", "stale_time"])
def test_one_bad_entry_among_1000_good_from_other_writers_fails_only_its_request(tmp_path, kind):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/gc").close()
    s = Server(d, "--commit-window-ms", "300", "--max-writes", "256")  # a wide window: requests share groups
    try:
        keys = [Key(f"w{i}") for i in range(5)]
        bad_key = Key("bad")
        register(s.url, *keys, bad_key)
        batches = [[keys[w % 5].entry("x.y", {"w": w, "j": j}) for j in range(20)] for w in range(50)]
        bad = (_bad_sig(bad_key.entry("x.y", {"bad": 1})) if kind == "bad_signature"
               else bad_key.entry("x.y", {"bad": 1}, time_offset=-3600))
        out: dict = {}
        barrier = threading.Barrier(51)

        def send(i):
            barrier.wait()
            if i == 50:
                out[i] = httpx.post(s.url + "/v1/entries", json=bad, timeout=60)
            else:
                out[i] = httpx.post(s.url + "/v1/entries/batch", json={"entries": batches[i]}, timeout=60)

        ts = [threading.Thread(target=send, args=(i,)) for i in range(51)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        # a signature that does not verify is an authentication failure (403); a stale time is bad input (400)
        assert out[50].status_code == {"bad_signature": 403, "stale_time": 400}[kind], out[50].text
        assert out[50].json()["code"] == kind, out[50].text
        assert all(out[i].status_code == 201 for i in range(50)), {out[i].status_code for i in range(50)}
        idxs = sorted(x["index"] for i in range(50) for x in out[i].json()["results"])
        assert idxs == list(range(6, 1006))
        assert checkpoint_size(s.url) == 1006
    finally:
        s.stop()
    with Ledger.open(d) as led:
        assert led.size == 1006 and not led.store.indices_of([bytes.fromhex(leaf_hex(bad))])
        assert led.audit(signatures=True).ok


def _post_and_vanish(port: int, path: str, body: bytes) -> None:
    """Send a whole request, then close the connection at once (RST), before any answer."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    sock.close()


def test_a_writer_that_disconnects_before_its_answer(any_ledger):
    """Its request is either in the log whole (it was already in a group) or not at all (it was never
    acknowledged); a retry learns which, with the indices. Never a part of a batch."""
    s = Server(any_ledger, "--commit-window-ms", "20")
    try:
        k = Key("k")
        register(s.url, k)
        batches = [[k.entry("x.y", {"b": b, "j": j}) for j in range(20)] for b in range(30)]
        singles = [k.entry("x.y", {"s": i}) for i in range(30)]
        ts = [threading.Thread(target=_post_and_vanish, args=(s.port, "/v1/entries/batch",
                                                                canonical_json({"entries": b})))
              for b in batches]
        ts += [threading.Thread(target=_post_and_vanish, args=(s.port, "/v1/entries", canonical_json(e)))
               for e in singles]
        [t.start() for t in ts]
        [t.join() for t in ts]
        time.sleep(0.5)
        assert httpx.get(s.url + "/healthz").status_code == 200
        seen: dict[int, str] = {}
        outcomes = set()
        c = httpx.Client(timeout=30)
        for b in batches:
            r = c.post(s.url + "/v1/entries/batch", json={"entries": b})
            assert r.status_code in (200, 201), r.text
            dups = {x["duplicate"] for x in r.json()["results"]}
            assert len(dups) == 1, "a batch was half in the log"
            outcomes.add(dups.pop())
            seen.update((x["index"], x["leaf_hash"]) for x in r.json()["results"])
        for e in singles:
            r = c.post(s.url + "/v1/entries", json=e)
            assert r.status_code in (200, 201), r.text
            seen[r.json()["index"]] = r.json()["leaf_hash"]
        c.close()
        assert checkpoint_size(s.url) == 1 + 30 * 20 + 30
    finally:
        s.stop()
    with Ledger.open(any_ledger) as led:
        assert led.size == 1 + 30 * 20 + 30 and sorted(seen) == list(range(1, led.size))
        for i, h in seen.items():
            assert leaf_hash(led.entry_bytes(i)).hex() == h
        assert led.audit(signatures=True).ok


def test_disk_full_mid_group_fails_every_request_of_the_group_cleanly(small_disk, tmp_path):
    d = small_disk / "ledger"
    Ledger.init(d, origin="test.example/full").close()
    s = Server(d, "--commit-window-ms", "50")
    acked: list[tuple[int, str]] = []
    failed: list[set[str]] = []
    try:
        keys = [Key(f"w{i}") for i in range(4)]
        register(s.url, *keys)
        stop = threading.Event()
        lock = threading.Lock()

        def writer(w: int) -> None:
            k = keys[w % 4]
            with httpx.Client(timeout=60) as c:
                for b in range(200):
                    es = [k.entry("x.y", {"w": w, "b": b, "j": j, "pad": "p" * 300}) for j in range(10)]
                    r = c.post(s.url + "/v1/entries/batch", json={"entries": es})
                    with lock:
                        if r.status_code == 201:
                            acked.extend((x["index"], x["leaf_hash"]) for x in r.json()["results"])
                        else:
                            assert r.status_code == 503 and r.json()["code"] == "storage", r.text
                            assert r.headers["retry-after"] == "1"
                            failed.append({leaf_hex(e) for e in es})
                            if len(failed) >= 30:
                                stop.set()
                    if stop.is_set():
                        return

        ts = [threading.Thread(target=writer, args=(w,)) for w in range(12)]
        [t.start() for t in ts]
        [t.join() for t in ts]
        assert failed, "the disk never filled up"
        assert httpx.get(s.url + "/checkpoint").status_code == 200 and s.alive()
    finally:
        s.stop()
    copy = tmp_path / "copy"
    shutil.copytree(d, copy)  # audit on a disk with room (the WAL may need to be checkpointed)
    with Ledger.open(copy) as led:
        present = {leaf_hash(led.entry_bytes(i)).hex() for i in range(led.size)}
        for req in failed:
            assert not (req & present), "an entry of a request answered 503 is in the log"
        for i, h in acked:
            assert leaf_hash(led.entry_bytes(i)).hex() == h
        assert led.size == 4 + len(acked)
        assert led.audit(signatures=True).ok
