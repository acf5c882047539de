"""The one HTTP stack of ailedger's Python servers: uvicorn (httptools) + Starlette, with shared guards.

The HTTP API and explorer (:mod:`ailedger.http.app`), the inference gateway
(:mod:`ailedger.inference.gateway`), the witness (:mod:`ailedger.tlog.witness_http`) and the storage
node (:mod:`ailedger.blobs.node`) are all ASGI apps served by uvicorn through the pieces here:

- :class:`GuardedProtocol`: uvicorn's httptools protocol with deadlines on the request head (and a
  backstop on the body): a new connection that sends nothing is closed after ``idle`` seconds, a head
  must arrive whole within ``head`` seconds of its first byte (else ``408`` and close), and a body
  nobody reads cannot hold the connection beyond its deadline plus two seconds.
- :class:`Guard`: ASGI middleware for what every server bounds the same way: the body deadline
  (``Deadlines.body_deadline``: 408 and close), the body size (413), bodies being received at once
  (503), requests and writes in flight (503 + ``Retry-After``), one JSON error shape, a client that
  disconnects (dropped quietly, not a server error), and one access-log line per request on the
  ``ailedger.access`` logger (off unless that logger is enabled for INFO).
- :func:`error_body`: the one JSON error shape, ``{"code": ..., "message": ..., ...details}``.
- :class:`Server`: one app on a socket bound at construction (port 0: a free port), run by uvicorn
  in the calling thread (:meth:`Server.serve_forever`) or in a background thread
  (:meth:`Server.start_background`), stopped by :meth:`Server.shutdown`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson as _orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ailedger.errors import AiledgerError, BadInputError
from ailedger.server.guard import Deadlines, content_length

__all__ = ["ClientGone", "Guard", "GuardedProtocol", "MalformedJSONError", "OverloadedError", "RequestTimeoutError",
           "Server", "TooLargeError", "error_body", "json_bytes", "protocol_class", "read_body", "send_json"]

access_log = logging.getLogger("ailedger.access")
log = logging.getLogger("ailedger.server")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# -- errors: one shape ------------------------------------------------------------------------------
class TooLargeError(BadInputError):
    code = "too_large"


class MalformedJSONError(BadInputError):
    code = "malformed_json"


class OverloadedError(AiledgerError):
    code = "overloaded"


class RequestTimeoutError(BadInputError):
    """The request (head or body) did not arrive within its deadline."""

    code = "request_timeout"


class ClientGone(Exception):
    """The client disconnected before its request was whole: nobody to answer, nothing went wrong."""


def error_body(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The one JSON error shape of every ailedger server: ``{"code", "message", ...details}``."""
    return {"code": code, "message": message, **details}


def json_bytes(data: Any) -> bytes:
    """Compact JSON (orjson: a 1,000-entry batch answer in ~0.1 ms instead of ~1 ms; the standard
    encoder for what orjson refuses, such as integers beyond 64 bits or non-string keys)."""
    try:
        return _orjson.dumps(data, default=str)
    except (TypeError, ValueError):
        return json.dumps(data, separators=(",", ":"), default=str).encode()


async def send_json(send: Send, status: int, data: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
    body = json_bytes(data)
    hs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    hs.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers)  # case kept: some clients compare it
    await send({"type": "http.response.start", "status": status, "headers": hs})
    await send({"type": "http.response.body", "body": body})


def _status(exc: AiledgerError) -> int:
    if isinstance(exc, TooLargeError):
        return 413
    if isinstance(exc, RequestTimeoutError):
        return 408
    if isinstance(exc, OverloadedError):
        return 503
    if isinstance(exc, BadInputError):
        return 400
    return 500


Shape = Callable[[dict[str, Any]], dict[str, Any]]


async def _refuse(exc: AiledgerError, send: Send, close: bool, shape: Shape | None = None) -> int:
    status = _status(exc)
    headers = [("Retry-After", "1")] if status == 503 else []
    if close:
        headers.append(("Connection", "close"))
    body = exc.to_dict()
    await send_json(send, status, shape(body) if shape is not None else body, headers)
    return status


