"""uvicorn's httptools protocol with deadlines on the request head (and a backstop on the body).

uvicorn bounds only the idle time between requests (``timeout_keep_alive``), and only once a first
request has been answered: a client that opens a connection and sends nothing, or trickles a
request head one byte at a time, holds it forever. This protocol adds (docs/api.md "Deadlines"):

- a new connection that sends nothing is closed after the keep-alive timeout;
- a request head must be complete within ``head_timeout`` of its first byte, else ``408`` and close;
- a request body must be complete within ``body_timeout`` plus one second per ``min_body_rate``
  bytes after its head. The app answers a late body ``408`` itself (``ailedger.http.app``); this
  protocol closes the connection two seconds after that deadline as a backstop, for bodies nobody
  reads (a POST to a path that answers without reading it).

The numbers come from the ServeConfig in ``$AILEDGER_SERVE_CONFIG`` (what ``ailedger serve`` runs
with), read once per process; ``uvicorn.run(..., http="ailedger.http.server:DeadlineProtocol")``.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ailedger.server.guard import Deadlines

__all__ = ["PROTOCOL", "DeadlineProtocol", "deadlines_from_env"]

PROTOCOL = "ailedger.http.server:DeadlineProtocol"
_BACKSTOP = 2.0
_408_BODY = b'{"code":"request_timeout","message":"the request head did not arrive in time"}'
_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(_408_BODY)).encode() + b"\r\n\r\n" + _408_BODY)


def deadlines_from_env() -> Deadlines:
    from ailedger.http.app import ENV_CONFIG, ServeConfig

    cfg = ServeConfig.from_dict(json.loads(os.environ.get(ENV_CONFIG) or "{}"))
    return cfg.deadlines()


class DeadlineProtocol(HttpToolsProtocol):
    deadlines: Deadlines | None = None  # per process, from the environment on first use

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        if DeadlineProtocol.deadlines is None:
            DeadlineProtocol.deadlines = deadlines_from_env()
        self._dl: Deadlines = DeadlineProtocol.deadlines
        self._timer: asyncio.TimerHandle | None = None
        self._body_started = 0.0
        self._body_read = 0

    # -- timers ----------------------------------------------------------------------------
    def _arm(self, delay: float, fn: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(max(0.0, delay), fn)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(_408)
        self.transport.close()

    def _body_expired(self) -> None:
        self._timer = None
        if self.transport.is_closing():
            return
        due = self._dl.body_deadline(self._body_started, self._body_read) + _BACKSTOP
        left = due - self.loop.time()
        if left > 0:  # the body kept coming: its deadline moved on
            self._timer = self.loop.call_later(left, self._body_expired)
            return
        self.transport.close()

    def _idle_expired(self) -> None:
        self._timer = None
        if not self.transport.is_closing():
            self.transport.close()

    # -- protocol events ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.timeout_keep_alive, self._idle_expired)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self._dl.head, self._head_expired)

    def on_headers_complete(self) -> None:
        self._body_started, self._body_read = self.loop.time(), 0
        self._arm(self._dl.body + _BACKSTOP, self._body_expired)
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        self._body_read += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
