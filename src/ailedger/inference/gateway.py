"""The inference gateway: an HTTP proxy in front of a model server.

Every request is authenticated (``Authorization: Bearer KEY``; keys are bound to identities and
stored only as SHA-256 hashes), checked against the model's revocation state and the caller's
budget (a token bucket of ``rate`` per second and a ``daily`` quota, UTC days; 429 with
``Retry-After``), forwarded to the upstream over a keep-alive connection pool (aiohttp's client), and logged through
the inference SDK.  The receipt id of the record comes back in the ``AIledger-Receipt`` header.

A record is written only when the upstream answered with a well-formed JSON body (for the
OpenAI-compatible ``/v1/chat/completions`` and ``/v1/completions`` paths: an object with a
``choices`` list).  Refused calls (no key, bad key, revoked model, exhausted budget, bad JSON),
unreachable upstreams and malformed upstream answers get a JSON error and no record: the shared
error body of every ailedger server (``{"code", "message"}``) plus the OpenAI-compatible ``error``
object ``{"code", "message"}`` that OpenAI clients read.

Every request that reaches the model (and so writes a record) carries an API key; the gateway has
no HTTP administration: keys are issued and revoked with ``ailedger gateway key`` on the ledger's
own files. Deadlines (:mod:`ailedger.server.guard`): a connection must deliver its request
head within ``--head-timeout`` of opening (or of the previous answer), and its body within
``--body-timeout`` plus 1 s per ``--min-body-rate`` bytes, else 408; the caller's budget is charged
only once the body is in. Bodies must be strict JSON (``parse_json``): any other bytes are a 400.

``call_hook`` (a :class:`CallHook`, optional): called with each answered call's request and answer before it is
recorded; what it returns goes into the record's ``meta.zk`` (the circuit commitments a later zero-knowledge
proof of the call needs, docs/zk.md; the hook lives in ``ailedger.verifiable``, which this module does not
import).  A hook that refuses the call (BadInputError: 400; any other AiledgerError: 503) leaves no record.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import hashlib
import math
import os
import secrets
import signal
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import Response

from ailedger.encoding.canonical import parse_json
from ailedger.errors import AiledgerError, BadInputError
from ailedger.inference.codec import check_plain_name
from ailedger.inference.payloads import inference_dir
from ailedger.inference.sdk import (
    DEFAULT_OPERATOR,
    InferenceTrail,
    ModelRevokedError,
    is_model_revoked,
)
from ailedger.server.asgi import (
    ClientGone,
    Guard,
    RequestTimeoutError,
    Server,
    TooLargeError,
    error_body,
    json_bytes,
    read_body,
)
from ailedger.server.guard import Deadlines
from ailedger.server.metrics import ServiceMetrics, available
from ailedger.tlog.private import connect_private

__all__ = ["RECEIPT_HEADER", "SUBJECT_HEADER", "Budgets", "CallHook", "Gateway", "GatewayKeys", "KeyInfo", "parse_rate"]

RECEIPT_HEADER = "AIledger-Receipt"
SUBJECT_HEADER = "AIledger-Subject"
OPENAI_SUFFIXES = ("/chat/completions", "/completions")
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length", "authorization"}


def parse_rate(text: str | None) -> float | None:
    """``5/s``, ``120/m``, ``1000/h`` or a bare number (per second) -> requests per second."""
    if text is None or text == "":
        return None
    num, _, unit = text.strip().partition("/")
    try:
        n = float(num)
    except ValueError:
        raise BadInputError(f"rate must look like 5/s, 120/m or 1000/h, got {text!r}", field="rate") from None
    per = {"": 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}.get(unit.strip().lower())
    if per is None or not n > 0 or not math.isfinite(n):
        raise BadInputError(f"rate must look like 5/s, 120/m or 1000/h, got {text!r}", field="rate")
    return n / per


class CallHook(Protocol):
    """Computes what a record's ``meta.zk`` carries for one answered call (request and answer as JSON)."""

    def __call__(self, request: Any, answer: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class KeyInfo:
    identity: str
    rate: float | None
    daily: int | None
    key_id: str


class GatewayKeys:
    """API keys in ``<ledger>/inference/gateway.db`` (hashes only) and per-day usage counters."""

    def __init__(self, ledger_path: str | os.PathLike[str]) -> None:
        self.path = inference_dir(ledger_path) / "gateway.db"
        self.con = connect_private(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        self.con.execute("PRAGMA journal_mode=WAL")
        self.con.executescript(
            "CREATE TABLE IF NOT EXISTS api_keys (hash TEXT PRIMARY KEY, key_id TEXT NOT NULL, identity TEXT NOT NULL,"
            " rate REAL, daily INTEGER, created TEXT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);"
            "CREATE TABLE IF NOT EXISTS usage (identity TEXT NOT NULL, day TEXT NOT NULL, count INTEGER NOT NULL,"
            " PRIMARY KEY (identity, day));")
        self._lock = threading.Lock()

    def close(self) -> None:
        self.con.close()

    def new_key(self, identity: str, *, rate: float | None = None, daily: int | None = None) -> dict[str, Any]:
        check_plain_name(identity, "identity")
        if daily is not None and daily < 1:
            raise BadInputError("daily quota must be at least 1", field="daily")
        if rate is not None and not rate > 0:
            raise BadInputError("rate must be positive", field="rate")
        key = "ailk_" + secrets.token_urlsafe(32)
        h = hashlib.sha256(key.encode()).hexdigest()
        key_id = h[:12]
        created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        with self._lock:
            self.con.execute("INSERT INTO api_keys VALUES (?,?,?,?,?,?,0)", (h, key_id, identity, rate, daily, created))
        return {"key": key, "key_id": key_id, "identity": identity, "rate_per_s": rate, "daily": daily,
                "created": created}

    def revoke(self, key_id: str) -> int:
        with self._lock:
            return self.con.execute("UPDATE api_keys SET revoked=1 WHERE key_id=?", (key_id,)).rowcount

    def list(self) -> list[dict[str, Any]]:
        return [{"key_id": k, "identity": i, "rate_per_s": r, "daily": d, "created": c, "revoked": bool(v)}
                for k, i, r, d, c, v in self.con.execute(
                    "SELECT key_id, identity, rate, daily, created, revoked FROM api_keys ORDER BY created")]

    def lookup(self, key: str) -> KeyInfo | None:
        h = hashlib.sha256(key.encode()).hexdigest()
        with self._lock:
            row = self.con.execute("SELECT identity, rate, daily, key_id FROM api_keys WHERE hash=? AND revoked=0",
                                   (h,)).fetchone()
        return None if row is None else KeyInfo(row[0], row[1], row[2], row[3])

    def load_usage(self, day: str) -> dict[str, int]:
        with self._lock:
            return dict(self.con.execute("SELECT identity, count FROM usage WHERE day=?", (day,)).fetchall())

    def save_usage(self, day: str, counts: dict[str, int]) -> None:
        with self._lock:
            self.con.executemany("INSERT INTO usage VALUES (?,?,?) ON CONFLICT(identity, day) DO UPDATE SET"
                                 " count=max(count, excluded.count)", [(i, day, c) for i, c in counts.items()])


def _utc_day(now: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(now))


class Budgets:
    """Token bucket (``rate``/s, burst ``max(1, rate)``) and daily quota per identity."""

    def __init__(self, keys: GatewayKeys) -> None:
        self.keys = keys
        self.day = _utc_day(time.time())
        self.used = keys.load_usage(self.day)
        self.buckets: dict[str, tuple[float, float]] = {}  # identity -> (tokens, last monotonic)
        self.dirty = False

    def take(self, info: KeyInfo) -> tuple[bool, float, str]:
        """(allowed, retry_after_seconds, which limit)."""
        now_wall = time.time()
        day = _utc_day(now_wall)
        if day != self.day:
            self.flush()
            self.day, self.used = day, {}
        ident = info.identity
        if info.daily is not None and self.used.get(ident, 0) >= info.daily:
            midnight = (math.floor(now_wall / 86400) + 1) * 86400
            return False, midnight - now_wall, "daily quota"
        if info.rate is not None:
            burst = max(1.0, info.rate)
            now = time.monotonic()
            tokens, last = self.buckets.get(ident, (burst, now))
            tokens = min(burst, tokens + (now - last) * info.rate)
            if tokens < 1.0:
                self.buckets[ident] = (tokens, now)
                return False, (1.0 - tokens) / info.rate, "rate"
            self.buckets[ident] = (tokens - 1.0, now)
        self.used[ident] = self.used.get(ident, 0) + 1
        self.dirty = True
        return True, 0.0, ""

    def flush(self) -> None:
        if self.dirty:
            self.keys.save_usage(self.day, self.used)
            self.dirty = False


def openai_error(body: dict[str, Any]) -> dict[str, Any]:
    """The shared error body plus the OpenAI-compatible ``error`` object (what OpenAI clients read)."""
    return {**body, "error": {"code": body.get("code"), "message": body.get("message")}}


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    resp = Response(json_bytes(openai_error(error_body(code, message))), status_code=status, headers=headers,
                    media_type="application/json")
    resp.ailedger_code = code  # type: ignore[attr-defined]  # read by the metrics (errors by code)
    return resp


class Gateway:
    def __init__(self, ledger: Any, upstream: str, model: str, *, mode: str = "fast", timeout: float = 30.0,
                 flush_interval: float = 0.05, operator: str | None = None, passphrase: str | None = None,
                 deadlines: Deadlines | None = None, extraction: Any = None,
                 call_hook: CallHook | None = None) -> None:
        self.deadlines = deadlines or Deadlines()
        # an ExtractionGuard (inference/extraction.py): budgets after alarms, the detector, output hardening
        self.extraction = extraction
        self.call_hook = call_hook
        if not upstream.startswith(("http://", "https://")):
            raise BadInputError("upstream must be an http:// or https:// URL", field="upstream", found=upstream)
        self.ledger = ledger
        self.upstream = upstream.rstrip("/")
        self.model = model
        self.timeout = timeout
        self.trail = InferenceTrail(ledger, model, mode=mode, flush_interval=flush_interval,
                                    operator=operator or DEFAULT_OPERATOR, passphrase=passphrase)
        self.keys = GatewayKeys(ledger.path)
        self.budgets = Budgets(self.keys)
        self._key_cache: dict[str, tuple[KeyInfo | None, float]] = {}
        self.revoked: str | None = None
        self.session: Any = None
        self._watcher: asyncio.Task[None] | None = None
        self._server: Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0
        self.stats = {"requests": 0, "recorded": 0, "refused": 0, "upstream_errors": 0}
        self.metrics = self._make_metrics()

    def _make_metrics(self) -> Any:
        """Prometheus metrics at ``GET /_ailedger/metrics`` (a path no model API uses; ``/metrics`` stays the
        upstream's): calls, recorded, refused, upstream errors, call latency, errors by code."""
        if not available():
            return None
        m = ServiceMetrics("gateway")
        for key, help in (("requests", "Calls received"), ("recorded", "Calls answered and recorded in the trail"),
                          ("refused", "Calls refused (key, budget, revoked model)"),
                          ("upstream_errors", "Calls the model server failed")):
            m.counter_fn(f"ailedger_gateway_{key}", help, functools.partial(self.stats.__getitem__, key))
        return m

    # -- helpers ------------------------------------------------------------------
    def _auth(self, header: str | None) -> KeyInfo | None:
        if not header or not header.startswith("Bearer "):
            return None
        key = header[7:].strip()
        hit = self._key_cache.get(key)
        now = time.monotonic()
        if hit is not None and now - hit[1] < 5.0:  # key revocation takes effect within 5 s
            return hit[0]
        info = self.keys.lookup(key)
        if len(self._key_cache) > 10000:
            self._key_cache.clear()
        self._key_cache[key] = (info, now)
        return info

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                self.revoked = await loop.run_in_executor(None, is_model_revoked, self.ledger, self.model)
                self.budgets.flush()
            except AiledgerError:
                pass
            await asyncio.sleep(0.5)

    # -- the handler -----------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        from aiohttp import ClientError

        self.stats["requests"] += 1
        info = self._auth(request.headers.get("Authorization"))
        if info is None:
            self.stats["refused"] += 1
            missing = not request.headers.get("Authorization")
            return _error(401, "unauthorized", "missing API key: send Authorization: Bearer KEY" if missing
                          else "unknown or revoked API key", {"WWW-Authenticate": 'Bearer realm="ailedger"'})
        revoked = self.revoked or self.trail._revoked
        if revoked is not None:
            self.stats["refused"] += 1
            return _error(403, "model_revoked", f"model {self.model} is revoked: {revoked}")
        if self.trail._error is not None:  # fail closed: never call the model when the call cannot be logged
            return _error(503, "audit_unavailable", f"the audit trail is unavailable: {self.trail._error}")
        # the whole body within the body deadline and MAX_BODY (the shared guard answers 408/413 and closes)
        body = await read_body(request.receive)
        declared = request.headers.get("content-length")
        if declared is not None and len(body) != int(declared):
            raise ClientGone()  # the caller half-closed mid-body: no answer, no record
        if self.extraction is not None:  # extraction alarms in force shrink the budget or suspend the identity
            refusal, rate, daily = self.extraction.admit(info.identity, info.rate, info.daily)
            if refusal is not None:
                self.stats["refused"] += 1
                return _error(403, "identity_suspended", refusal)
            info = KeyInfo(info.identity, rate, daily, info.key_id)
        ok, retry, which = self.budgets.take(info)  # charged only once the whole body is in
        if not ok:
            self.stats["refused"] += 1
            return _error(429, "budget_exhausted", f"{which} budget of {info.identity} is exhausted; retry in "
                          f"{math.ceil(retry)} s", {"Retry-After": str(max(1, math.ceil(retry)))})
        try:
            req_json = parse_json(body, what="request body") if body else None
        except BadInputError as exc:
            return _error(400, "bad_input", f"request body is not JSON: {exc.message}")
        path = request.url.path
        if isinstance(req_json, dict) and req_json.get("stream") is True and path.endswith(OPENAI_SUFFIXES):
            return _error(400, "bad_input", "streaming responses are not supported by the gateway; send stream: false")
        subject = request.headers.get(SUBJECT_HEADER) or info.identity
        if len(subject) > 512:
            return _error(400, "bad_input", f"{SUBJECT_HEADER} is longer than 512 characters")
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP
                   and k.lower() != SUBJECT_HEADER.lower()]
        raw_path = request.scope.get("raw_path") or path.encode()
        qs = request.scope.get("query_string", b"")
        target = self.upstream + raw_path.decode("latin-1") + ("?" + qs.decode("latin-1") if qs else "")
        t_up = time.perf_counter()
        try:
            status, out, ctype = await asyncio.wait_for(self._forward(request.method, target, body, headers),
                                                        self.timeout)
        except (ClientError, asyncio.TimeoutError, OSError) as exc:
            self.stats["upstream_errors"] += 1
            return _error(502, "upstream_unreachable", f"upstream {self.upstream} failed: {type(exc).__name__}")
        try:
            out_json = parse_json(out, what="upstream answer")
        except BadInputError:
            out_json = _NOT_JSON
        if status >= 500 or out_json is _NOT_JSON:
            self.stats["upstream_errors"] += 1
            return _error(502, "bad_upstream_response",
                          f"upstream answered {status} with a body that is not JSON" if out_json is _NOT_JSON
                          else f"upstream answered {status}")
        if status >= 400:  # the upstream refused the request: no decision was made, nothing to record
            return Response(out, status_code=status, media_type="application/json")
        if path.endswith(OPENAI_SUFFIXES) and not (
                isinstance(out_json, dict) and isinstance(out_json.get("choices"), list)):
            self.stats["upstream_errors"] += 1
            return _error(502, "bad_upstream_response", "upstream answer has no 'choices' list (OpenAI shape)")
        if self.extraction is not None:  # the detector sees the call; the caller gets the hardened answer
            hardened, _alarm = await asyncio.get_running_loop().run_in_executor(
                None, self.extraction.observe, info.identity, req_json, out_json)
            if hardened is not out_json:
                out_json, out = hardened, json_bytes(hardened)
        meta: dict[str, Any] = {"path": path, "http_status": status,
                                "upstream_us": int((time.perf_counter() - t_up) * 1e6)}
        if self.call_hook is not None:  # on the answer as served (after any hardening)
            hook = self.call_hook
            try:
                meta["zk"] = await asyncio.get_running_loop().run_in_executor(None, hook, req_json, out_json)
            except BadInputError as exc:
                self.stats["refused"] += 1
                return _error(400, "bad_input", f"the call cannot be committed for proving: {exc.message}")
            except AiledgerError as exc:
                return _error(503, "audit_unavailable", f"the call could not be committed for proving: {exc.message}")
        try:
            if self.trail.mode == "durable":
                loop = asyncio.get_running_loop()
                rec = await loop.run_in_executor(None, lambda: self.trail.record(
                    req_json, out_json, subject=subject, caller=info.identity, meta=meta))
            else:
                rec = self.trail.record(req_json, out_json, subject=subject, caller=info.identity, meta=meta)
        except ModelRevokedError as exc:
            return _error(403, "model_revoked", exc.message)
        except AiledgerError as exc:
            return _error(503, "audit_unavailable", f"the call could not be recorded: {exc.message}")
        self.stats["recorded"] += 1
        return Response(out, status_code=status, media_type=ctype.split(";")[0].strip() or "application/json",
                        headers={RECEIPT_HEADER: rec.id})

    async def _forward(self, method: str, url: str, body: bytes,
                       headers: list[tuple[str, str]]) -> tuple[int, bytes, str]:
        """One upstream call over the keep-alive pool: (status, body bytes as sent, content type)."""
        async with self.session.request(method, url, data=body, headers=headers) as resp:
            return resp.status, await resp.read(), resp.headers.get("Content-Type", "application/json")

    async def health(self, request: Request) -> Response:
        return Response(json_bytes({"ok": True, "model": self.model, "revoked": self.revoked, **self.stats}),
                        media_type="application/json")

    # -- running ------------------------------------------------------------------------
    async def _open(self) -> None:
        import aiohttp  # the upstream client (the fastest here: httpx added ~1.7 ms per call, bench/RESULTS.md)

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=self.timeout), auto_decompress=False)
        self.revoked = is_model_revoked(self.ledger, self.model)
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def _close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self.session is not None:
            await self.session.close()
        self.budgets.flush()
        self.trail.close()
        self.keys.close()

    def make_app(self, lifespan: bool = False) -> Any:
        """The gateway as an ASGI app behind the shared guards (:mod:`ailedger.server.asgi`).
        ``lifespan``: the app opens its upstream pool at start-up and closes everything at shutdown."""

        metrics = self.metrics

        async def dispatch(request: Request) -> Response:
            if request.url.path == "/_ailedger/health" and request.method in ("GET", "HEAD"):
                return await self.health(request)
            if request.url.path == "/_ailedger/metrics" and request.method in ("GET", "HEAD") and metrics is not None:
                body, ctype = metrics.render()
                return Response(body, headers={"Content-Type": ctype})
            if metrics is None:
                return await self._dispatch(request)
            t0 = time.perf_counter()
            resp = await self._dispatch(request)
            metrics.requests.labels("gateway", "call").observe(time.perf_counter() - t0)
            if resp.status_code >= 400:
                metrics.error(getattr(resp, "ailedger_code", "upstream_" + str(resp.status_code)), resp.status_code)
            return resp

        return self._guarded(dispatch, lifespan)

    async def _dispatch(self, request: Request) -> Response:
        try:
            return await self.handle(request)
        except ClientGone:  # the caller went away mid-body: nobody to answer, no record, no traceback
            return Response(status_code=400, headers={"Connection": "close"})
        except (RequestTimeoutError, TooLargeError) as exc:  # the guard's limits on the body
            resp = _error(408 if isinstance(exc, RequestTimeoutError) else 413, exc.code, exc.message)
            resp.headers["Connection"] = "close"
            return resp

    def _guarded(self, dispatch: Any, lifespan: bool) -> Any:
        async def app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":  # the upstream pool and the watcher live as long as the server
                while True:
                    msg = await receive()
                    if msg["type"] == "lifespan.startup":
                        if lifespan:
                            await self._open()
                        await send({"type": "lifespan.startup.complete"})
                    elif msg["type"] == "lifespan.shutdown":
                        if lifespan:
                            await self._close()
                        await send({"type": "lifespan.shutdown.complete"})
                        return
            response = await dispatch(Request(scope, receive))
            await response(scope, receive, send)

        return Guard(app, deadlines=self.deadlines, max_body=MAX_BODY, write_methods=(), name="gateway",
                     shape=openai_error)

    async def start(self, host: str, port: int) -> Any:
        """Serve on the running event loop (until :meth:`stop`)."""
        srv = Server(self.make_app(), host, port, deadlines=self.deadlines, name="gateway")
        await self._open()
        self._server = srv
        self.port = srv.port
        self._task = asyncio.get_running_loop().create_task(srv.serve_async())
        while not srv.started and not self._task.done():
            await asyncio.sleep(0.005)
        return srv

    async def stop(self) -> None:
        if self._server is not None:
            self._server._uv.should_exit = True
        if self._task is not None:
            await self._task
        if self._server is not None:
            self._server.server_close()
        await self._close()


