"""Deadlines for the request head and body in ailedger's Python HTTP servers (docs/api.md "Deadlines").

A client that opens a connection and then sends its request slowly (or not at all) must not hold
the server's resources for longer than a deadline:

- the **head** (request line and headers) must arrive whole within ``head`` seconds of its first
  byte (default 10 s); an idle keep-alive connection is closed after ``idle`` seconds;
- the **body** must arrive within ``body`` seconds of the end of the head, plus one second per
  ``min_rate`` bytes received (default 10 s + 1 s per 64 KiB, the rule of Apache's mod_reqtimeout):
  a body trickled slower than ``min_rate`` bytes/s times out, a large body sent at any usable speed
  never does.

A request that misses a deadline is answered ``408`` (when no answer has started yet) and its
connection closed. :class:`Deadlines` is shared by every server; :class:`GuardedHandler` applies it
to the standard library's ``http.server`` (storage node, witness). The HTTP API
(:mod:`ailedger.http.server`) and the gateway apply the same numbers on their own event loops.
"""

from __future__ import annotations

import io
import json
import socket
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ailedger.errors import BadInputError

__all__ = ["Deadlines", "GuardedHandler", "GuardedServer", "content_length"]


@dataclass(frozen=True)
class Deadlines:
    head: float = 10.0  # seconds for a request head, from its first byte
    body: float = 10.0  # seconds for a body after its head, plus 1 s per min_rate bytes received
    min_rate: int = 65536  # bytes/s a body must keep up on average
    idle: float = 30.0  # seconds an idle keep-alive connection stays open
    write: float = 60.0  # seconds a response write may block

    def __post_init__(self) -> None:
        for name in ("head", "body", "idle", "write"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0 < v <= 86400):
                raise BadInputError(f"{name} timeout must be in (0, 86400] seconds", field=name, found=v)
        if not (isinstance(self.min_rate, int) and self.min_rate >= 1):
            raise BadInputError("min_rate must be a positive number of bytes per second", field="min_rate")

    def body_deadline(self, started: float, received: int) -> float:
        """The monotonic time by which a body started at ``started`` must be in, given ``received`` bytes."""
        return started + self.body + received / self.min_rate

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def content_length(value: str | None, limit: int | None = None) -> int | None:
    """A strict Content-Length: ASCII digits only (no sign, space, underscore or other digits),
    at most 18 of them; None when absent. Over ``limit`` is still returned (the caller answers 413)."""
    if value is None:
        return None
    v = value.strip(" \t")
    if not (v.isascii() and v.isdigit()) or len(v) > 18:
        raise BadInputError(f"Content-Length must be a decimal byte count, got {value[:40]!r}",
                            field="content-length")
    return int(v)


class _DeadlineIO(io.RawIOBase):
    """The socket as a raw stream whose every read is bounded by the current phase's deadline."""

    def __init__(self, sock: socket.socket, deadlines: Deadlines) -> None:
        self.sock = sock
        self.d = deadlines
        self.phase = "idle"
        self.deadline = time.monotonic() + deadlines.idle
        self.body_started = 0.0
        self.body_read = 0
        self.expired: str | None = None

    def readable(self) -> bool:
        return True

    def start_idle(self) -> None:
        self.phase, self.deadline, self.expired = "idle", time.monotonic() + self.d.idle, None

    def start_body(self) -> None:
        self.phase, self.body_started, self.body_read = "body", time.monotonic(), 0
        self.deadline = self.d.body_deadline(self.body_started, 0)

    def readinto(self, b: Any) -> int:
        now = time.monotonic()
        if self.phase == "body":
            self.deadline = self.d.body_deadline(self.body_started, self.body_read)
        left = self.deadline - now
        if left <= 0:
            self.expired = self.phase
            raise TimeoutError(f"request {self.phase} deadline passed")
        self.sock.settimeout(left)
        try:
            n = self.sock.recv_into(b)
        except TimeoutError:
            self.expired = self.phase
            raise
        finally:
            try:
                self.sock.settimeout(self.d.write)  # writes get their own bound, not what was left
            except OSError:
                pass
        if self.phase == "idle" and n:
            self.phase, self.deadline = "head", time.monotonic() + self.d.head
        elif self.phase == "body":
            self.body_read += n
        return n


_408 = json.dumps({"code": "request_timeout", "message": "the request did not arrive in time"}).encode()


class GuardedHandler(BaseHTTPRequestHandler):
    """``BaseHTTPRequestHandler`` with deadlines on the head and body (set ``deadlines`` on the class).

    A timed-out head or body is answered 408 ``request_timeout`` and the connection closed; a client
    that goes away mid-request is dropped quietly (no traceback: it is not a server error)."""

    deadlines = Deadlines()
    _io: _DeadlineIO
    _answered = False

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.deadlines.write)
        self._io = _DeadlineIO(self.connection, self.deadlines)
        self.rfile = io.BufferedReader(self._io, 65536)

    def parse_request(self) -> bool:
        ok = super().parse_request()
        if ok:
            self._io.start_body()
        return ok

    def send_response_only(self, code: int, message: str | None = None) -> None:
        self._answered = True
        super().send_response_only(code, message)

    def _timeout_answer(self) -> None:
        if self._answered:
            return
        try:
            self.wfile.write(b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: " + str(len(_408)).encode() + b"\r\n\r\n" + _408)
            self.wfile.flush()
        except OSError:
            pass

    def handle_one_request(self) -> None:
        self._answered = False
        self._io.start_idle()
        try:
            super().handle_one_request()
        except TimeoutError:
            self.close_connection = True
            if self._io.expired in ("head", "body"):
                self._timeout_answer()
            return
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True
            return
        if self._io.expired in ("head", "body"):  # the stdlib catches read timeouts itself and closes
            self.close_connection = True
            self._timeout_answer()


class GuardedServer(ThreadingHTTPServer):
    """A thread per connection, with a listen backlog that takes a burst of connections (the
    socketserver default of 5 makes the kernel drop SYNs, so a burst of slow clients would delay
    everyone by TCP retransmissions)."""

    daemon_threads = True
    request_queue_size = 1024
