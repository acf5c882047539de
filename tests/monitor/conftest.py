"""Fixtures of the monitor tests: ledgers, a static tile mirror served over real HTTP, a webhook receiver.

Every server listens on 127.0.0.1 in the monitor lane's port range (19600-19699)."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from ailedger.tlog.ledger import Ledger
from ailedger.tlog.mirror import export_tiles

PORTS = range(19600, 19700)


def lane_port() -> int:
    for p in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
            return p
    raise RuntimeError("no free port in 19600-19699")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a: Any) -> None:
        pass


class StaticMirror:
    """A plain static file server (any web server would do) over a tile tree exported by `tiles export`."""

    def __init__(self, site: Path) -> None:
        self.site = site
        site.mkdir(parents=True, exist_ok=True)
        self.port = lane_port()
        handler = functools.partial(_Quiet, directory=str(site))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.port}"

    def publish(self, led: Ledger) -> None:
        """Replace the site with a fresh export of ``led`` (as an operator re-exporting would)."""
        for p in self.site.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        export_tiles(led, self.site, incremental=False)

    def publish_dir(self, tree: Path) -> None:
        """Replace the site with a copy of an exported tree (an older one: a rollback)."""
        for p in self.site.iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        shutil.copytree(tree, self.site, dirs_exist_ok=True)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class Webhook:
    """Receives the monitor's POSTs; ``fail`` makes it answer 500."""

    def __init__(self) -> None:
        self.got: list[dict[str, Any]] = []
        self.fail = False
        hook = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if hook.fail:
                    self.send_response(500)
                else:
                    hook.got.append(json.loads(body))
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.port = lane_port()
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def notes(led: Ledger, who: Any, start: int, n: int, tag: str = "") -> None:
    led.append_entries([led.make_entry("note", {"i": i, "tag": tag}, who).leaf_bytes for i in range(start, start + n)],
                       parallel=False)


@pytest.fixture
def mirror(tmp_path):
    m = StaticMirror(tmp_path / "site")
    yield m
    m.stop()


@pytest.fixture
def webhook():
    w = Webhook()
    yield w
    w.stop()


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.init(tmp_path / "led", "example.org/monitored")
    who = led.identities.create("curator")
    yield led, who
    led.close()
