"""The one HTTP stack (ailedger.server.asgi): the API, the witness and the storage node answer what
they refuse in one JSON error shape, log one access line per request, answer a half-closed request,
and refuse a body declared too large before reading it. Real servers on 127.0.0.1 (uvicorn, in process)."""

from __future__ import annotations

import json
import logging
import socket
import time

import pytest

from ailedger.blobs.node import StorageNode
from ailedger.http.app import ServeConfig, create_app
from ailedger.server.asgi import Server
from ailedger.server.guard import Deadlines
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.witness import Witness
from ailedger.tlog.witness_http import make_server


@pytest.fixture
def servers(tmp_path):
    led = Ledger.init(tmp_path / "ledger", origin="test.example/asgi")
    cfg = ServeConfig(max_body=4096, head_timeout=1.0, body_timeout=1.0)
    api = Server(create_app(led, cfg), deadlines=cfg.deadlines(), name="api")
    api.start_background()
    w = Witness.init(tmp_path / "w", name="witness.test/asgi")
    wit = make_server(w, deadlines=Deadlines(head=1.0, body=1.0))
    wit.start_background()
    node = StorageNode(tmp_path / "node", deadlines=Deadlines(head=1.0, body=1.0), allow=()).start()
    yield {"api": api, "witness": wit, "node": node.httpd}
    node.stop()
    for s in (api, wit):
        s.shutdown()
        s.server_close()
    w.close()
    led.close()


def raw(srv: Server, data: bytes, half_close: bool = False) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes, read the whole answer (the server closes or we stop at Content-Length)."""
    host, port = srv.server_address[:2]
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(data)
        if half_close:
            s.shutdown(socket.SHUT_WR)
        out = b""
        while b"\r\n\r\n" not in out:
            b = s.recv(65536)
            if not b:
                break
            out += b
        head, _, body = out.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
        n = int(headers.get("content-length", "0"))
        while len(body) < n:
            b = s.recv(65536)
            if not b:
                break
            body += b
    return status, headers, body


def _shape(body: bytes) -> dict:
    d = json.loads(body)
    assert isinstance(d.get("code"), str) and d["code"] and isinstance(d.get("message"), str) and d["message"], d
    return d


def test_unknown_paths_are_404_in_one_error_shape(servers):
    for name, srv in servers.items():
        status, headers, body = raw(srv, b"GET /no/such/thing HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 404, name
        assert headers["content-type"].startswith("application/json"), name
        assert _shape(body)["code"] == "not_found", name


def test_a_body_declared_too_large_is_413_before_it_is_read(servers):
    # the witness takes 64 KiB, this API 4 KiB; no byte of the body is sent: the answer comes anyway
    for name, path, size in (("witness", "/add-checkpoint", 65537), ("api", "/v1/entries", 4097)):
        status, headers, body = raw(servers[name], f"POST {path} HTTP/1.1\r\nHost: x\r\n"
                                                   f"Content-Length: {size}\r\n\r\n".encode())
        assert status == 413, name
        assert headers.get("connection") == "close", name
        assert _shape(body)["code"] == "too_large", name


def test_a_stalled_body_is_408_in_one_error_shape(servers):
    for name, path in (("witness", "/add-checkpoint"), ("api", "/v1/entries"), ("node", "/v1/shards/" + "ab" * 32)):
        method = "PUT" if name == "node" else "POST"
        if name == "node":  # the node reads a body only from an admitted writer: an unknown one is refused first
            status, _, body = raw(servers[name], f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n"
                                                 "\r\nx".encode())
            assert status == 401 and _shape(body)["code"] == "unauthenticated"
            continue
        status, headers, body = raw(servers[name], f"{method} {path} HTTP/1.1\r\nHost: x\r\n"
                                                   "Content-Length: 100\r\n\r\nx".encode())
        assert status == 408 and headers.get("connection") == "close", name
        assert _shape(body)["code"] == "request_timeout", name


def test_a_half_closed_request_is_still_answered(servers):
    # the body ends early (the client shut its side): a clear 400 naming the count, not a silent drop
    status, _, body = raw(servers["api"], b"POST /v1/entries HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n"
                                                b"\r\n{\"a\":", half_close=True)
    assert status == 400 and "5 of 50 bytes" in _shape(body)["message"]
    # a whole request followed by a half-close is answered as usual
    status, _, body = raw(servers["node"], b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n", half_close=True)
    assert status == 200 and json.loads(body)["ok"] is True


def test_one_access_log_line_per_request(servers, caplog):
    with caplog.at_level(logging.INFO, logger="ailedger.access"):
        for srv in servers.values():
            raw(srv, b"GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
        raw(servers["node"], b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n")
        # a server logs its line once the answer is sent: the client may read the answer first
        deadline = time.monotonic() + 5
        while sum(r.name == "ailedger.access" for r in caplog.records) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    lines = [r.getMessage() for r in caplog.records if r.name == "ailedger.access"]
    assert len(lines) == 4, lines
    assert {ln.split()[0] for ln in lines} == {"api", "witness", "storage-node"}
    assert any('"GET /v1/health" 200' in ln for ln in lines)
    assert sum('"GET /nothing-here" 404' in ln for ln in lines) == 3
