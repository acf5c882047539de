"""`ailedger tiles serve`: the C tile mirror server, run as a real process and read by a client written
from the C2SP tlog-tiles text, by raw sockets for the protocol edges, and with bad input of every kind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.errors import AiledgerError
from ailedger.tlog import tileserver
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.mirror import export_tiles
from tests.http.helpers import append_notes, free_port, ledger_with_notes
from tests.http.tlog_client import get, read_back

needs_tiled = pytest.mark.skipif(not tileserver.available(),
                                 reason="ailedger.tlog._tiled is not built (needs Linux and a C compiler)")

CLI = [sys.executable, "-c", "from ailedger.cli.main import main; main()"]




class Served:
    def __init__(self, site: Path, *args: str) -> None:
        self.proc = subprocess.Popen([*CLI, "tiles", "serve", str(site), "--listen", "127.0.0.1:0", "--json", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("tile server did not start: " + self.proc.stderr.read().decode())
        info = json.loads(line)
        assert info["event"] == "ready"
        self.url = info["url"]
        self.port = int(self.url.rsplit(":", 1)[1])

    def stop(self) -> dict:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=20)
        assert self.proc.returncode == 0, err.decode()
        return json.loads(out.decode().strip().splitlines()[-1])


@pytest.fixture
def mirror(tmp_path):
    led, a = ledger_with_notes(tmp_path / "l", "example.org/tiled", 700)
    site = tmp_path / "site"
    export_tiles(led, site)
    yield led, a, site
    led.close()


def _raw(port: int, data: bytes, *, until_close: bool = False, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        if not until_close:
            return _read_response(s)[0]
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                return b"".join(chunks)
            chunks.append(b)


def _read_response(s: socket.socket, buf: bytes = b"", head_only: bool = False) -> tuple[bytes, bytes]:
    """One response off a socket (by Content-Length); returns (response, what was read beyond it)."""
    while b"\r\n\r\n" not in buf:
        b = s.recv(65536)
        if not b:
            raise AssertionError(f"connection closed mid-response: {buf!r}")
        buf += b
    head, rest = buf.split(b"\r\n\r\n", 1)
    n = 0
    for line in head.split(b"\r\n")[1:]:
        k, v = line.split(b":", 1)
        if k.strip().lower() == b"content-length":
            n = int(v)
    if head_only:
        n = 0
    while len(rest) < n:
        b = s.recv(65536)
        if not b:
            raise AssertionError("connection closed mid-body")
        rest += b
    return head + b"\r\n\r\n" + rest[:n], rest[n:]


def _status(resp: bytes) -> int:
    return int(resp.split(b" ", 2)[1])


def _headers(resp: bytes) -> dict[str, str]:
    head = resp.split(b"\r\n\r\n", 1)[0].decode()
    return {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in head.split("\r\n")[1:])}


def _body(resp: bytes) -> bytes:
    return resp.split(b"\r\n\r\n", 1)[1]


@needs_tiled
def test_serves_the_mirror_per_spec_and_follows_the_log(mirror):
    led, a, site = mirror
    srv = Served(site, "--refresh", "3600")  # a checkpoint update can only arrive through inotify
    try:
        size, _, entries = read_back(srv.url)
        assert size == led.size and entries[5] == led.entry_bytes(5)
        st, hd, body = get(srv.url + "/tile/0/000")
        assert st == 200 and hd["Content-Type"] == "application/octet-stream" and "Date" in hd
        assert hd["Access-Control-Allow-Origin"] == "*" and int(hd["Content-Length"]) == len(body) == 8192
        st, hd, body = get(srv.url + "/checkpoint")
        assert hd["Cache-Control"] == "no-cache" and hd["Content-Type"] == "text/plain; charset=utf-8"
        st, hd2, nobody = get(srv.url + "/checkpoint", method="HEAD")
        assert st == 200 and nobody == b"" and hd2["Content-Length"] == str(len(body))
        # the log grows; the exporter renames a new checkpoint into place; the server follows at once
        append_notes(led, a, 700, 300)
        export_tiles(led, site)
        deadline = time.monotonic() + 5
        while int(get(srv.url + "/checkpoint")[2].split(b"\n")[1]) != led.size:
            assert time.monotonic() < deadline, "the new checkpoint was not served"
            time.sleep(0.02)
        size, _, entries = read_back(srv.url)
        assert size == led.size == 1000 + (led.size - 1000) and entries[999] == led.entry_bytes(999)
    finally:
        stats = srv.stop()
    assert stats["event"] == "stopped" and stats["inotify"] is True
    assert stats["ok"] >= 20 and stats["server_errors"] == 0 and stats["cached_tiles"] >= 8


@needs_tiled
def test_only_tile_paths_are_served(mirror):
    _, _, site = mirror
    (site / "secret.txt").write_text("not for readers")
    (site / "tile" / "0" / "000.tmp").write_bytes(b"x" * 8192)
    srv = Served(site)
    try:
        for bad in ("/", "/secret.txt", "/tile/../secret.txt", "/tile/0/../../secret.txt", "/%2e%2e/secret.txt",
                    "/tile/0/000.tmp", "/tile/00/000", "/tile/0/00", "/tile/0/0000", "/tile/0/000.p/0",
                    "/tile/0/000.p/256", "/tile/0/000.p/012", "/tile/0/x00/000", "/tile/0/000/", "/tile/entries/",
                    "/tile/0/999", "/checkpoint/", "/CHECKPOINT", "/etc/passwd"):
            st, hd, body = get(srv.url + bad)
            assert st == 404, bad
            assert hd["Content-Type"] == "application/json" and hd["Cache-Control"] == "no-store"
            assert json.loads(body)["code"] == "not_found" and b"secret" not in body
        assert get(srv.url + "/checkpoint?cache-buster=1")[0] == 200  # the query is ignored
        # absolute-form targets name their path
        r = _raw(srv.port, b"GET http://mirror.example/tile/0/000 HTTP/1.1\r\nHost: mirror.example\r\n\r\n")
        assert _status(r) == 200 and len(_body(r)) == 8192
    finally:
        srv.stop()


@needs_tiled
@pytest.mark.parametrize("request_bytes, status, closes", [
    (b"GARBAGE\r\n\r\n", 400, True),
    (b"GET /checkpoint\r\n\r\n", 400, True),
    (b" /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    (b"GET  /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n", 400, True),
    (b"GET /checkpoint HTTP/1.1\r\n\r\n", 400, True),  # HTTP/1.1 without Host
    (b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400, True),
    (b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400, True),
    (b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n folded: header\r\n\r\n", 400, True),
    (b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", 400, True),
    (b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, True),
    (b"GET /checkpoint HTTP/2.0\r\nHost: x\r\n\r\n", 505, True),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, True),
    (b"POST /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n", 405, False),
    (b"DELETE /tile/0/000 HTTP/1.1\r\nHost: x\r\n\r\n", 405, False),
    (b"GET /checkpoint HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431, True),
])
def test_bad_requests_get_a_clear_error_and_the_server_keeps_serving(mirror, request_bytes, status, closes):
    _, _, site = mirror
    srv = Served(site)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            try:
                s.sendall(request_bytes)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may answer and close before a huge head is fully sent
            resp, _ = _read_response(s)
            assert _status(resp) == status, resp[:200]
            err = json.loads(_body(resp))
            assert err["code"] and err["message"], err
            if status == 405:
                assert _headers(resp)["allow"] == "GET, HEAD"
            if closes:
                assert _headers(resp)["connection"] == "close"
                s.settimeout(5)
                try:
                    assert s.recv(100) == b""
                except ConnectionResetError:
                    pass
            else:  # the same connection still works
                s.sendall(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n")
                assert _status(_read_response(s)[0]) == 200
        assert get(srv.url + "/checkpoint")[0] == 200
    finally:
        stats = srv.stop()
    assert stats["requests"] >= 2


@needs_tiled
def test_keep_alive_pipelining_head_and_http10(mirror):
    _, _, site = mirror
    srv = Served(site)
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            # three pipelined requests in one write, answered in order on one connection
            s.sendall(b"GET /tile/0/000 HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"HEAD /tile/0/001 HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"\r\nGET /checkpoint HTTP/1.1\r\nhost: x\r\nconnection: Keep-Alive\r\n\r\n")
            r1, rest = _read_response(s)
            r2, rest = _read_response(s, rest, head_only=True)
            r3, rest = _read_response(s, rest)
            assert [_status(r) for r in (r1, r2, r3)] == [200, 200, 200] and rest == b""
            assert len(_body(r1)) == 8192 and _body(r2) == b"" and _headers(r2)["content-length"] == "8192"
            assert _body(r3).startswith(b"example.org/tiled\n")
            # a request split over several writes
            for part in (b"GET /tile/0/0", b"00 HTTP/1.1\r\nHo", b"st: x\r\n", b"\r\n"):
                s.sendall(part)
                time.sleep(0.02)
            assert _status(_read_response(s)[0]) == 200
            # bare LF line ends are read too
            s.sendall(b"GET /checkpoint HTTP/1.1\nHost: x\n\n")
            assert _status(_read_response(s)[0]) == 200
        # HTTP/1.0: closes unless asked to keep alive
        r = _raw(srv.port, b"GET /checkpoint HTTP/1.0\r\n\r\n", until_close=True)
        assert _status(r) == 200 and _headers(r)["connection"] == "close"
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"GET /checkpoint HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r, _ = _read_response(s)
            assert _headers(r)["connection"] == "keep-alive"
            s.sendall(b"GET /tile/0/000 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            r, rest = _read_response(s)
            assert _status(r) == 200 and _headers(r)["connection"] == "close" and rest == b""
            assert s.recv(10) == b""
    finally:
        srv.stop()


@needs_tiled
def test_a_damaged_mirror_file_is_an_error_not_a_cached_answer(mirror):
    _, _, site = mirror
    good = (site / "tile/0/001").read_bytes()
    (site / "tile/0/001").write_bytes(good[:-1])  # a hash tile one byte short
    (site / "tile/0/x999").mkdir(parents=True)  # a directory where a tile could be
    srv = Served(site)
    try:
        st, _, body = get(srv.url + "/tile/0/001")
        assert st == 500 and json.loads(body)["code"] == "mirror_unreadable"
        assert get(srv.url + "/tile/0/x999/000")[0] == 404
        (site / "tile/0/001").write_bytes(good)  # repaired: read again, nothing bad was kept
        st, _, body = get(srv.url + "/tile/0/001")
        assert st == 200 and body == good
    finally:
        stats = srv.stop()
    assert stats["server_errors"] == 1


@needs_tiled
def test_connection_limit_answers_503_and_idle_connections_are_closed(mirror):
    _, _, site = mirror
    srv = Served(site, "--max-conns", "2", "--idle-timeout", "1")
    try:
        held = [socket.create_connection(("127.0.0.1", srv.port), timeout=5) for _ in range(2)]
        time.sleep(0.2)
        r = _raw(srv.port, b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n", until_close=True)
        assert _status(r) == 503 and _headers(r)["retry-after"] == "1"
        assert json.loads(_body(r))["code"] == "overloaded"
        # the held connections say nothing: after the idle timeout the server closes them
        for s in held:
            s.settimeout(5)
            t = time.monotonic()
            assert s.recv(10) == b""
            assert time.monotonic() - t < 4
            s.close()
        assert get(srv.url + "/checkpoint")[0] == 200
    finally:
        stats = srv.stop()
    assert stats["refused_503"] == 1 and stats["closed_idle"] == 2


@needs_tiled
def test_a_trickling_request_head_gets_408(mirror):
    """A client sending its head a byte at a time (slowloris) keeps the idle timer alive, but not the
    head timer: the head must arrive within min(idle timeout, 10 s)."""
    _, _, site = mirror
    srv = Served(site, "--idle-timeout", "1")
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
            s.sendall(b"GET /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n")  # a full request first: answered
            r, _rest = _read_response(s)
            assert _status(r) == 200
            t = time.monotonic()
            got = b""
            for b in b"GET /checkpoint HTTP/1.1\r\nX-Slow: " + b"a" * 40:
                try:
                    s.sendall(bytes([b]))
                except OSError:
                    break
                time.sleep(0.1)
                s.setblocking(False)
                try:
                    got += s.recv(4096)
                except BlockingIOError:
                    pass
                except OSError:
                    break
                finally:
                    s.setblocking(True)
                if got:
                    break
            s.settimeout(5)
            while b"\r\n\r\n" not in got:
                more = s.recv(4096)
                if not more:
                    break
                got += more
            assert _status(got) == 408 and json.loads(_body(got))["code"] == "request_timeout"
            assert 0.8 < time.monotonic() - t < 4
        assert get(srv.url + "/checkpoint")[0] == 200
    finally:
        stats = srv.stop()
    assert stats["request_timeouts"] == 1


@needs_tiled
def test_a_small_cache_is_reset_and_answers_stay_right(mirror, tmp_path):
    led, _, site = mirror
    script = ("import json, signal, socket, sys\n"
              "from ailedger.tlog import _tiled\n"
              "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(64)\n"
              "print(s.getsockname()[1], flush=True)\n"
              "def stop(*a): raise SystemExit\n"
              "signal.signal(signal.SIGTERM, stop)\n"
              "try:\n    _tiled.serve(s.fileno(), sys.argv[1], cache_bytes=20000)\n"
              "finally:\n    print(json.dumps(_tiled.stats()), flush=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(site)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        port = int(proc.stdout.readline())
        for _ in range(2):
            size, _, entries = read_back(f"http://127.0.0.1:{port}")
            assert size == led.size and entries[-1] == led.entry_bytes(led.size - 1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    stats = json.loads(out.decode().strip().splitlines()[-1])
    assert stats["cache_resets"] >= 2 and stats["server_errors"] == 0, (stats, err)


@needs_tiled
def test_workers_share_the_socket_and_stop_together(mirror):
    led, _, site = mirror
    srv = Served(site, "--workers", "2")
    try:
        for _ in range(40):
            st, _, body = get(srv.url + "/checkpoint")
            assert st == 200 and int(body.split(b"\n")[1]) == led.size
        children = subprocess.run(["pgrep", "-P", str(srv.proc.pid)], check=False, capture_output=True,
                                  text=True).stdout.split()
        assert len(children) == 2
    finally:
        stats = srv.stop()
    assert stats["workers"] == 2 and stats["ok"] == 40
    for pid in children:
        assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


@needs_tiled
def test_bad_cli_input_is_refused(tmp_path):
    run = CliRunner().invoke
    r = run(main, ["tiles", "serve", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "not a directory" in r.output
    for bad in ("localhost", "127.0.0.1:70000", "127.0.0.1:80; x", ":8080"):
        r = run(main, ["tiles", "serve", str(tmp_path), "--listen", bad])
        assert r.exit_code == 2 and "listen" in r.output, bad
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        r = run(main, ["tiles", "serve", str(tmp_path), "--listen", f"127.0.0.1:{taken.getsockname()[1]}"])
        assert r.exit_code == 2 and "cannot listen" in r.output
    for opt in ("--workers", "--refresh", "--cache-mb", "--idle-timeout", "--max-conns"):
        r = run(main, ["tiles", "serve", str(tmp_path), opt, "0"])
        assert r.exit_code == 2 and opt in r.output, opt


def test_without_the_c_module_the_error_names_the_way_out(tmp_path, monkeypatch):
    monkeypatch.setattr(tileserver, "_tiled", None)
    with pytest.raises(AiledgerError, match="nginx-conf"):
        tileserver.serve_mirror(tmp_path, "127.0.0.1:0")


@needs_tiled
def test_serve_with_a_tiles_port_keeps_a_mirror_beside_the_api(tmp_path):
    import httpx

    from tests.http.helpers import Key, Server

    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/tiles-port").close()
    tiles_port = free_port()
    srv = Server(d, "--tiles-port", str(tiles_port), "--tiles-every", "0.1")
    tiles = f"http://127.0.0.1:{tiles_port}"
    try:
        k = Key("writer")
        assert httpx.post(srv.url + "/v1/identities", json=k.registration()).status_code == 201
        r = httpx.post(srv.url + "/v1/entries/batch",
                       json={"entries": [k.entry("note", {"i": i}) for i in range(300)]})
        assert r.status_code == 201, r.text
        size = int(httpx.get(srv.url + "/checkpoint").text.split("\n")[1])
        assert size == 301
        deadline = time.monotonic() + 20
        while True:  # the mirror follows the server within a few export rounds
            st, _, body = get(tiles + "/checkpoint")
            if st == 200 and int(body.split(b"\n")[1]) == size:
                break
            assert time.monotonic() < deadline, (st, body)
            time.sleep(0.05)
        got_size, _root, entries = read_back(tiles)
        assert got_size == size and entries[300] == httpx.get(srv.url + "/v1/entries/300/raw").content
        assert get(tiles + "/v1/entries/0")[0] == 404  # the mirror is read-only tiles, nothing else
        kids = subprocess.run(["pgrep", "-P", str(srv.proc.pid)], check=False, capture_output=True,
                              text=True).stdout.split()
    finally:
        srv.stop()
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{p}") and "zombie" not in Path(f"/proc/{p}/status").read_text().lower()
              for p in kids):
        assert time.monotonic() < deadline, "mirror processes outlived the server"
        time.sleep(0.1)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", tiles_port), timeout=1).close()


@needs_tiled
def test_serve_refuses_an_unwritable_tiles_dir(tmp_path):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/tiles-port").close()
    (tmp_path / "afile").write_text("x")
    r = subprocess.run([*CLI, "serve", "--ledger", str(d), "--port", str(free_port()), "--tiles-port", "0",
                        "--tiles-dir", str(tmp_path / "afile" / "mirror")], check=False, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and "the tile mirror could not be written: cannot write" in r.stderr, r.stderr
    assert (tmp_path / "afile").read_text() == "x"


@needs_tiled
def test_serve_refuses_a_tiles_port_in_use(tmp_path):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/tiles-port").close()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        r = subprocess.run([*CLI, "serve", "--ledger", str(d), "--port", str(free_port()), "--tiles-port",
                            str(taken.getsockname()[1])], check=False, capture_output=True, text=True,
                           timeout=60)
    assert r.returncode == 2 and "cannot listen" in r.stderr + r.stdout



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the tile server is Linux-only (epoll, inotify)")
def test_the_tile_server_module_is_built_here():
    """CI builds ailedger.tlog._tiled (scripts/setup.sh installs a compiler); without this check every test
    above would skip silently on an install that lost it."""
    from ailedger.tlog import _tiled

    assert callable(_tiled.serve) and callable(_tiled.stats)
