"""The ingest front (``serve --ingest-port``, http/ingest_front.py over the C loop tlog/_front.c): the same
answers as ``POST /v1/entries`` on the API, a bad entry failing alone among concurrent good ones, the
front's own answers to malformed, oversized, other-path and slow requests, a client that disconnects
before its answer, and SIGKILL under load (every acknowledged entry there after the restart)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import threading
import time

import httpx
import pytest
from starlette.testclient import TestClient

from ailedger.encoding.canonical import canonical_json
from ailedger.http.app import ServeConfig, create_app
from ailedger.http.ingest_front import IngestFront, available
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.merkle import leaf_hash
from tests.http.commit_helpers import checkpoint_size, leaf_hex, register
from tests.http.helpers import Key, Server

pytestmark = pytest.mark.skipif(not available(), reason="ailedger.tlog._front is not built (no C compiler)")


def port() -> int:
    """A free port: from $AILEDGER_TEST_PORTS ("lo-hi", a range of one's own on a shared machine), else any."""
    span = os.environ.get("AILEDGER_TEST_PORTS")
    lo, hi = map(int, span.split("-")) if span else (0, 0)
    cands = random.sample(range(lo, hi + 1), min(20, hi - lo + 1)) if span else [0]
    for p in cands:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RuntimeError(f"no free port in {span}")


@pytest.fixture
def front(tmp_path):
    """An API (in process, TestClient) and its ingest front on a real socket, on one ledger."""
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/front").close()
    with Ledger.open(d) as led:
        app = create_app(led, ServeConfig(open_registration=True, head_timeout=0.4, body_timeout=0.4))
        f = IngestFront(app.api, "127.0.0.1", port()).start()  # type: ignore[attr-defined]
        try:
            yield f, TestClient(app), led
        finally:
            f.stop()


def raw(f: IngestFront, data: bytes, *, shut: bool = True, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh connection; everything the front answers until it closes (or timeout)."""
    with socket.create_connection(("127.0.0.1", f.port), timeout=timeout) as s:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        out = b""
        try:
            while chunk := s.recv(65536):
                out += chunk
        except TimeoutError:
            pass
        return out


def status_and_json(resp: bytes) -> tuple[int, dict]:
    head, _, body = resp.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_answers_are_the_apis(front):
    f, api, led = front
    alice, mallory = Key("alice"), Key("mallory")
    assert api.post("/v1/identities", json=alice.registration()).status_code == 201
    c = httpx.Client()
    e1, e2 = alice.entry("note", {"n": 1}), alice.entry("note", {"n": 2})
    r_api = api.post("/v1/entries", content=canonical_json(e1))
    r = c.post(f.url, content=canonical_json(e1))  # logged by the API: the front answers 200 duplicate, its index
    assert r_api.status_code == 201 and r.status_code == 200
    assert r.json() == {**r_api.json(), "duplicate": True}
    r = c.post(f.url, content=canonical_json(e2))
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    assert led.entry_bytes(r.json()["index"]) == canonical_json(e2)
    assert api.post("/v1/entries", content=canonical_json(e2)).json() == {**r.json(), "duplicate": True}
    # non-canonical JSON of a new entry is read strictly, as the API does
    e3 = alice.entry("note", {"n": 3})
    r = c.post(f.url, content=json.dumps(e3, indent=2))
    assert r.status_code == 201 and led.entry_bytes(r.json()["index"]) == canonical_json(e3)
    # refusals: same status and same JSON from both, and nothing logged
    bad_sig = dict(alice.entry("note", {"n": 4}), sig="A" * 86 + "==")
    size = led.size
    for body in (canonical_json(bad_sig), canonical_json(alice.entry("note", {"n": 5}, time_offset=-7200)),
                 canonical_json(mallory.entry("note", {"n": 6})), b"{nope", b"", b"[1,2]", b'"x"',
                 canonical_json({**alice.entry("note", {"n": 7}), "extra": 1})):
        a, b = api.post("/v1/entries", content=body), c.post(f.url, content=body)
        assert (b.status_code, b.json()) == (a.status_code, a.json()), body
        assert 400 <= b.status_code < 500
    assert led.size == size


def test_registration_needs_the_api_unless_open(tmp_path):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/front").close()
    with Ledger.open(d) as led:
        app = create_app(led, ServeConfig())
        with IngestFront(app.api, "127.0.0.1", port()) as f:  # type: ignore[attr-defined]
            r = httpx.post(f.url, content=canonical_json(Key("eve").registration()))
            assert r.status_code == 401 and r.json()["field"] == "authorization"
            assert "ingest port" in r.json()["message"] and led.size == 0


def test_one_bad_signature_among_many_concurrent_good_ones_fails_alone(front):
    f, api, led = front
    keys = [Key(f"k{i}") for i in range(4)]
    for k in keys:
        assert api.post("/v1/identities", json=k.registration()).status_code == 201
    good = [canonical_json(keys[i % 4].entry("note", {"i": i})) for i in range(200)]
    bad = canonical_json(dict(keys[0].entry("note", {"i": -1}), sig="B" * 86 + "=="))
    bodies = good[:100] + [bad] + good[100:]
    out: dict[int, tuple[int, dict]] = {}
    gate = threading.Barrier(40)

    def conn(k: int) -> None:
        with httpx.Client(timeout=20) as c:
            gate.wait()
            for i in range(k, len(bodies), 40):
                r = c.post(f.url, content=bodies[i])
                out[i] = (r.status_code, r.json())

    ts = [threading.Thread(target=conn, args=(k,)) for k in range(40)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    assert out[100][0] in (400, 403) and "signature" in out[100][1]["message"], out[100]
    idx = [out[i][1]["index"] for i in range(len(bodies)) if i != 100]
    assert all(out[i][0] == 201 for i in range(len(bodies)) if i != 100)
    assert len(set(idx)) == 200
    for i in range(len(bodies)):
        if i != 100:
            assert led.entry_bytes(out[i][1]["index"]) == bodies[i]
    assert f.stats["groups"] < 200  # answered in groups, not one by one


def test_malformed_oversized_other_path_and_method(front):
    f, _, led = front
    cases = [
        (b"GET /v1/entries HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"),
        (b"POST /checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 404, "not_found"),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found"),
        (b"POST /v1/entries HTTP/1.1\r\nHost: x\r\n\r\n", 411, "length_required"),
        (b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411,
         "length_required"),
        (b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n", 413, "too_large"),
        (b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n{", 400,
         "bad_request"),
        (b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "bad_request"),
        (b"POST /v1/entries HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 400, "bad_request"),  # no Host
        (b"POST /v1/entries HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version"),
        (b"garbage\r\n\r\n", 400, "bad_request"),
        (b"POST /v1/entries HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: " + b"a" * 9000 + b"\r\n\r\n", 431,
         "head_too_large"),
    ]
    for data, status, code in cases:
        st, js = status_and_json(raw(f, data))
        assert (st, js["code"]) == (status, code), data[:60]
        assert "message" in js
    st, js = status_and_json(raw(f, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert "POST /v1/entries" in js["message"]
    # keep-alive after a 404 without a body: the next request on the connection is served
    two = raw(f, b"GET /x HTTP/1.1\r\nHost: x\r\n\r\nPOST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 b"\r\n{nope")
    assert two.count(b"HTTP/1.1 ") == 2 and b"HTTP/1.1 400" in two and b"malformed_json" in two
    assert led.size == 0


def test_slow_and_idle_clients_time_out(front):
    f, _, _ = front
    t0 = time.monotonic()
    got = raw(f, b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Len", shut=False, timeout=5)
    assert got.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < 4
    t0 = time.monotonic()  # a body that stops arriving
    got = raw(f, b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{", shut=False, timeout=5)
    assert got.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < 4
    assert f.c_stats()["timeouts"] == 2


def test_expect_100_continue_and_pipelining(front):
    f, api, led = front
    k = Key("p")
    assert api.post("/v1/identities", json=k.registration()).status_code == 201
    a, b = canonical_json(k.entry("note", {"n": 1})), canonical_json(k.entry("note", {"n": 2}))
    with socket.create_connection(("127.0.0.1", f.port), timeout=5) as s:
        s.sendall(b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(a))
        assert s.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        req = b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(b)
        s.sendall(a + req + b)  # the second request pipelined behind the first
        data = b""
        while data.count(b"HTTP/1.1 201") < 2:
            data += s.recv(65536)
    assert led.size == 3


def test_client_that_disconnects_before_its_answer(front):
    """Its entry is either in the log (the group committed: re-sending it answers 200 with its index) or
    was never acknowledged; the front goes on serving."""
    f, api, led = front
    k = Key("d")
    assert api.post("/v1/identities", json=k.registration()).status_code == 201
    bodies = [canonical_json(k.entry("note", {"n": i})) for i in range(30)]
    for body in bodies:
        s = socket.create_connection(("127.0.0.1", f.port))
        s.sendall(b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST at close
        s.close()
    time.sleep(0.5)
    present = {leaf_hash(led.entry_bytes(i)) for i in range(led.size)}
    with httpx.Client() as c:
        for body in bodies:
            r = c.post(f.url, content=body)
            assert r.status_code == (200 if leaf_hash(body) in present else 201)
            assert led.entry_bytes(r.json()["index"]) == body
        assert f.c_stats()["connections"] == 1  # this one: the disconnected ones are gone


def test_sigkill_under_load_loses_nothing_acknowledged(any_ledger, tmp_path):
    """`serve --ingest-port` killed (SIGKILL) under 20 writers of single entries: after the restart every
    acknowledged entry is at its index, no index twice, nothing half-written, the checkpoint covers it all."""
    ip = port()
    keys = [Key(f"w{i}") for i in range(4)]
    s = Server(any_ledger, "--ingest-port", str(ip))
    acked = register(s.url, *keys)
    lock = threading.Lock()
    stop = threading.Event()

    def writer(w: int) -> None:
        with httpx.Client(timeout=10) as c:
            m = 0
            while not stop.is_set():
                m += 1
                e = keys[w % 4].entry("x.y", {"w": w, "m": m})
                try:
                    r = c.post(f"http://127.0.0.1:{ip}/v1/entries", content=canonical_json(e))
                except httpx.HTTPError:
                    return
                assert r.status_code == 201, r.text
                with lock:
                    acked.append((r.json()["index"], r.json()["leaf_hash"]))
                    assert r.json()["leaf_hash"] == leaf_hex(e)

    ts = [threading.Thread(target=writer, args=(w,)) for w in range(20)]
    [t.start() for t in ts]
    t0 = time.monotonic()
    while len(acked) < 300 and time.monotonic() - t0 < 60:
        time.sleep(0.05)
    time.sleep(random.random() * 0.2)
    s.proc.send_signal(signal.SIGKILL)
    s.proc.wait(10)
    stop.set()
    [t.join() for t in ts]
    s.log.close()
    s = Server(any_ledger, "--ingest-port", str(ip))
    try:
        with Ledger.open(any_ledger) as led:
            size = led.size
            assert checkpoint_size(s.url) == size
            idxs = [i for i, _ in acked]
            assert len(idxs) == len(set(idxs)) and len(acked) > 300
            for i, h in acked:
                assert leaf_hash(led.entry_bytes(i)).hex() == h, f"acknowledged entry {i} lost"
            hashes = [leaf_hash(led.entry_bytes(i)) for i in range(size)]
            assert len(set(hashes)) == size  # no duplicate
        # the front is back: a new entry is taken
        r = httpx.post(f"http://127.0.0.1:{ip}/v1/entries", content=canonical_json(keys[0].entry("x.y", {"after": 1})))
        assert r.status_code == 201 and r.json()["index"] == size
    finally:
        s.stop()


def test_disk_full_mid_group_fails_every_request_of_it_cleanly(small_disk, tmp_path):
    """The store fails (SQLite on a full disk): the group's requests all answer 503 storage with Retry-After,
    no success answer for anything not durable; what was acknowledged is in the log."""
    d = small_disk / "ledger"
    Ledger.init(d, origin="test.example/full").close()
    acked: list[tuple[int, str]] = []
    statuses: list[int] = []
    lock = threading.Lock()
    with Ledger.open(d) as led:
        app = create_app(led, ServeConfig(open_registration=True))
        with IngestFront(app.api, "127.0.0.1", port()) as f:  # type: ignore[attr-defined]
            k = Key("k")
            assert TestClient(app).post("/v1/identities", json=k.registration()).status_code == 201

            def writer(w: int) -> None:
                with httpx.Client(timeout=30) as c:
                    for m in range(400):
                        e = k.entry("x.y", {"w": w, "m": m, "pad": "p" * 3000})
                        r = c.post(f.url, content=canonical_json(e))
                        with lock:
                            statuses.append(r.status_code)
                            if r.status_code == 201:
                                acked.append((r.json()["index"], leaf_hex(e)))
                            else:
                                assert r.status_code == 503 and r.json()["code"] == "storage", r.text
                                assert r.headers["retry-after"] == "1"
                            if statuses.count(503) >= 20:
                                return

            ts = [threading.Thread(target=writer, args=(w,)) for w in range(10)]
            [t.start() for t in ts]
            [t.join() for t in ts]
    assert 503 in statuses and 201 in statuses, "the disk never filled up"
    copy = tmp_path / "copy"
    shutil.copytree(d, copy)  # audit on a disk with room (the WAL may need to be checkpointed)
    with Ledger.open(copy) as led:
        for i, h in acked:
            assert leaf_hash(led.entry_bytes(i)).hex() == h
        assert led.size == 1 + len(acked)
        assert led.audit(signatures=True).ok


def test_serve_with_two_workers_runs_one_front(ledger_dir):
    """`serve --workers 2 --ingest-port P`: one worker runs the front (the other finds the lock taken), both
    serve the API; entries posted to the ingest port are in the log the API reads."""
    ip = port()
    s = Server(ledger_dir, "--ingest-port", str(ip), workers=2)
    try:
        k = Key("two")
        register(s.url, k)
        t0 = time.monotonic()
        while True:  # the front starts with its worker: its port answers within the start-up
            try:
                r = httpx.post(f"http://127.0.0.1:{ip}/v1/entries", content=canonical_json(k.entry("x.y", {"n": 1})))
                break
            except httpx.ConnectError:
                assert time.monotonic() - t0 < 30
                time.sleep(0.1)
        assert r.status_code == 201
        assert httpx.get(f"{s.url}/v1/entries/{r.json()['index']}").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{ip}/v1/log").status_code == 404
    finally:
        s.stop()


def test_ingest_port_must_differ_from_the_api_port(ledger_dir):
    from click.testing import CliRunner

    from ailedger.cli.main import main

    r = CliRunner().invoke(main, ["serve", "--ledger", str(ledger_dir), "--port", "18399", "--ingest-port", "18399"])
    assert r.exit_code == 2 and "--ingest-port must differ from --port" in r.output


def test_appended_answer_is_the_apis_json():
    """The front formats a new entry's answer itself: byte for byte the API's json_bytes of the same fields."""
    from ailedger.http.ingest_front import _appended
    from ailedger.server.asgi import json_bytes
    from ailedger.tlog.log import AppendResult

    for r in (AppendResult(0, bytes(32), False), AppendResult(2**40 + 7, bytes(range(32)), False),
              AppendResult(12, bytes(range(32, 64)), True)):
        token, status, body = _appended(9, r)
        assert (token, status) == (9, 200 if r.duplicate else 201)
        assert body == json_bytes({"index": r.index, "leaf_hash": r.leaf_hash.hex(), "duplicate": r.duplicate})


def _closed_loop(url: str, bodies: list[bytes], writers: int) -> list[int]:
    """``writers`` keep-alive connections started together, each posting its share of ``bodies`` one after
    the other (the next once answered): every status."""
    statuses: list[int] = []
    gate = threading.Barrier(writers)

    def conn(k: int) -> None:
        with httpx.Client(timeout=20) as c:
            gate.wait()
            for i in range(k, len(bodies), writers):
                statuses.append(c.post(url, content=bodies[i]).status_code)

    ts = [threading.Thread(target=conn, args=(k,)) for k in range(writers)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    return statuses


@contextlib.contextmanager
def _ledger_and_notes(tmp_path, prefix: str, n: int):
    """A fresh ledger with its API (open registration), three registered signers and ``n`` signed notes."""
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/front").close()
    with Ledger.open(d) as led:
        app = create_app(led, ServeConfig(open_registration=True))
        api = TestClient(app)
        keys = [Key(f"{prefix}{i}") for i in range(3)]
        for k in keys:
            assert api.post("/v1/identities", json=k.registration()).status_code == 201
        yield led, app, [canonical_json(keys[i % 3].entry("note", {"i": i})) for i in range(n)]


def test_groups_gather_every_writer_but_no_more_than_max_group(tmp_path):
    """Closed-loop writers land in shared groups (gathered piece by piece), and a group never holds more than
    max_group requests: with 24 writers and max_group=5, every commit answers at most 5."""
    with _ledger_and_notes(tmp_path, "g", 120) as (led, app, bodies):
        with IngestFront(app.api, "127.0.0.1", port(), max_group=5) as f:  # type: ignore[attr-defined]
            assert _closed_loop(f.url, bodies[:60], 24) == [201] * 60
            assert f.stats["largest_group"] <= 5 and f.stats["groups"] >= 12
        with IngestFront(app.api, "127.0.0.1", port()) as f:  # type: ignore[attr-defined]
            assert _closed_loop(f.url, bodies[60:], 24) == [201] * 60
            assert f.stats["groups"] < 60  # shared, not one by one
        assert led.size == 3 + 120


def test_cohorts_split_closed_loop_writers_into_groups_that_take_turns(tmp_path):
    """With cohorts=2 (the default) a group holds at most half the open connections' requests (rounded up), so
    one half is committed while the other is checked: 24 writers make groups of at most 12; with 3 cohorts at
    most 8. A bad count is refused by name."""
    with _ledger_and_notes(tmp_path, "c", 240) as (led, app, bodies):
        with IngestFront(app.api, "127.0.0.1", port()) as f:  # type: ignore[attr-defined]
            assert f.cohorts == 2
            assert _closed_loop(f.url, bodies[:120], 24) == [201] * 120
            assert 1 < f.stats["largest_group"] <= 12 and f.stats["groups"] >= 10
        with IngestFront(app.api, "127.0.0.1", port(), cohorts=3) as f:  # type: ignore[attr-defined]
            assert _closed_loop(f.url, bodies[120:], 24) == [201] * 120
            assert f.stats["largest_group"] <= 8 and f.stats["groups"] >= 15
        assert led.size == 3 + 240
        for bad in (0, 65):
            with pytest.raises(ValueError, match="cohorts"):
                IngestFront(app.api, "127.0.0.1", port(), cohorts=bad)  # type: ignore[attr-defined]


@contextlib.contextmanager
def _c_loop(backlog: int):
    """The C loop alone (``_front``, no Python front) on a listening socket of its own; stopped after."""
    from ailedger.tlog import _front

    lsock = socket.socket()
    lsock.bind(("127.0.0.1", port()))
    lsock.listen(backlog)
    _front.start(lsock.fileno())
    try:
        yield lsock
    finally:
        _front.stop()
        lsock.close()


def test_connections_counts_the_open_connections():
    """``_front.connections()``: the open connections that may still send (what a cohort's size is cut from)."""
    from ailedger.tlog import _front

    with _c_loop(16) as lsock:
        conns = []
        try:
            assert _front.connections() == 0
            conns = [socket.create_connection(lsock.getsockname(), timeout=5) for _ in range(4)]
            deadline = time.monotonic() + 5
            while _front.connections() < 4 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert _front.connections() == 4
            conns.pop().close()
            while _front.connections() > 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert _front.connections() == 3
        finally:
            for c in conns:
                c.close()


def test_take_ready_tells_when_every_connection_is_in():
    """The C loop's take_ready: what is queued, and whether every open connection has its request taken and
    unanswered. An answer counts as given once posted (reply), before the loop has written it: its writer
    will send again, so a group being gathered must not close on it."""
    from ailedger.tlog import _front

    with _c_loop(16) as lsock:
        conns = []
        try:
            body = b"{}"
            req = b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n" + body
            conns = [socket.create_connection(lsock.getsockname(), timeout=5) for _ in range(3)]
            deadline = time.monotonic() + 5
            while _front.stats()["connections"] < 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            got: list = []
            conns[0].sendall(req)
            conns[1].sendall(req)
            while len(got) < 2 and time.monotonic() < deadline:
                piece, all_in = _front.take_ready(0.5)
                got += piece
            assert [b for _, b in got] == [body, body] and all_in is False  # the third connection has sent nothing
            conns[2].sendall(req)
            piece, all_in = _front.take_ready(2.0)
            assert len(piece) == 1 and all_in is True
            got += piece
            _front.reply([(tok, 201, b'{"ok":1}') for tok, _ in got[:2]])
            assert _front.take_ready(0.0) == ([], False)  # two answered: their writers are on their way again
            for c in conns[:2]:
                assert c.recv(4096).startswith(b"HTTP/1.1 201 ")
            _front.reply([(got[2][0], 201, b'{"ok":1}')])
            assert conns[2].recv(4096).startswith(b"HTTP/1.1 201 ")
        finally:
            for c in conns:
                c.close()


def test_a_group_answered_in_one_reply_goes_to_its_own_connections():
    """One reply() of a whole group's answers while the writers come back at once (the loop wakes Python once per
    round of events, not per request queued): each answer goes to its own connection, in order, pipelined
    requests included, and every request reaches Python."""
    from ailedger.tlog import _front

    n, rounds = 40, 3
    with _c_loop(64) as lsock:
        errors: list[str] = []

        def req(i: int, k: int) -> bytes:
            body = b'{"c":%d,"k":%d}' % (i, k)
            return b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)

        def writer(i: int) -> None:
            try:
                with socket.create_connection(lsock.getsockname(), timeout=10) as s:
                    if i % 4 == 0:  # every request at once: the later ones wait in the loop's buffer
                        s.sendall(b"".join(req(i, k) for k in range(rounds)))
                    buf = b""
                    for k in range(rounds):
                        if i % 4:
                            s.sendall(req(i, k))
                        want = b'{"c":%d,"k":%d}' % (i, k)
                        while b"\r\n\r\n" not in buf or len(buf.partition(b"\r\n\r\n")[2]) < len(want):
                            chunk = s.recv(65536)
                            if not chunk:
                                errors.append(f"{i}: closed before answer {k}")
                                return
                            buf += chunk
                        head, _, rest = buf.partition(b"\r\n\r\n")
                        body, buf = rest[:len(want)], rest[len(want):]
                        if not head.startswith(b"HTTP/1.1 201 ") or body != want:
                            errors.append(f"{i}: answer {k} was {head[:20]!r} {body!r}")
            except OSError as exc:
                errors.append(f"{i}: {exc}")

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        got: list = []
        while len(got) < n and time.monotonic() < deadline:
            got += _front.take(0.5)
        assert len(got) == n
        assert _front.take_ready(0.0) == ([], True)  # every writer waits for its answer
        answered = n * rounds
        while answered and time.monotonic() < deadline:
            _front.reply([(tok, 201, body) for tok, body in got])  # the whole group in one call
            answered -= len(got)
            got = []
            while answered and len(got) < n and time.monotonic() < deadline:
                got += _front.take(0.5)
        for t in threads:
            t.join(10)
        assert errors == []
        st = _front.stats()
        assert st["answered"] == n * rounds and st["dropped_answers"] == 0


def test_a_request_queued_wakes_a_waiting_take_at_once():
    """The loop wakes Python once it has queued what a round of events brought: a waiting ``take``/``take_ready``
    returns the request then, not at its timeout."""
    from ailedger.tlog import _front

    with _c_loop(16) as lsock:
        req = b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        with socket.create_connection(lsock.getsockname(), timeout=5) as a, \
                socket.create_connection(lsock.getsockname(), timeout=5) as b:
            for wait in (lambda: _front.take(10.0), lambda: _front.take_ready(10.0)[0]):
                threading.Timer(0.2, a.sendall, (req,)).start()
                t0 = time.monotonic()
                got = wait()
                took = time.monotonic() - t0
                assert len(got) == 1 and got[0][1] == b"{}"
                assert took < 3.0, f"woken after {took:.2f} s"
                _front.reply([(got[0][0], 201, b"{}")])
                assert a.recv(4096).startswith(b"HTTP/1.1 201 ")
            a.close()  # then the other connection's: a take with a window returns once every connection is in
            threading.Timer(0.2, b.sendall, (req,)).start()
            t0 = time.monotonic()
            assert [body for _, body in _front.take(10.0, 10.0)] == [b"{}"]
            assert time.monotonic() - t0 < 3.0
