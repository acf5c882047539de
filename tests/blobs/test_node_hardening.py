"""A storage node takes writes only with a credential, and slow or broken clients cannot hold it."""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import time
from urllib.parse import urlparse

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.blobs.client import NodeClient
from ailedger.server.auth import TokenFile, signed_headers
from ailedger.server.guard import Deadlines
from ailedger.tlog.identities import Identity

DATA = os.urandom(20_000)
NAME = hashlib.sha256(DATA).hexdigest()
EMPTY = hashlib.sha256(b"").digest()


def request(node, method, path, body=b"", headers=None):
    u = urlparse(node.url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        c.request(method, path, body=body, headers={"Content-Length": str(len(body)), **(headers or {})})
        r = c.getresponse()
        return r.status, r.read(), r.headers  # an HTTPMessage: header names are case-insensitive
    finally:
        c.close()


def shards(node):
    return sorted(p.name for p in node.dir.iterdir() if not p.name.startswith("."))


@pytest.fixture
def guarded(make_nodes, writer, tmp_path):
    tf = TokenFile(tmp_path / "node-tokens")
    token = tf.issue("operator")
    (node,) = make_nodes(1, token_file=tmp_path / "node-tokens")
    return node, token


def test_unsigned_and_wrongly_signed_writes_are_refused_with_nothing_stored(guarded, writer):
    node, token = guarded
    stranger = Identity("stranger", Ed25519PrivateKey.generate())
    path = f"/v1/shards/{NAME}"
    sha = bytes.fromhex(NAME)
    refused = {
        "unsigned": ({}, 401),
        "wrong token": ({"Authorization": "Bearer ailw_" + "x" * 43}, 401),
        "basic auth": ({"Authorization": "Basic d3JpdGVyOnB3"}, 401),
        "a key the node does not admit": (signed_headers("PUT", path, sha, stranger), 403),
        "signed for another shard": (signed_headers("PUT", f"/v1/shards/{'00' * 32}", sha, writer), 401),
        "signed for another method": (signed_headers("DELETE", path, sha, writer), 401),
        "signed digest is not the shard": (signed_headers("PUT", path, hashlib.sha256(b"x").digest(), writer), 401),
        "signed an hour ago": (signed_headers("PUT", path, sha, writer, now=time.time() - 3600), 401),
    }
    for what, (headers, want) in refused.items():
        status, body, hdrs = request(node, "PUT", path, DATA, headers)
        assert status == want, (what, status, body)
        assert b'"code"' in body and (want != 401 or "WWW-Authenticate" in hdrs), what
        assert shards(node) == [], what
    # the credentials that are good
    assert request(node, "PUT", path, DATA, {"Authorization": f"Bearer {token}"})[0] == 201
    assert request(node, "DELETE", path, b"", {"Authorization": f"Bearer {token}"})[0] == 200
    assert request(node, "PUT", path, DATA, signed_headers("PUT", path, sha, writer))[0] == 201
    assert shards(node) == [NAME, NAME + ".leaves"]
    # deletes: refused the same way, the shard stays
    for headers, want in (({}, 401), (signed_headers("DELETE", path, EMPTY, stranger), 403),
                          (signed_headers("DELETE", path, sha, writer), 401),  # a DELETE signs an empty body
                          (signed_headers("PUT", path, EMPTY, writer), 401)):
        assert request(node, "DELETE", path, b"", headers)[0] == want
        assert NAME in shards(node)
    assert request(node, "DELETE", path, b"", signed_headers("DELETE", path, EMPTY, writer))[0] == 200
    assert shards(node) == []
    # reads stay open: the blob client reads without credentials
    assert request(node, "GET", "/v1/health")[0] == 200


def test_a_client_without_credentials_gets_a_clear_error(make_nodes, tmp_path):
    (node,) = make_nodes(1)
    p = tmp_path / "s"
    p.write_bytes(DATA)
    with pytest.raises(Exception) as ei:
        NodeClient(node.url).put_shard(NAME, p)
    assert ei.value.details["status"] == 401 and "credential" in ei.value.message
    assert shards(node) == []


@pytest.mark.parametrize("cl", ["-1", "1_0", "\u0663", "+5", " ", "99999999999999999999"])
def test_malformed_content_length_is_refused(guarded, writer, cl):
    node, _ = guarded
    path = f"/v1/shards/{NAME}"
    u = urlparse(node.url)
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        head = f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\n"
        for k, v in signed_headers("PUT", path, bytes.fromhex(NAME), writer).items():
            head += f"{k}: {v}\r\n"
        s.sendall(head.encode() + b"\r\n" + DATA[:10])
        got = s.recv(4096)
    assert got.startswith((b"HTTP/1.1 400", b"HTTP/1.1 411")), got[:80]
    assert shards(node) == []


def _stall(node, writer, n):
    """n connections that send a signed PUT head for a 1000-byte body and then one byte."""
    u = urlparse(node.url)
    socks = []
    for i in range(n):
        data = os.urandom(1000)
        name = hashlib.sha256(data).hexdigest()
        path = f"/v1/shards/{name}"
        s = socket.create_connection((u.hostname, u.port), timeout=30)
        head = f"PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
        for k, v in signed_headers("PUT", path, bytes.fromhex(name), writer).items():
            head += f"{k}: {v}\r\n"
        s.sendall(head.encode() + b"\r\n" + data[:1])
        socks.append(s)
    return socks


def test_stalled_bodies_do_not_block_writes_and_time_out(make_nodes, writer, tmp_path, capfd):
    (node,) = make_nodes(1, deadlines=Deadlines(head=1.0, body=1.5, min_rate=65536))
    socks = _stall(node, writer, 100)
    try:
        t0 = time.monotonic()
        p = tmp_path / "s"
        p.write_bytes(DATA)
        NodeClient(node.url, signer=writer).put_shard(NAME, p)  # served while 100 bodies stall
        assert time.monotonic() - t0 < 1.5
        assert NAME in shards(node)
        answers = []
        for s in socks:
            answers.append(s.recv(4096))
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:3]
        assert time.monotonic() - t0 < 10
    finally:
        for s in socks:
            s.close()
    time.sleep(0.2)
    assert shards(node) == [NAME, NAME + ".leaves"]  # nothing of the stalled uploads was kept
    assert not any(p.name.startswith(".tmp") for p in node.dir.iterdir())
    assert "Traceback" not in capfd.readouterr().err


def test_a_trickled_head_gets_408_and_a_silent_connection_is_closed(make_nodes):
    (node,) = make_nodes(1, deadlines=Deadlines(head=0.5, idle=1.0))
    u = urlparse(node.url)
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        t0 = time.monotonic()
        s.sendall(b"GET /v1/health HTTP/1.1\r\nHo")
        got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 3
    with socket.create_connection((u.hostname, u.port), timeout=10) as s:
        t0 = time.monotonic()
        assert s.recv(4096) == b"" and time.monotonic() - t0 < 3


def test_a_client_that_disconnects_mid_body_is_not_a_server_error(make_nodes, writer, capfd):
    (node,) = make_nodes(1)
    for s in _stall(node, writer, 5):
        s.close()
    time.sleep(0.5)
    assert request(node, "GET", "/v1/health")[0] == 200
    assert not any(p.name.startswith(".tmp") for p in node.dir.iterdir())
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception" not in err, err[-2000:]
