"""bench/singles_client.c, the lean closed-loop client of bench/http_bench.py's single-entry writers: every
entry gets its own answer, in entry order, from the real ingest front (a bad entry fails alone, a re-sent one
answers duplicate); a connection the server closes (Connection: close, or a drop before the answer) is
reopened and the entry in flight is reported unanswered (status 0), never as acknowledged; and http_bench
falls back to wrk, then the Python client, with a note, when the C client cannot be built."""

from __future__ import annotations

import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ailedger.encoding.canonical import canonical_json

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))
import singles_client
from tests.http.helpers import Key


@pytest.fixture(scope="module")
def exe(tmp_path_factory) -> Path:
    path, why = singles_client.build(tmp_path_factory.mktemp("cc"))
    if path is None:
        pytest.skip(why)
    return path


class _Handler(socketserver.BaseRequestHandler):
    """A toy HTTP/1.1 server: answers {"index": n, ...} to a body {"n": n}; a body with "drop" gets the
    connection closed without an answer; every answer with n % 3 == 2 says Connection: close (and closes)."""

    def handle(self) -> None:
        buf = b""
        s = self.request
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    return
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            assert lines[0] == b"POST /v1/entries HTTP/1.1", lines[0]
            hs = {k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in lines[1:])}
            assert hs[b"content-type"] == b"application/json" and b"host" in hs
            n = int(hs[b"content-length"])
            while len(buf) < n:
                buf += s.recv(65536)
            body, buf = buf[:n], buf[n:]
            js = json.loads(body)
            if "drop" in js:
                return
            out = json.dumps({"index": js["n"], "leaf_hash": f"{js['n']:064x}", "duplicate": False}).encode()
            close = js["n"] % 3 == 2
            s.sendall(b"HTTP/1.1 201 Created\r\ncontent-type: application/json\r\nCONTENT-LENGTH: %d\r\n%s\r\n%s"
                      % (len(out), b"Connection: close\r\n" if close else b"", out))
            if close:
                return


@pytest.fixture
def toy():
    socketserver.ThreadingTCPServer.allow_reuse_address = True
    srv = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.mark.parametrize("threads", [1, 3])
def test_every_answer_in_entry_order_with_reconnects_and_drops(exe, toy, threads):
    bodies = [json.dumps({"n": i}).encode() for i in range(300)]
    bodies[7] = b'{"n": 7, "drop": 1}'
    bodies[150] = b'{"n": 150, "drop": 1}'
    r = singles_client.run(exe, toy, bodies, 8, threads=threads)
    assert r["threads"] == threads
    res = r["results"]
    assert len(res) == 300
    for i, (status, lat, body) in enumerate(res):
        if i in (7, 150):  # the server closed without answering: no answer, never counted as acknowledged
            assert (status, body) == (0, b"")
        else:
            assert status == 201 and json.loads(body)["index"] == i and lat > 0
    assert r["statuses"] == {201: 298, 0: 2}
    assert sorted(i for i, _, _ in r["acked"]) == [i for i in range(300) if i not in (7, 150)]
    assert r["errors"] == 2 and r["reconnects"] >= 90  # every third answer closed its connection (none near the end)
    assert r["answered"] == 298 and r["unanswered"] == 0 and not r["timed_out"]
    assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["max_ms"]
    assert r["cpu_s"] > 0 and r["cpu_us_per_request"] > 0


def test_a_server_that_never_answers_times_out_unacknowledged(exe):
    with socket.socket() as ls:
        ls.bind(("127.0.0.1", 0))
        ls.listen(64)  # accepts (the kernel's backlog) and never answers
        url = f"http://127.0.0.1:{ls.getsockname()[1]}"
        r = singles_client.run(exe, url, [b'{"n":%d}' % i for i in range(5)], 2, timeout_s=0.5)
    assert r["timed_out"] and r["statuses"] == {0: 5} and r["acked"] == []


def test_bad_arguments_are_refused_clearly(exe, tmp_path):
    p = subprocess.run([str(exe), "--port", "0", "--entries", "x", "--out", "y"], capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "usage" in p.stderr
    p = subprocess.run([str(exe), "--port", "1", "--host", "localhost", "--entries", "x", "--out", "y"],
                       capture_output=True, text=True, check=False)
    assert p.returncode == 2 and "IPv4" in p.stderr
    with pytest.raises(ValueError, match="newline"):
        singles_client.run(exe, "http://127.0.0.1:1", [b"{}\n{}"], 1)
    with pytest.raises(ValueError, match="truncated"):
        singles_client.parse_results(b"201 5 10\n{}\n")


def test_the_real_ingest_front(exe, tmp_path):
    from starlette.testclient import TestClient
    from tests.http.test_ingest_front import port

    from ailedger.http.app import ServeConfig, create_app
    from ailedger.http.ingest_front import IngestFront, available

    if not available():
        pytest.skip("ailedger.tlog._front is not built")
    from ailedger.tlog.ledger import Ledger

    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/client").close()
    with Ledger.open(d) as led:
        app = create_app(led, ServeConfig(open_registration=True))
        api = TestClient(app)
        keys = [Key(f"k{i}") for i in range(4)]
        for k in keys:
            assert api.post("/v1/identities", json=k.registration()).status_code == 201
        bodies = [canonical_json(keys[i % 4].entry("note", {"i": i})) for i in range(400)]
        bodies[100] = canonical_json(dict(keys[0].entry("note", {"i": -1}), sig="B" * 86 + "=="))
        bodies.append(bodies[5])  # sent again: the same index, duplicate
        with IngestFront(app.api, "127.0.0.1", port()) as f:  # type: ignore[attr-defined]
            r = singles_client.run(exe, f.url.rsplit("/v1/", 1)[0], bodies, 20, threads=2)
        res = r["results"]
        assert res[100][0] in (400, 403) and b"signature" in res[100][2]
        idx = {}
        for i, (status, _, body) in enumerate(res):
            if i == 100:
                continue
            js = json.loads(body)
            assert status in (200, 201) and led.entry_bytes(js["index"]) == bodies[i]
            idx.setdefault(js["index"], []).append(i)
        assert sorted(idx[json.loads(res[5][2])["index"]]) == [5, 400]
        assert sorted(s for i, (s, _, _) in enumerate(res) if i in (5, 400)) == [200, 201]
        assert len(idx) == 399 and r["statuses"] == {201: 399, 200: 1, res[100][0]: 1}
        assert r["errors"] == 0 and r["reconnects"] == 0


def test_http_bench_falls_back_with_a_note(toy):
    """No C compiler and no wrk: the Python client runs, and the note says so (in a subprocess: http_bench
    sets uvloop's event loop policy when imported)."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import http_bench, singles_client\n"
        "singles_client.build = lambda *a: (None, 'no C compiler (test)')\n"
        "http_bench.shutil.which = lambda name: None\n"
        "es = [json.dumps({'n': i}).encode() for i in range(1, 30, 3)]\n"  # n % 3 == 1: no Connection: close
        "r = http_bench.singles_run('c', sys.argv[2], es, [es[c::2] for c in range(2)])\n"
        "print(json.dumps({'client': r['client'], 'note': r.get('client_note'), 'n': len(r['acked'])}))\n")
    p = subprocess.run([sys.executable, "-c", code, str(BENCH), toy], capture_output=True, text=True, timeout=120, check=False,
                       env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout.strip().splitlines()[-1])
    assert out["client"] == "python" and out["n"] == 10
    assert "no C compiler (test)" in out["note"] and "wrk is not installed" in out["note"]
    assert "note: C client unavailable" in p.stdout