# -- bodies -----------------------------------------------------------------------------------------
async def read_body(receive: Receive, limit: int | None = None) -> bytes:
    """The whole body through ``receive`` (a :class:`Guard`'s receive enforces the deadline and the
    size limit; ``limit`` is a further bound for this request). Raises TooLargeError, ClientGone."""
    chunks: list[bytes] = []
    n = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientGone()
        chunk = msg.get("body", b"")
        if chunk:
            n += len(chunk)
            if limit is not None and n > limit:
                raise TooLargeError(f"request body exceeds the limit of {limit} bytes", limit=limit)
            chunks.append(chunk)
        if not msg.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive() that hands the app the body already read, then waits for the disconnect."""
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class Guard:
    """Pure ASGI middleware: limits, deadlines, errors and access logging shared by every server.

    ``buffer_methods``: requests whose body is read whole here, within its deadline, before the app
    sees them (and before they take a request slot): a stalled body holds a connection and the bytes
    it sent, never a slot. Other requests get a ``receive`` that enforces the same deadline and size
    as the app streams the body (an upload to disk): a late body raises RequestTimeoutError, an
    oversized one TooLargeError, a disconnect ClientGone; raised out of the app they are answered
    here (408/413, connection closed) or, once an answer started, end the connection.
    ``write_methods`` take one of ``max_writes`` slots. A declared Content-Length over ``max_body``
    is 413 before any byte of the body is read. ``shape``, when given, adds to the shared error
    body (the gateway adds the OpenAI-compatible ``error`` object)."""

    def __init__(self, app: ASGIApp, *, deadlines: Deadlines | None = None, max_body: int | None = None,
                 buffer_methods: Iterable[str] = (), write_methods: Iterable[str] = ("POST", "PUT", "DELETE"),
                 max_buffered: int | None = None, max_inflight: int | None = None, max_writes: int | None = None,
                 name: str = "ailedger", shape: Shape | None = None) -> None:
        self.app = app
        self.shape = shape
        self.deadlines = deadlines or Deadlines()
        self.max_body = max_body
        self.buffer_methods = frozenset(buffer_methods)
        self.write_methods = frozenset(write_methods)
        self.max_buffered = max_buffered
        self.max_inflight = max_inflight
        self.max_writes = max_writes
        self.name = name
        self.inflight = 0
        self.writes = 0
        self.buffered = 0

    # -- the body ---------------------------------------------------------------------------
    def _declared(self, scope: Scope) -> int | None:
        for k, v in scope.get("headers", ()):
            if k == b"content-length":
                return content_length(v.decode("latin-1"))
        return None

    def _guarded_receive(self, receive: Receive, counted: list[int]) -> Receive:
        """receive() with the body deadline and size limit (and the bytes-in-flight budget when
        ``counted`` is a one-element list it adds to)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        got = 0
        done = False
        dl = self.deadlines

        async def guarded() -> MutableMapping[str, Any]:
            nonlocal got, done
            if done:
                return await receive()
            while True:
                left = dl.body_deadline(started, got) - loop.time()
                if left <= 0:
                    raise RequestTimeoutError(f"the request body did not arrive within its deadline ({got} bytes "
                                              "received)", received=got)
                try:
                    msg = await asyncio.wait_for(receive(), left)
                except asyncio.TimeoutError:
                    continue  # the loop head answers with the precise deadline
                break
            if msg["type"] == "http.disconnect":
                done = True
                raise ClientGone()
            chunk = msg.get("body", b"")
            if chunk:
                got += len(chunk)
                if self.max_body is not None and got > self.max_body:
                    raise TooLargeError(f"request body exceeds the limit of {self.max_body} bytes",
                                        limit=self.max_body)
                if counted:
                    if self.max_buffered is not None and self.buffered + len(chunk) > self.max_buffered:
                        raise OverloadedError("the server is receiving too many request bodies; retry after a moment")
                    self.buffered += len(chunk)
                    counted[0] += len(chunk)
            if not msg.get("more_body", False):
                done = True
            return msg

        return guarded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [0, 0]  # status, body bytes sent
        logging_on = access_log.isEnabledFor(logging.INFO)
        if logging_on:
            inner_send = send

            async def send(msg: MutableMapping[str, Any]) -> None:  # the logging send
                if msg["type"] == "http.response.start":
                    status[0] = msg["status"]
                elif msg["type"] == "http.response.body":
                    status[1] += len(msg.get("body", b""))
                await inner_send(msg)

        try:
            await self._serve(scope, receive, send, status)
        finally:
            if logging_on:
                client = scope.get("client") or ("-", 0)
                access_log.info('%s %s "%s %s" %s %d %.1fms', self.name, client[0], scope["method"], scope["path"],
                                status[0] or "-", status[1], (time.perf_counter() - t0) * 1000)

    async def _serve(self, scope: Scope, receive: Receive, send: Send, status: list[int]) -> None:
        method = scope["method"]
        is_write = method in self.write_methods
        counted = [0]
        started = False

        async def tracking_send(msg: MutableMapping[str, Any]) -> None:
            nonlocal started
            if msg["type"] == "http.response.start":
                started = True
            await send(msg)

        try:
            try:
                declared = self._declared(scope)
            except BadInputError as exc:
                await _refuse(exc, send, close=True, shape=self.shape)
                return
            if declared is not None and self.max_body is not None and declared > self.max_body:
                await _refuse(TooLargeError(f"request body of {declared} bytes exceeds the limit of {self.max_body} "
                                            "bytes", limit=self.max_body), send, close=True, shape=self.shape)
                return
            guarded = self._guarded_receive(receive, counted)
            if method in self.buffer_methods:
                try:
                    body = await read_body(guarded)
                    if declared is not None and len(body) != declared:  # the client half-closed early
                        raise BadInputError(f"request body ended after {len(body)} of {declared} bytes",
                                            field="content-length")
                except ClientGone:
                    return
                except (BadInputError, OverloadedError) as exc:
                    await _refuse(exc, send, close=True, shape=self.shape)
                    return
                guarded = _replay(body, receive)
            if (self.max_inflight is not None and self.inflight >= self.max_inflight) or (
                    is_write and self.max_writes is not None and self.writes >= self.max_writes):
                await _refuse(OverloadedError("the server is busy; retry after a moment"), send, close=False,
                              shape=self.shape)
                return
            self.inflight += 1
            self.writes += is_write
            try:
                await self.app(scope, guarded, tracking_send)
            except ClientGone:
                return
            except (TooLargeError, RequestTimeoutError, OverloadedError) as exc:
                if not started:
                    await _refuse(exc, send, close=True, shape=self.shape)
                    return
                raise
            finally:
                self.inflight -= 1
                self.writes -= is_write
        finally:
            self.buffered -= counted[0]


