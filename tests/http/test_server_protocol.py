"""ailedger.http.server.DeadlineProtocol in a real uvicorn (in-process, short deadlines): a silent
connection is closed, a trickled head gets 408, a body nobody reads cannot hold the connection."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import uvicorn

from ailedger.http.server import PROTOCOL, DeadlineProtocol
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import free_port


@pytest.fixture(scope="module")
def port(tmp_path_factory, monkeypatch_module):
    d = tmp_path_factory.mktemp("proto") / "ledger"
    Ledger.init(d, origin="test.example/proto").close()
    monkeypatch_module.setenv("AILEDGER_LEDGER", str(d))
    monkeypatch_module.setenv("AILEDGER_SERVE_CONFIG", json.dumps({"head_timeout": 0.5, "body_timeout": 0.5,
                                                                   "min_body_rate": 1000}))
    DeadlineProtocol.deadlines = None  # read the environment above
    p = free_port()
    srv = uvicorn.Server(uvicorn.Config("ailedger.http.app:app_from_env", factory=True, port=p, log_level="warning",
                                        timeout_keep_alive=1, http=PROTOCOL))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield p
    srv.should_exit = True
    t.join(10)
    DeadlineProtocol.deadlines = None


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def _until_closed(s: socket.socket) -> tuple[bytes, float]:
    t0, out = time.monotonic(), b""
    while True:
        b = s.recv(65536)
        if not b:
            return out, time.monotonic() - t0
        out += b


def test_a_connection_that_sends_nothing_is_closed(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        out, took = _until_closed(s)
        assert out == b"" and 0.8 < took < 3


def test_a_trickled_head_gets_408(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        out, took = _until_closed(s)
        assert out.startswith(b"HTTP/1.1 408") and b"request_timeout" in out and took < 2


def test_a_body_nobody_reads_cannot_hold_the_connection(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx")
        out, took = _until_closed(s)  # answered at once, then closed by the body backstop
        assert out.startswith(b"HTTP/1.1 200") and took < 5


def test_a_good_request_is_unaffected(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        for _ in range(3):  # keep-alive: several requests on one connection
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert s.recv(65536).startswith(b"HTTP/1.1 200")
