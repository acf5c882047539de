"""Write path over HTTP: every check happens before anything is stored; errors are JSON with a code."""

import base64
import json
import socket
import threading

import httpx
import pytest

from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key, Server


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that only look at their own entries (sizes are compared as deltas)."""
    d = tmp_path_factory.mktemp("write") / "ledger"
    Ledger.init(d, origin="test.example/write").close()
    s = Server(d)
    s.ledger_dir = d
    yield s
    s.stop()


def size(server):
    return httpx.get(server.url + "/healthz").json()["size"]


def registered(server, key):
    r = httpx.post(server.url + "/v1/identities", json=key.registration())
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_register_append_replay(server, alice):
    c = httpx.Client(base_url=server.url)
    r = c.post("/v1/identities", json=alice.registration())
    assert r.status_code == 201 and r.json()["index"] == 0 and r.json()["duplicate"] is False
    e = alice.entry("model.register", {"name": "m", "subjects": ["sha256:" + "ab" * 32]})
    r = c.post("/v1/entries", json=e)
    assert r.status_code == 201, r.text
    first = r.json()
    # replay: same entry again -> first index, duplicate=true, nothing appended
    r = c.post("/v1/entries", json=e)
    assert r.status_code == 200 and r.json() == {**first, "duplicate": True}
    # a different spelling of the same entry (key order, whitespace) is the same leaf
    r = c.post("/v1/entries", content=json.dumps(dict(reversed(list(e.items()))), indent=3),
               headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["index"] == first["index"]
    assert size(server) == 2
    # the checkpoint covers the new entries
    assert c.get("/checkpoint").text.split("\n")[1] == "2"


def test_bad_and_missing_signature(shared, alice):
    server = shared
    registered(server, alice)
    n = size(server)
    e = alice.entry("x.y", {"a": 1})
    bad = dict(e, body={"a": 2})  # signature no longer covers the body
    r = httpx.post(server.url + "/v1/entries", json=bad)
    assert r.status_code == 403 and r.json()["code"] == "bad_signature", r.text
    nosig = {k: v for k, v in e.items() if k != "sig"}
    r = httpx.post(server.url + "/v1/entries", json=nosig)
    assert r.status_code == 400 and r.json()["code"] == "bad_input" and r.json()["field"] == "sig"
    short = dict(e, sig=base64.b64encode(b"x" * 10).decode())
    assert httpx.post(server.url + "/v1/entries", json=short).json()["code"] == "bad_input"
    weird = dict(e, signer={})
    r = httpx.post(server.url + "/v1/entries", json=weird)
    assert r.status_code == 400 and r.json()["code"] == "bad_input"
    assert size(server) == n


def test_unknown_identity_refused(shared, alice):
    server = shared
    n0 = size(server)
    bob = Key("bob")
    r = httpx.post(server.url + "/v1/entries", json=bob.entry("x.y", {}))
    assert r.status_code == 403 and r.json()["code"] == "unknown_identity", r.text
    # registration must be self-signed
    fake = alice.entry("identity.register", {"name": "bob", "did": bob.did})
    r = httpx.post(server.url + "/v1/identities", json=fake)
    assert r.status_code == 400 and r.json()["field"] == "body.did"
    # registration and use in one batch is fine
    r = httpx.post(server.url + "/v1/entries/batch", json={"entries": [bob.registration(), bob.entry("x.y", {})]})
    assert r.status_code == 201 and r.json()["appended"] == 2
    assert size(server) == n0 + 2


def test_self_revocation_over_http_bars_later_entries(shared):
    server = shared
    eve = Key("eve")
    registered(server, eve)
    assert httpx.post(server.url + "/v1/entries", json=eve.entry("x.y", {"ok": 1})).status_code == 201
    rev = eve.entry("identity.revoke", {"name": "eve", "did": eve.did, "reason": "key lost", "subjects": [eve.did]})
    assert httpx.post(server.url + "/v1/entries", json=rev).status_code == 201
    r = httpx.post(server.url + "/v1/entries", json=eve.entry("x.y", {"ok": 2}))
    assert r.status_code == 403 and r.json()["code"] == "revoked_identity", r.text


def test_entries_after_a_revocation_in_the_same_batch_are_refused(shared):
    server = shared
    mal = Key("mal")
    registered(server, mal)
    n0 = size(server)
    rev = mal.entry("identity.revoke", {"name": "mal", "did": mal.did, "reason": "stolen", "subjects": [mal.did]})
    before = mal.entry("x.y", {"signed": "before"})
    after = mal.entry("x.y", {"signed": "after"})
    r = httpx.post(server.url + "/v1/entries/batch", json={"entries": [before, rev, after]})
    assert r.status_code in (400, 403, 422), r.text
    body = r.json()
    assert [e["entry"] for e in body["errors"]] == [2] and "earlier in this batch" in body["errors"][0]["message"]
    assert size(server) == n0  # all or nothing
    r = httpx.post(server.url + "/v1/entries/batch", json={"entries": [before, rev]})
    assert r.status_code == 201 and size(server) == n0 + 2


def test_stale_time_refused(shared, alice):
    server = shared
    registered(server, alice)
    n0 = size(server)
    for off in (-3600, 3600):
        r = httpx.post(server.url + "/v1/entries", json=alice.entry("x.y", {"off": off}, time_offset=off))
        assert r.status_code == 400 and r.json()["code"] == "stale_time", r.text
    assert size(server) == n0


def test_malformed_json_and_oversize(shared, alice):
    server = shared
    registered(server, alice)
    n = size(server)
    u = server.url + "/v1/entries"
    for body in (b"{", b"", b"[1,2", b'{"a":1,"a":2}', b"\xff\xfe", b"NaN", b"[" * 50000 + b"]" * 50000):
        r = httpx.post(u, content=body, headers={"content-type": "application/json"})
        assert r.status_code == 400 and r.json()["code"] == "malformed_json", (body[:10], r.text)
    r = httpx.post(u, json=[1, 2, 3])
    assert r.status_code == 400 and r.json()["code"] == "bad_input"
    big = dict(alice.entry("x.y", {}), body={"blob": "a" * 70000})  # over the 65535-byte entry limit
    r = httpx.post(u, json=big)
    assert r.status_code in (400, 413), r.text
    r = httpx.post(u, content=b"{" + b" " * 300000 + b"}", headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    r = httpx.post(server.url + "/v1/entries/batch", json={"entries": [big]})
    assert r.status_code == 400 and r.json()["code"] == "batch_rejected"
    assert size(server) == n
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_batch_is_all_or_nothing(shared, alice):
    server = shared
    registered(server, alice)
    n0 = size(server)
    good = [alice.entry("x.y", {"i": i}) for i in range(50)]
    bad = dict(good[10], body={"i": -1})
    r = httpx.post(server.url + "/v1/entries/batch", json={"entries": good[:20] + [bad] + good[20:]})
    assert r.status_code == 403 and r.json()["code"] == "batch_rejected"  # every refusal is about the signature
    assert r.json()["errors"][0]["entry"] == 20 and r.json()["errors"][0]["code"] == "bad_signature"
    assert size(server) == n0
    r = httpx.post(server.url + "/v1/entries/batch", json={"entries": good})
    assert r.status_code == 201 and [x["index"] for x in r.json()["results"]] == list(range(n0, n0 + 50))
    r = httpx.post(server.url + "/v1/entries/batch", json={"entries": good + good[:5]})
    assert r.status_code == 200 and r.json()["appended"] == 0 and r.json()["duplicates"] == 55
    for bodyj in ({"entries": []}, {"entries": "x"}, {"entries": [], "more": 1}, {}):
        r = httpx.post(server.url + "/v1/entries/batch", json=bodyj)
        assert r.status_code == 400, r.text


def test_small_body_limit_and_rate_limit(ledger_dir, alice):
    s = Server(ledger_dir, "--max-body", "20000", "--rate", "5", "--burst", "10")
    try:
        registered(s, alice)
        r = httpx.post(s.url + "/v1/entries/batch", json={"entries": [alice.entry("x.y", {"i": i}) for i in range(100)]})
        assert r.status_code == 413 and r.json()["code"] == "too_large"
        r = httpx.post(s.url + "/v1/entries/batch", json={"entries": [alice.entry("x.y", {"i": i}) for i in range(9)]})
        assert r.status_code == 201
        r = httpx.post(s.url + "/v1/entries/batch", json={"entries": [alice.entry("x.y", {"j": i}) for i in range(9)]})
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1
        assert httpx.get(s.url + "/healthz").json()["size"] == 10
    finally:
        s.stop()


def test_overload_answers_503_with_retry_after(ledger_dir, alice):
    s = Server(ledger_dir, "--max-writes", "1")
    try:
        registered(s, alice)
        statuses = []
        batches = [[alice.entry("x.y", {"t": t, "i": i}) for i in range(1000)] for t in range(8)]

        def go(b):
            statuses.append(httpx.post(s.url + "/v1/entries/batch", json={"entries": b}, timeout=60))

        ts = [threading.Thread(target=go, args=(b,)) for b in batches]
        [t.start() for t in ts]
        [t.join() for t in ts]
        codes = sorted(r.status_code for r in statuses)
        assert set(codes) <= {201, 503} and 503 in codes and 201 in codes, codes
        for r in statuses:
            if r.status_code == 503:
                assert r.headers["Retry-After"] == "1" and r.json()["code"] == "overloaded"
        ok = sum(1 for r in statuses if r.status_code == 201)
        assert httpx.get(s.url + "/healthz").json()["size"] == 1 + 1000 * ok
    finally:
        s.stop()


def _raw_get(server, path: str) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, data


def test_path_traversal_in_tile_paths(shared):
    server = shared
    secret = (shared.ledger_dir / "log.key").read_bytes()
    for p in ["/tile/0/../../log.key", "/tile/../log.key", "/tile/entries/..%2F..%2Flog.key",
              "/tile/0/%2e%2e/%2e%2e/config.json", "/tile/0/000/../../../log.key", "/tile/0//000",
              "/tile/entries/000.p/0", "/tile/0/000.p/256", "/tile/99/000", "/tile/0/x000/001",
              "/tile/0/..\\..\\log.key", "/checkpoint/../log.key"]:
        status, data = _raw_get(server, p)
        assert status in (400, 404), (p, status)
        assert secret not in data and b"PRIVATE" not in data
        if status != 404 or b"application/json" in data:
            assert b'"code"' in data
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_nothing_half_written_audit_clean(server, alice, ledger_dir):
    registered(server, alice)
    httpx.post(server.url + "/v1/entries/batch", json={"entries": [alice.entry("x.y", {"i": i}) for i in range(300)]})
    bad = [alice.entry("x.y", {"k": i}) for i in range(300)]
    bad[299]["sig"] = bad[0]["sig"]
    httpx.post(server.url + "/v1/entries/batch", json={"entries": bad})
    with Ledger.open(ledger_dir, read_only=True) as led:
        rep = led.audit(signatures=True)
        assert rep.ok, rep.to_dict()
        assert led.size == 301


def test_rate_limit_is_shared_by_the_workers(ledger_dir, alice):
    """--workers 2: the per-identity bucket is one table for both processes (not one each), so the
    burst cannot be doubled by landing on the other worker."""
    s = Server(ledger_dir, "--rate", "1", "--burst", "30", workers=2)
    try:
        registered(s, alice)
        statuses = []
        for k in range(12):  # a new connection each time: the kernel spreads them over both workers
            with httpx.Client() as c:
                r = c.post(s.url + "/v1/entries/batch",
                           json={"entries": [alice.entry("x.y", {"k": k, "i": i}) for i in range(6)]})
                statuses.append(r.status_code)
        # 30 tokens: 5 batches of 6 at most, whichever worker answered
        assert statuses.count(201) <= 5 and 429 in statuses, statuses
        assert httpx.get(s.url + "/healthz").json()["size"] == 1 + 6 * statuses.count(201)
    finally:
        s.stop()


def test_shared_buckets_table(tmp_path):
    from ailedger.tlog.ingest import SharedBuckets

    a = SharedBuckets(tmp_path / "rl.bin")
    b = SharedBuckets(tmp_path / "rl.bin")  # a second process's view of the same file
    assert a.charge({"did:key:zA": 8}, rate=1.0, burst=10.0, now=100.0) == 0.0
    assert b.charge({"did:key:zA": 3}, rate=1.0, burst=10.0, now=100.0) == pytest.approx(1.0)  # 2 left
    assert b.charge({"did:key:zB": 10}, rate=1.0, burst=10.0, now=100.0) == 0.0  # another identity
    assert a.charge({"did:key:zA": 3}, rate=1.0, burst=10.0, now=101.0) == 0.0  # refilled by 1/s
    assert a.charge({"did:key:zA": 11}, rate=1.0, burst=10.0, now=500.0) == float("inf")
    # all or nothing: a refused charge takes nothing from the other signer in the same batch
    assert a.charge({"did:key:zC": 5, "did:key:zA": 20}, rate=1.0, burst=10.0, now=500.0) == float("inf")
    assert a.charge({"did:key:zC": 10}, rate=1.0, burst=10.0, now=500.0) == 0.0
    a.close()
    b.close()