# -- the protocol: deadlines on the request head ----------------------------------------------------
_BACKSTOP = 2.0
_408_BODY = json_bytes(error_body("request_timeout", "the request head did not arrive in time"))
_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: " + str(len(_408_BODY)).encode() + b"\r\n\r\n" + _408_BODY)


class GuardedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with deadlines on the request head (and a backstop on the body).

    uvicorn bounds only the idle time between requests (``timeout_keep_alive``), and only once a
    first request has been answered: a client that opens a connection and sends nothing, or trickles
    a request head one byte at a time, would hold it forever. Here a new connection that sends
    nothing is closed after the keep-alive timeout, a head must be complete within ``head`` of its
    first byte (else ``408`` and close), and a body is cut two seconds after its deadline for bodies
    nobody reads (the :class:`Guard` answers a late body ``408`` itself). ``deadlines`` is set on a
    subclass per server (:func:`protocol_class`)."""

    deadlines: Deadlines | None = None

    @classmethod
    def _deadlines(cls) -> Deadlines:
        if cls.deadlines is None:
            cls.deadlines = Deadlines()
        return cls.deadlines

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._dl: Deadlines = type(self)._deadlines()
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

    def eof_received(self) -> bool | None:  # type: ignore[override]  # asyncio.Protocol allows a bool
        """The client half-closed its side (``shutdown(SHUT_WR)``). A request in progress is still
        answered (its body, if cut short, ends here: the app sees fewer bytes than declared), then the
        connection is closed; an idle connection is closed at once."""
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.keep_alive = False
            if cycle.more_body:
                cycle.more_body = False
                cycle.message_event.set()
            return True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def protocol_class(deadlines: Deadlines) -> type[GuardedProtocol]:
    """A GuardedProtocol with these deadlines (one class per server: servers in one process may differ)."""
    return type("GuardedProtocol", (GuardedProtocol,), {"deadlines": deadlines})


# -- running ----------------------------------------------------------------------------------------
class _QuietFaults(logging.Filter):
    """uvicorn reports an app that ends a response early as an error; a node's fault injection does so on
    purpose (``Server.quiet_exceptions``)."""

    def __init__(self, kinds: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.kinds = kinds

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and isinstance(exc, self.kinds))


class Server:
    """One ASGI app on a socket bound and listening from construction (like the standard library's
    servers: clients may connect at once; port 0 picks a free port), served by uvicorn with
    :class:`GuardedProtocol`. ``quiet_exceptions``: exception types the app raises on purpose to drop
    a connection (not logged)."""

    def __init__(self, app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, deadlines: Deadlines | None = None,
                 name: str = "ailedger", backlog: int = 1024, graceful: float = 2.0, lifespan: bool = False,
                 quiet_exceptions: tuple[type[BaseException], ...] = ()) -> None:
        import uvicorn

        self.deadlines = deadlines or Deadlines()
        self.name = name
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(backlog)
        except OSError as exc:
            sock.close()
            raise BadInputError(f"cannot listen on {host}:{port}: {exc.strerror}", field="port") from exc
        self.socket = sock
        self.server_address = sock.getsockname()
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on" if lifespan else "off", ws="none", server_header=False,
                                http=protocol_class(self.deadlines), interface="asgi3", backlog=backlog,
                                timeout_keep_alive=self.deadlines.idle,  # type: ignore[arg-type]  # fractions too
                                timeout_graceful_shutdown=max(1, int(graceful)))
        self._uv = uvicorn.Server(config)
        self._done = threading.Event()
        self._done.set()
        self._thread: threading.Thread | None = None
        if quiet_exceptions:
            logging.getLogger("uvicorn.error").addFilter(_QuietFaults(quiet_exceptions))

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def started(self) -> bool:
        return bool(self._uv.started)

    def serve_forever(self, poll_interval: float | None = None) -> None:
        """Serve in this thread until :meth:`shutdown` (from another thread) or SIGINT/SIGTERM (in the
        main thread: uvicorn stops gracefully, then re-raises the signal to the previous handler)."""
        self._done.clear()
        try:
            self._uv.run(sockets=[self.socket])
        finally:
            self._done.set()

    async def serve_async(self) -> None:
        """Serve on the running event loop until :meth:`shutdown` (or ``should_exit``)."""
        self._done.clear()
        try:
            await self._uv.serve(sockets=[self.socket])
        finally:
            self._done.set()

    def start_background(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name=f"{self.name}-http", daemon=True)
        self._done.clear()
        t.start()
        self._thread = t
        deadline = time.monotonic() + 30
        while not self._uv.started and t.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        return t

    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop serving (connections in the middle of an answer get ``graceful`` seconds) and wait."""
        self._uv.should_exit = True
        if not self._done.wait(timeout):
            self._uv.force_exit = True
            self._done.wait(5)

    def server_close(self) -> None:
        try:
            self.socket.close()
        except OSError:  # pragma: no cover
            pass
