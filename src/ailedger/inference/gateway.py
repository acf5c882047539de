"""The inference gateway: an HTTP proxy in front of a model server.

Every request is authenticated (``Authorization: Bearer KEY``; keys are bound to identities and
stored only as SHA-256 hashes), checked against the model's revocation state and the caller's
budget (a token bucket of ``rate`` per second and a ``daily`` quota, UTC days; 429 with
``Retry-After``), forwarded to the upstream over a keep-alive connection pool, and logged through
the inference SDK.  The receipt id of the record comes back in the ``AIledger-Receipt`` header.

A record is written only when the upstream answered with a well-formed JSON body (for the
OpenAI-compatible ``/v1/chat/completions`` and ``/v1/completions`` paths: an object with a
``choices`` list).  Refused calls (no key, bad key, revoked model, exhausted budget, bad JSON),
unreachable upstreams and malformed upstream answers get a JSON error and no record.

Every request that reaches the model (and so writes a record) carries an API key; the gateway has
no HTTP administration: keys are issued and revoked with ``ailedger gateway key`` on the ledger's
own files. Deadlines (:mod:`ailedger.server.guard`): a connection must deliver its request
head within ``--head-timeout`` of opening (or of the previous answer), and its body within
``--body-timeout`` plus 1 s per ``--min-body-rate`` bytes, else 408; the caller's budget is charged
only once the body is in. Bodies must be strict JSON (``parse_json``): any other bytes are a 400.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import math
import os
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

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
from ailedger.server.guard import Deadlines
from ailedger.tlog.private import connect_private

__all__ = ["RECEIPT_HEADER", "SUBJECT_HEADER", "Budgets", "Gateway", "GatewayKeys", "KeyInfo", "parse_rate"]

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


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Any:
    from aiohttp import web

    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


class Gateway:
    def __init__(self, ledger: Any, upstream: str, model: str, *, mode: str = "fast", timeout: float = 30.0,
                 flush_interval: float = 0.05, operator: str | None = None, passphrase: str | None = None,
                 deadlines: Deadlines | None = None) -> None:
        self.deadlines = deadlines or Deadlines()
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
        self.stats = {"requests": 0, "recorded": 0, "refused": 0, "upstream_errors": 0}

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
    async def handle(self, request: Any) -> Any:
        from aiohttp import ClientError, web
        from aiohttp.http_exceptions import HttpProcessingError as PayloadError
        from aiohttp.streams import EofStream

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
        try:
            body = await self._read_body(request)
        except _BodyTimeout:
            resp = _error(408, "request_timeout", "the request body did not arrive in time")
            resp.force_close()
            return resp
        except _BodyTooLarge:
            resp = _error(413, "too_large", f"request body exceeds {MAX_BODY} bytes")
            resp.force_close()
            return resp
        except (ConnectionError, ClientError, asyncio.IncompleteReadError, EofStream, PayloadError):
            raise _Gone() from None  # the caller went away mid-body: no answer, no record, no traceback
        ok, retry, which = self.budgets.take(info)  # charged only once the whole body is in
        if not ok:
            self.stats["refused"] += 1
            return _error(429, "budget_exhausted", f"{which} budget of {info.identity} is exhausted; retry in "
                          f"{math.ceil(retry)} s", {"Retry-After": str(max(1, math.ceil(retry)))})
        try:
            req_json = parse_json(body, what="request body") if body else None
        except BadInputError as exc:
            return _error(400, "bad_input", f"request body is not JSON: {exc.message}")
        path = request.path
        if isinstance(req_json, dict) and req_json.get("stream") is True and path.endswith(OPENAI_SUFFIXES):
            return _error(400, "bad_input", "streaming responses are not supported by the gateway; send stream: false")
        subject = request.headers.get(SUBJECT_HEADER) or info.identity
        if len(subject) > 512:
            return _error(400, "bad_input", f"{SUBJECT_HEADER} is longer than 512 characters")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP
                   and k.lower() != SUBJECT_HEADER.lower()}
        t_up = time.perf_counter()
        try:
            async with self.session.request(request.method, self.upstream + request.path_qs, data=body,
                                            headers=headers) as resp:
                status = resp.status
                out = await resp.read()
                ctype = resp.headers.get("Content-Type", "application/json")
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
            return web.Response(body=out, status=status, content_type="application/json")
        if path.endswith(OPENAI_SUFFIXES) and not (
                isinstance(out_json, dict) and isinstance(out_json.get("choices"), list)):
            self.stats["upstream_errors"] += 1
            return _error(502, "bad_upstream_response", "upstream answer has no 'choices' list (OpenAI shape)")
        meta = {"path": path, "http_status": status, "upstream_us": int((time.perf_counter() - t_up) * 1e6)}
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
        return web.Response(body=out, status=status, content_type=ctype.split(";")[0],
                            headers={RECEIPT_HEADER: rec.id})

    async def _read_body(self, request: Any) -> bytes:
        """The whole body within the body deadline (httpguard.Deadlines), at most MAX_BODY bytes."""
        loop = asyncio.get_running_loop()
        started, got, chunks = loop.time(), 0, []
        declared = request.content_length
        if declared is not None and declared > MAX_BODY:
            raise _BodyTooLarge()
        while True:
            left = self.deadlines.body_deadline(started, got) - loop.time()
            if left <= 0:
                raise _BodyTimeout()
            try:
                chunk = await asyncio.wait_for(request.content.readany(), left)
            except asyncio.TimeoutError:
                raise _BodyTimeout() from None
            if not chunk:
                break
            got += len(chunk)
            if got > MAX_BODY:
                raise _BodyTooLarge()
            chunks.append(chunk)
        if declared is not None and got != declared:
            raise ConnectionResetError("body shorter than its Content-Length")
        return b"".join(chunks)

    async def health(self, request: Any) -> Any:
        from aiohttp import web

        return web.json_response({"ok": True, "model": self.model, "revoked": self.revoked, **self.stats})

    # -- running ------------------------------------------------------------------------
    def make_app(self) -> Any:
        from aiohttp import web

        app = web.Application(client_max_size=MAX_BODY, middlewares=[_gone_quietly])
        app.router.add_get("/_ailedger/health", self.health)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def start(self, host: str, port: int) -> Any:
        import aiohttp
        from aiohttp import web

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=60, ttl_dns_cache=300),
            timeout=aiohttp.ClientTimeout(total=self.timeout), auto_decompress=False)
        self.revoked = is_model_revoked(self.ledger, self.model)
        self._watcher = asyncio.get_running_loop().create_task(self._watch())
        # aiohttp's keep-alive timer runs from the connection's start (and from each answer) and is not
        # reset by a partial head: with it at the head deadline, a head must arrive in that time
        runner = web.AppRunner(self.make_app(), access_log=None, handle_signals=False,
                               keepalive_timeout=self.deadlines.head)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise BadInputError(f"cannot listen on {host}:{port}: {exc.strerror}", field="port") from exc
        self._runner = runner
        self.port = port
        for sock in getattr(site._server, "sockets", None) or []:  # the real port when asked for port 0
            self.port = sock.getsockname()[1]
            break
        return runner

    async def stop(self) -> None:
        self._watcher.cancel()
        await self._runner.cleanup()
        await self.session.close()
        self.budgets.flush()
        self.trail.close()
        self.keys.close()


_NOT_JSON = object()
MAX_BODY = 16 * 1024 * 1024


class _BodyTimeout(Exception):
    pass


class _BodyTooLarge(Exception):
    pass


class _Gone(Exception):
    """The client disconnected mid-request."""


async def _gone_quietly(request: Any, handler: Any) -> Any:
    """Middleware: a client that went away mid-request is dropped, not logged as a server error."""
    from aiohttp import web

    try:
        return await handler(request)
    except _Gone:
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=400)  # never reaches anyone: the connection is gone


_gone_quietly.__middleware_version__ = 1  # type: ignore[attr-defined]  # what @web.middleware sets


def serve(ledger: Any, upstream: str, model: str, *, host: str = "127.0.0.1", port: int = 8080,
          mode: str = "fast", operator: str | None = None, passphrase: str | None = None,
          timeout: float = 30.0, ready: Any = None, deadlines: Deadlines | None = None) -> None:
    """Run the gateway until SIGINT/SIGTERM. ``ready(host, port)`` is called once listening."""
    import signal

    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        gw = Gateway(ledger, upstream, model, mode=mode, operator=operator, passphrase=passphrase, timeout=timeout,
                     deadlines=deadlines)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await gw.start(host, port)
        except BaseException:
            gw.trail.close()
            raise
        if ready is not None:
            ready(host, gw.port)
        try:
            await stop.wait()
        finally:
            await gw.stop()

    asyncio.run(main())
