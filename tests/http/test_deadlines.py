"""Slow and broken clients against `ailedger serve`: stalled bodies do not take write slots, heads and
bodies have deadlines (408), a body that keeps its rate is never cut, a client that leaves mid-body
is not an internal error."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key, Server


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("deadlines") / "ledger"
    Ledger.init(d, origin="test.example/deadlines").close()
    s = Server(d, "--head-timeout", "1", "--body-timeout", "2", "--min-body-rate", "1000")
    yield s
    s.stop()


def _conn(s):
    return socket.create_connection(("127.0.0.1", s.port), timeout=30)


def _read_all(c) -> bytes:
    out = b""
    while True:
        b = c.recv(65536)
        if not b:
            return out
        out += b


def _log(s) -> str:
    return Path(s.log.name).read_text(errors="replace")


def test_stalled_bodies_do_not_block_writes(srv):
    socks = []
    try:
        for _ in range(100):  # each would have held one of the 32 write slots before
            c = _conn(srv)
            c.sendall(b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 1000\r\n\r\n{")
            socks.append(c)
        time.sleep(0.3)
        k = Key("writer")
        t0 = time.monotonic()
        r = httpx.post(srv.url + "/v1/identities", json=k.registration(), timeout=10)
        assert r.status_code == 201, r.text
        for i in range(5):
            r = httpx.post(srv.url + "/v1/entries", json=k.entry("x.y", {"i": i}), timeout=10)
            assert r.status_code == 201, r.text
        assert time.monotonic() - t0 < 2.0
        answers = [_read_all(c) for c in socks]  # each stalled body gets a 408 at its deadline, then a close
        assert all(a.startswith(b"HTTP/1.1 408") and b"request_timeout" in a for a in answers), answers[:2]
    finally:
        for c in socks:
            c.close()


def test_a_trickled_head_gets_408(srv):
    with _conn(srv) as c:
        t0 = time.monotonic()
        c.sendall(b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Le")
        got = c.recv(4096)
        assert got.startswith(b"HTTP/1.1 408") and 0.8 < time.monotonic() - t0 < 5, got[:80]


def test_a_body_that_keeps_its_rate_is_served_and_a_trickle_is_cut(srv):
    k = Key("steady")
    assert httpx.post(srv.url + "/v1/identities", json=k.registration()).status_code == 201
    body = json.dumps({"entries": [k.entry("x.y", {"i": i, "pad": "p" * 200}) for i in range(15)]}).encode()
    assert len(body) > 4000  # longer than the 2 s base deadline covers at 1000 B/s... only if it keeps the rate
    with _conn(srv) as c:
        c.sendall(b"POST /v1/entries/batch HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode())
        t0 = time.monotonic()
        for i in range(0, len(body), 500):  # 2,500 bytes/s, for about 2.5 s in all
            c.sendall(body[i:i + 500])
            time.sleep(0.2)
        got = c.recv(65536)
        assert got.startswith(b"HTTP/1.1 201"), got[:200]
        assert time.monotonic() - t0 > 2.0  # it did take longer than the base deadline
    with _conn(srv) as c:  # 1 byte every 0.4 s: below the minimum rate
        c.sendall(b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 400\r\n\r\n")
        t0 = time.monotonic()
        got = b""
        for _ in range(40):
            try:
                c.sendall(b" ")
            except OSError:
                break
            c.settimeout(0.4)
            try:
                got = c.recv(4096)
                break
            except TimeoutError:
                continue
        assert got.startswith(b"HTTP/1.1 408"), got[:100]
        assert time.monotonic() - t0 < 6


def test_a_client_that_disconnects_mid_body_is_not_an_internal_error(srv):
    for _ in range(5):
        c = _conn(srv)
        c.sendall(b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"type\":")
        c.close()
    threads = []
    for _ in range(5):  # and one that goes away while the body is being read by a slow writer
        def go():
            c = _conn(srv)
            c.sendall(b"POST /v1/entries/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
            time.sleep(0.2)
            c.close()
        t = threading.Thread(target=go)
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    time.sleep(0.5)
    assert httpx.get(srv.url + "/healthz").status_code == 200
    log = _log(srv)
    assert "internal error" not in log and "Traceback" not in log, log[-3000:]


def test_deadlines_are_stated_in_the_log_policy(srv):
    p = httpx.get(srv.url + "/v1/log").json()["policy"]
    assert p["head_timeout_seconds"] == 1 and p["body_timeout_seconds"] == 2 and p["min_body_rate"] == 1000
