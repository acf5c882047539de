"""The gateway refuses calls without a valid key (nothing recorded), bounds slow clients, and answers
any request body with a 4xx, never a 500."""

from __future__ import annotations

import http.client
import logging
import socket
import time

from ailedger.inference.gateway import Gateway, GatewayKeys
from ailedger.server.guard import Deadlines

from .test_gateway import Running

GOOD = b'{"features": [[6.0, 2.2, 5.0, 1.5]]}'


def call(port, body, key=None, path="/predict"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = f"Bearer {key}"
    c.request("POST", path, body=body, headers=h)
    r = c.getresponse()
    out = r.status, r.read()
    c.close()
    return out


def test_calls_without_a_valid_key_are_refused_and_not_recorded(ledger, model_server):
    keys = GatewayKeys(ledger.path)
    k = keys.new_key("carol")
    revoked = keys.new_key("mallory")
    keys.revoke(revoked["key_id"])
    keys.close()
    run = Running(Gateway(ledger, model_server, "iris", mode="durable"))
    size = ledger.store.size()  # after start-up (the trail may register its operator once)
    try:
        for key in (None, "ailk_" + "x" * 43, k["key"][:-1], revoked["key"]):
            st, body = call(run.port, GOOD, key)
            assert st == 401 and b"unauthorized" in body, (key, st, body)
        assert run.gw.stats["recorded"] == 0 and ledger.store.size() == size  # durable: nothing was written
        assert call(run.port, GOOD, k["key"])[0] == 200
        run.gw.trail.flush()  # durable: journalled before the answer, logged with the next batch
        assert run.gw.stats["recorded"] == 1 and ledger.store.size() > size
    finally:
        run.stop()


def test_any_body_gives_a_4xx_and_no_record(ledger, model_server, caplog):
    keys = GatewayKeys(ledger.path)
    k = keys.new_key("carol")["key"]
    keys.close()
    run = Running(Gateway(ledger, model_server, "iris", mode="durable"))
    try:
        for body in (b"{" + b'"a":' * 1 + b"1" * 5000 + b"}", b"[" * 100000 + b"]" * 100000, b"\xff\xfe",
                     b'{"a": NaN}', b'{"a": 1e999}', b'{"a": 1, "a": 2}', b"{"):
            st, answer = call(run.port, body, k)
            assert st == 400 and b"bad_input" in answer, (body[:20], st, answer[:200])
        assert run.gw.stats["recorded"] == 0
    finally:
        run.stop()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_stalled_bodies_do_not_block_calls_nor_spend_budget(ledger, model_server, caplog):
    keys = GatewayKeys(ledger.path)
    k = keys.new_key("carol", daily=3)["key"]
    keys.close()
    run = Running(Gateway(ledger, model_server, "iris", mode="durable",
                          deadlines=Deadlines(head=1.0, body=1.0)))
    socks = []
    try:
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", run.port), timeout=15)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: g\r\nContent-Type: application/json\r\n"
                      b"Authorization: Bearer " + k.encode() + b"\r\nContent-Length: 1000\r\n\r\n{")
            socks.append(s)
        t0 = time.monotonic()
        assert call(run.port, GOOD, k)[0] == 200
        assert time.monotonic() - t0 < 1.0
        answers = [s.recv(4096) for s in socks]
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:2]
        # the 100 stalled calls were never charged to carol's daily quota of 3
        assert call(run.port, GOOD, k)[0] == 200 and call(run.port, GOOD, k)[0] == 200
        assert call(run.port, GOOD, k)[0] == 429
        # a trickled head is cut off (408, as by every ailedger server); a client that leaves mid-body is no
        # server error
        with socket.create_connection(("127.0.0.1", run.port), timeout=15) as s:
            t0 = time.monotonic()
            s.sendall(b"POST /predict HTTP/1.1\r\nHo")
            assert s.recv(4096).startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 5
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", run.port), timeout=15)
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer " + k.encode()
                      + b"\r\nContent-Length: 500\r\n\r\n{\"features\"")
            s.close()
        time.sleep(0.5)
        assert run.gw.stats["recorded"] == 3
    finally:
        for s in socks:
            s.close()
        run.stop()
    bad = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def test_refusals_have_the_shared_error_shape_and_the_openai_error_object(ledger, model_server):
    import json

    keys = GatewayKeys(ledger.path)
    k = keys.new_key("carol")["key"]
    keys.close()
    run = Running(Gateway(ledger, model_server, "iris", mode="durable"))
    try:
        st, body = call(run.port, GOOD)  # no key
        d = json.loads(body)
        assert st == 401 and d["code"] == "unauthorized" and d["message"]
        assert d["error"] == {"code": d["code"], "message": d["message"]}  # what OpenAI clients read
        # a body declared over the gateway's 16 MiB is refused by the shared guard before it is read
        with socket.create_connection(("127.0.0.1", run.port), timeout=15) as s:
            s.sendall(b"POST /predict HTTP/1.1\r\nHost: g\r\nAuthorization: Bearer " + k.encode()
                      + b"\r\nContent-Length: 16777217\r\n\r\n")
            got = b""
            while chunk := s.recv(65536):  # answered, then closed
                got += chunk
        assert got.startswith(b"HTTP/1.1 413")
        d = json.loads(got.partition(b"\r\n\r\n")[2])
        assert d["code"] == "too_large" and d["error"]["code"] == "too_large"
        assert run.gw.stats["recorded"] == 0
    finally:
        run.stop()