_NOT_JSON = object()
MAX_BODY = 16 * 1024 * 1024


def serve(ledger: Any, upstream: str, model: str, *, host: str = "127.0.0.1", port: int = 8080,
          mode: str = "fast", operator: str | None = None, passphrase: str | None = None,
          timeout: float = 30.0, ready: Any = None, deadlines: Deadlines | None = None,
          extraction: Any = None, call_hook: CallHook | None = None) -> None:
    """Run the gateway until SIGINT/SIGTERM. ``ready(host, port)`` is called once listening.
    ``extraction(gateway)`` -> an ExtractionGuard for it (its operator key signs the alarms)."""
    gw = Gateway(ledger, upstream, model, mode=mode, operator=operator, passphrase=passphrase, timeout=timeout,
                 deadlines=deadlines, call_hook=call_hook)
    if extraction is not None:
        gw.extraction = extraction(gw)
    try:
        srv = Server(gw.make_app(lifespan=True), host, port, deadlines=gw.deadlines, name="gateway", lifespan=True)
    except BaseException:
        gw.trail.close()
        raise
    if ready is not None:
        ready(host, srv.port)  # listening since the line above: connections wait in the backlog

    def _stop(*_a: Any) -> None:
        raise KeyboardInterrupt

    # uvicorn stops gracefully on SIGINT/SIGTERM, then hands the signal to the previous handler: exit 0
    previous = signal.signal(signal.SIGTERM, _stop) if threading.current_thread() is threading.main_thread() else None
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
