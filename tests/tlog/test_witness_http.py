"""The witness's HTTP front: add-checkpoint is authenticated by the log's signature on the checkpoint
(C2SP tlog-witness), nothing else changes state, and slow or broken clients cannot hold it."""

from __future__ import annotations

import base64
import socket
import time
import urllib.error
import urllib.request

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.server.guard import Deadlines
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.witness import Witness, format_add_checkpoint_body
from ailedger.tlog.witness_http import make_server

ORIGIN = "test.example/witness-http"


@pytest.fixture
def setup(tmp_path):
    led = Ledger.init(tmp_path / "ledger", origin=ORIGIN)
    led.log.append_data([b"a", b"b", b"c"])
    w = Witness.init(tmp_path / "w", name="witness.test/w")
    w.add_log(led.vkey)
    srv = make_server(w, deadlines=Deadlines(head=0.5, body=0.5, idle=1.0))
    srv.start_background()
    yield led, w, srv
    srv.shutdown()
    srv.server_close()
    w.close()
    led.close()


def post(srv, path, body):
    req = urllib.request.Request(srv.url + path, data=body, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def state(w):
    """What the witness holds: its latest cosigned checkpoint of every log, and its evidence."""
    return [w.head(o) for o in (ORIGIN, "test.example/other")], w.evidence()


def test_only_a_checkpoint_the_log_signed_is_taken(setup):
    led, w, srv = setup
    note = led.checkpoint()
    text, sigs = note.split(b"\n\n", 1)
    before = state(w)
    line = sigs.decode().strip()
    name, b64 = line[2:].rsplit(" ", 1)
    raw = base64.b64decode(b64)
    other = Ed25519PrivateKey.generate()
    forged_sig = raw[:4] + other.sign(text + b"\n")  # the log's key id, another key's signature
    flipped = raw[:4] + bytes([raw[4] ^ 1]) + raw[5:]
    cases = {
        "no signature line (not a signed note)": (text + b"\n\n", 400),
        "signed by another key under the log's name": (
            text + b"\n\n" + f"\u2014 {name} {base64.b64encode(forged_sig).decode()}\n".encode(), 403),
        "the log's signature with one bit flipped": (
            text + b"\n\n" + f"\u2014 {name} {base64.b64encode(flipped).decode()}\n".encode(), 403),
        "a checkpoint of a log it does not witness": (
            note.replace(ORIGIN.encode(), b"test.example/other"), 404),
    }
    for what, (body, want) in cases.items():
        status, answer = post(srv, "/add-checkpoint", format_add_checkpoint_body(0, [], body))
        assert status == want, (what, status, answer)
        assert state(w) == before, what
    status, answer = post(srv, "/add-checkpoint", format_add_checkpoint_body(0, [], note))
    assert status == 200 and answer.startswith("\u2014 witness.test/w ".encode())
    # no other request changes anything: unknown paths and methods are 404/501, nothing stored
    after = state(w)
    for path in ("/add-log", "/config", "/vkey", "/evidence"):
        assert post(srv, path, b"x")[0] in (404, 405, 501)
    assert state(w) == after


def test_stalled_bodies_do_not_block_checkpoints_and_time_out(setup, capfd):
    led, _w, srv = setup
    host, port = srv.server_address[:2]
    socks = []
    for _ in range(100):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 1000\r\n\r\no")
        socks.append(s)
    try:
        t0 = time.monotonic()
        status, _ = post(srv, "/add-checkpoint", format_add_checkpoint_body(0, [], led.checkpoint()))
        assert status == 200 and time.monotonic() - t0 < 1.0
        answers = [s.recv(4096) for s in socks]
        assert all(a.startswith(b"HTTP/1.1 408") for a in answers), answers[:2]
    finally:
        for s in socks:
            s.close()
    # a trickled head is cut off too, and a client that leaves mid-body is no server error
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHo")
        assert s.recv(4096).startswith(b"HTTP/1.1 408")
    for _ in range(3):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: 500\r\n\r\nold 0\n")
        s.close()
    time.sleep(0.3)
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.parametrize("cl", ["-1", "1_0", "\u0663", "+5", "99999999999999999999"])
def test_malformed_content_length_is_400(setup, cl):
    _led, _w, srv = setup
    host, port = srv.server_address[:2]
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(f"POST /add-checkpoint HTTP/1.1\r\nHost: w\r\nContent-Length: {cl}\r\n\r\nold 0\n".encode())
        assert s.recv(4096)[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 413")
