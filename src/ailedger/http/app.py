"""The ledger as an HTTP service (Starlette): write API, tlog-tiles read API, proofs, search, explorer.

One process opens one :class:`~ailedger.tlog.ledger.Ledger`; several processes (uvicorn
workers, or several machines on one PostgreSQL) may serve the same ledger: the store sequences the
writers. Blocking store calls run in the thread pool; immutable full tiles are cached in memory.
See docs/api.md.

Hostile clients: a request body is read whole, within its deadline, before the request takes a
write slot (so stalled bodies cannot starve writes); any bytes give a 4xx, never a 500; a client
that disconnects is not a server error; identity registrations need an operator token or a
signature by a registered identity unless the operator opened registration.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import gc
import hashlib
import json
import logging
import operator
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ailedger.encoding.canonical import parse_canonical, parse_json
from ailedger.encoding.records import MAX_ENTRY_BYTES
from ailedger.errors import AiledgerError, BadInputError, NotFoundError, StorageError
from ailedger.http.errors import (
    ERROR_HOOK,
    MalformedJSONError,
    MethodNotAllowedError,
    TooLargeError,
    error_response,
    error_status_headers,
    is_db_error,
    json_response,
)
from ailedger.http.openapi import openapi_spec
from ailedger.server.asgi import Guard, json_bytes
from ailedger.server.asgi import access_log as _access_log
from ailedger.server.auth import TokenFile, WriteAuth
from ailedger.server.guard import Deadlines
from ailedger.tlog.checkpoint import parse_checkpoint_text
from ailedger.tlog.ingest import IDENTITY_REGISTER, Buckets, Ingestor, IngestPolicy, SharedBuckets
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.mirror import entry_bundle_bytes, tile_bytes
from ailedger.tlog.note import parse_note
from ailedger.tlog.tiles import TILE_HEIGHT, TILE_WIDTH, parse_tile_path

__all__ = ["ENV_CONFIG", "ServeConfig", "app_from_env", "create_app"]

log = logging.getLogger("ailedger.http")
ENV_CONFIG = "AILEDGER_SERVE_CONFIG"
MAX_INDEX = (1 << 63) - 1


@dataclass
class ServeConfig:
    max_body: int = 32 * 1024 * 1024  # bytes of one request body
    max_batch: int = 10000  # entries in one batch
    time_window: float = 600.0  # seconds either side of the server clock
    require_registered: bool = True
    rate: float = 20000.0  # entries/s per identity
    burst: float = 100000.0
    rate_table: str | None = None  # file shared by the processes on this host (None: per process)
    max_inflight: int = 512  # requests in flight per process before 503
    max_writes: int = 32  # write requests in flight per process before 503
    checkpoint_ttl: float = 0.5  # seconds a process may reuse the checkpoint it read (0: always read)
    commit_window: float = 0.002  # seconds a write group waits for requests on their way (group commit)
    commit_max_entries: int = 20000  # entries per group (one durable transaction)
    tile_cache_bytes: int = 64 * 1024 * 1024
    web: bool = True
    head_timeout: float = 10.0  # seconds for a request head, from its first byte (api/server.py)
    body_timeout: float = 10.0  # seconds for a body after its head, plus 1 s per min_body_rate bytes
    min_body_rate: int = 65536  # bytes/s
    max_buffered: int = 256 * 1024 * 1024  # bytes of request bodies being received at once, per process
    open_registration: bool = False  # anyone may register an identity (a public log); else token or sponsor
    token_file: str | None = None  # operator write tokens (ailedger write-token); admit registrations
    checkpoint_refresh: float = 1.0  # a read signs one covering entries others appended, at most this often
    metrics: bool = True  # GET /metrics (Prometheus; needs prometheus_client)
    ingest_port: int | None = None  # also POST /v1/entries on this port, through the C front (http/ingest_front.py)
    ingest_host: str = "127.0.0.1"
    ingest_checkpoint_every: float = 0.1  # seconds: on the ingest port a group signs the checkpoint at most this often
    ingest_cohorts: int = 2  # on the ingest port a group holds at most 1/cohorts of the open connections' requests

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServeConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def deadlines(self) -> Deadlines:
        return Deadlines(head=self.head_timeout, body=self.body_timeout, min_rate=self.min_body_rate)


class _IndexConvertor(Convertor[int]):
    """A path index: ASCII digits, at most 19 of them (a log holds fewer than 2^63 entries). Anything
    longer does not match the route, so it is a 404, never an int() of thousands of digits."""

    regex = "[0-9]{1,19}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("index", _IndexConvertor())


class _LRU:
    """Bytes cache for tiles: immutable full tiles bounded by total size, and right-edge partial
    tiles for a short time (a partial tile is dropped once its full tile exists, so it is never
    cached for long)."""

    PARTIAL_SECONDS = 1.0
    PARTIAL_MAX = 4096

    def __init__(self, max_bytes: int) -> None:
        self.max = max_bytes
        self.used = 0
        self.d: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self.partial: dict[str, tuple[float, bytes]] = {}
        self.lock = threading.Lock()

    def get(self, k: str) -> bytes | None:
        with self.lock:
            v = self.d.get(k)
            if v is not None:
                self.d.move_to_end(k)
                return v
            p = self.partial.get(k)
            if p is not None:
                if time.monotonic() < p[0]:
                    return p[1]
                del self.partial[k]
            return None

    def put(self, k: str, v: bytes) -> None:
        if len(v) > self.max // 4:
            return
        with self.lock:
            if k in self.d:
                return
            self.d[k] = v
            self.used += len(v)
            while self.used > self.max:
                _, old = self.d.popitem(last=False)
                self.used -= len(old)

    def put_partial(self, k: str, v: bytes) -> None:
        with self.lock:
            if len(self.partial) >= self.PARTIAL_MAX:
                self.partial.clear()
            self.partial[k] = (time.monotonic() + self.PARTIAL_SECONDS, v)


class _FastReads:
    """Pure ASGI front for the hottest reads: the cached checkpoint and cached tiles are answered
    without routing or a thread hop; everything else (and every cache miss) goes to the app.

    Tiles are looked up by the path exactly as sent (``raw_path``): only canonical tile paths are
    ever cached, so a percent-encoded or otherwise non-canonical spelling always misses and is
    refused by the app, as the static mirror refuses it."""

    def __init__(self, app: ASGIApp, api: Api) -> None:
        self.app = app
        self.api = api

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path = scope["path"]
            body: bytes | None = None
            if path == "/checkpoint":
                body = self.api.cached_checkpoint()
                ctype, cache = b"text/plain; charset=utf-8", b"public, max-age=1"
            elif path.startswith("/tile/"):
                raw = scope.get("raw_path")
                if raw is None or raw == path.encode("utf-8", "surrogateescape"):
                    body = self.api.tiles.get(path[1:])
                ctype = b"application/octet-stream"
                cache = b"public, max-age=31536000, immutable" if ".p/" not in path else b"public, max-age=60"
            if body is not None:
                await send({"type": "http.response.start", "status": 200, "headers": [
                    (b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                    (b"cache-control", cache), (b"access-control-allow-origin", b"*")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


_answer_batch: Callable[[Sequence[tuple[int, bytes, bool]]], bytes] | None
try:  # the answer of a batch append in one C call (the bytes orjson gives for the same document)
    from ailedger.encoding._speedups import answer_batch as _answer_batch
except ImportError:  # not built
    _answer_batch = None
_DUPLICATE = operator.itemgetter(2)  # AppendResult.duplicate
_ENTRY_LIMIT = MAX_ENTRY_BYTES * 2 + 1024  # bytes of a POST /v1/entries body (Api.post_entry's limit)
_JSON_HEADERS = [(b"content-type", b"application/json")]


class _FastWrite:
    """Pure ASGI front for the commonest write: ``POST /v1/entries`` of one entry already in canonical
    JSON (what ailedger's clients send), whole in the request's first body message.

    The shared guards (:class:`~ailedger.server.asgi.Guard`) are applied here with the Guard's own
    counters and limits (declared size, bytes of bodies in flight, requests and writes in flight), the
    entry is checked on the event loop (one C call that releases the GIL: no hand-off to a checking
    thread per request) and handed to the group committer, whose one loop callback per group brings the
    answer back. No Starlette routing or middleware per request. Everything else -- another path or
    method, no or a bad Content-Length, a body in several pieces, non-canonical JSON, an identity
    registration (it needs a credential), any limit reached, the access log on -- goes to the Guard and
    the app unchanged (the body already read is handed on), which answer exactly as before."""

    def __init__(self, app: ASGIApp, guard: Guard, api: Api) -> None:
        self.app = app
        self.guard = guard
        self.api = api
        # per event loop: the requests read in its current turn, checked together at its end (one C call)
        self._pending: dict[asyncio.AbstractEventLoop, list[list[Any]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/v1/entries"
                or _access_log.isEnabledFor(logging.INFO)):
            await self.app(scope, receive, send)
            return
        g = self.guard
        declared = None
        for k, v in scope["headers"]:
            if k == b"content-length":
                declared = v
                break
        if declared is None or not declared.isdigit() or len(declared) > 7 or int(declared) > _ENTRY_LIMIT \
                or (g.max_body is not None and int(declared) > g.max_body):
            await self.app(scope, receive, send)  # the Guard answers (411-free: a chunked body is read there)
            return
        msg = await receive()
        body = msg.get("body", b"") if msg["type"] == "http.request" else None
        if (body is None or msg.get("more_body", False) or len(body) != int(declared)
                or (g.max_buffered is not None and g.buffered + len(body) > g.max_buffered)
                or (g.max_inflight is not None and g.inflight >= g.max_inflight)
                or (g.max_writes is not None and g.writes >= g.max_writes)):
            await self.app(scope, _replay_first(msg, receive), send)
            return
        obj = parse_canonical(body) if body else None
        if type(obj) is not dict or obj.get("type") == IDENTITY_REGISTER:
            await self.app(scope, _replay_first(msg, receive), send)
            return
        g.inflight += 1
        g.writes += 1
        g.buffered += len(body)  # as the Guard counts a body it read, until the request is answered
        try:
            status, data, headers = await self._append(body, obj)
        finally:
            g.inflight -= 1
            g.writes -= 1
            g.buffered -= len(body)
        answer = json_bytes(data)
        hs = _JSON_HEADERS + [(b"content-length", str(len(answer)).encode())]
        hs.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items())
        await send({"type": "http.response.start", "status": status, "headers": hs})
        await send({"type": "http.response.body", "body": answer})

    def _check_pending(self, loop: asyncio.AbstractEventLoop) -> None:
        """At the end of a turn of the event loop: check the entries of every request read in it at once
        (one C call; each gets its own result or error) and queue them for the next group."""
        pending = self._pending.pop(loop)
        ingest = self.api.ingest
        committer = self.api.ledger.committer
        try:
            preps = ingest.prepare_singles([p[0] for p in pending], [p[1] for p in pending])
        except BaseException as exc:  # noqa: BLE001 - delivered to each request of the turn
            for p in pending:
                if not p[2].done():
                    p[2].set_exception(exc)
            return
        for p, prep in zip(pending, preps):
            fut = p[2]
            if fut.done():
                continue
            if isinstance(prep, AiledgerError):
                fut.set_exception(prep)
                continue
            p[3] = prep
            try:
                committer.submit_to(ingest.request(prep), fut)
            except Exception as exc:  # noqa: BLE001 - a closed committer: this request fails
                fut.set_exception(exc)

    async def _append(self, body: bytes, obj: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
        api = self.api
        ingest = api.ingest
        loop = asyncio.get_running_loop()
        item: list[Any] = [body, obj, loop.create_future(), None]
        pending = self._pending.get(loop)
        if pending is None:
            pending = self._pending[loop] = []
            loop.call_soon(self._check_pending, loop)
        pending.append(item)
        try:
            results = await item[2]
            res = ingest.done(item[3], results)[0]
        except AiledgerError as exc:
            status, headers = error_status_headers(exc)
            return status, exc.to_dict(), headers
        except Exception as exc:  # as _guard: a driver error is a storage error, anything else internal
            if is_db_error(exc):
                log.warning("storage error on POST /v1/entries: %s", exc)
                err = StorageError(f"the store failed: {str(exc).strip()[:200]}")
                status, headers = error_status_headers(err)
                return status, err.to_dict(), headers
            log.exception("internal error on POST /v1/entries")
            return 500, {"code": "internal", "message": "internal server error"}, {}
        finally:
            api._cp = None
        return (200 if res.duplicate else 201), {"index": res.index, "leaf_hash": res.leaf_hash.hex(),
                                                 "duplicate": res.duplicate}, {}


def _replay_first(first: Any, receive: Receive) -> Receive:
    """A receive() that hands out ``first`` (the message already taken), then the connection's own."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return first
        return await receive()

    return replay


def _guard(fn: Any) -> Any:
    """Turn every failure of an endpoint into a JSON error answer."""

    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except AiledgerError as exc:
            return error_response(exc)
        except ClientDisconnect:  # the client went away mid-request: nobody to answer, nothing went wrong
            log.debug("client disconnected during %s %s", request.method, request.url.path)
            return Response(status_code=400)
        except RecursionError:
            return error_response(MalformedJSONError("JSON is nested too deeply"))
        except Exception as exc:
            if is_db_error(exc):  # a driver error a store let through (disk full, I/O error, lost server)
                log.warning("storage error on %s %s: %s", request.method, request.url.path, exc)
                return error_response(StorageError(f"the store failed: {str(exc).strip()[:200]}"))
            log.exception("internal error on %s %s", request.method, request.url.path)
            return json_response({"code": "internal", "message": "internal server error"}, 500)

    wrapper.__name__ = fn.__name__
    return wrapper


def _int_param(request: Request, name: str, default: int | None = None, lo: int = 0,
               hi: int = MAX_INDEX) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        if default is None:
            raise BadInputError(f"query parameter {name} is required", field=name)
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 19:
        raise BadInputError(f"query parameter {name} must be a non-negative integer", field=name)
    v = int(raw)
    if not lo <= v <= hi:
        raise BadInputError(f"query parameter {name} must be in {lo}..{hi}", field=name)
    return v


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


class Api:
    def __init__(self, ledger: Ledger, cfg: ServeConfig) -> None:
        self.ledger = ledger
        self.cfg = cfg
        ledger.set_group_commit(window=cfg.commit_window, max_entries=cfg.commit_max_entries)
        # single entries are checked on the event loop (_FastWrite) and cannot announce themselves: while
        # writers are concurrent, a group stays open for the window (latency traded for fewer commits)
        ledger.committer.gather = True
        shared: Buckets | None = None
        self.rate_scope = "process"
        budgets = getattr(ledger.store, "budgets", None)  # a store every server shares (PostgreSQL) keeps them
        if callable(budgets):
            try:
                shared, self.rate_scope = budgets(), "store"
            except AiledgerError as exc:
                log.warning("rate limits per host: the store cannot keep them (%s)", exc)
        if shared is None and cfg.rate_table:
            try:
                shared, self.rate_scope = SharedBuckets(Path(cfg.rate_table)), "host"
            except OSError as exc:
                log.warning("rate limits per process: cannot open %s (%s)", cfg.rate_table, exc.strerror)
        self.ingest = Ingestor(ledger, IngestPolicy(time_window=cfg.time_window,
                                                    require_registered=cfg.require_registered,
                                                    rate=cfg.rate, burst=cfg.burst, max_batch=cfg.max_batch),
                               shared_buckets=shared)
        self.tiles = _LRU(cfg.tile_cache_bytes)
        self.auth = WriteAuth(tokens=TokenFile(cfg.token_file) if cfg.token_file else None,
                              admit=self._may_sponsor, what="this log's identity registration")
        self._cp: tuple[float, bytes] | None = None
        self.ingest_front: Any = None  # the C write front beside this API (app_from_env, --ingest-port)
        self._signed_at = -float("inf")  # when a read last signed a checkpoint (time.monotonic)
        self._spec = json.dumps(openapi_spec(ledger.origin, web=cfg.web), separators=(",", ":")).encode()
        self.metrics = _serve_metrics(ledger) if cfg.metrics else None
        _serve_tracing(ledger)

    def _may_sponsor(self, did: str) -> bool:
        """A registered identity, not revoked, may vouch for a new one by signing its registration request."""
        return self.ingest.is_registered(did) and not self.ingest.is_revoked(did)

    # -- helpers ---------------------------------------------------------------------
    async def read_body(self, request: Request, limit: int) -> bytes:
        """The request body (already read whole, within its deadline, by the Guard), at most ``limit`` bytes."""
        chunks: list[bytes] = []
        n = 0
        async for c in request.stream():
            n += len(c)
            if n > limit:
                raise TooLargeError(f"request body exceeds the limit of {limit} bytes", limit=limit)
            chunks.append(c)
        return b"".join(chunks)

    async def read_json(self, request: Request, limit: int, data: bytes | None = None) -> Any:
        if data is None:
            data = await self.read_body(request, limit)
        if not data:
            raise MalformedJSONError("request body is empty; send a JSON document")
        try:
            return parse_json(data, what="request body")
        except BadInputError as exc:
            raise MalformedJSONError(exc.message) from None
        except RecursionError:
            raise MalformedJSONError("request body is nested too deeply") from None

    def cached_checkpoint(self) -> bytes | None:
        ttl = self.cfg.checkpoint_ttl
        if ttl > 0 and self._cp is not None and time.monotonic() - self._cp[0] < ttl:
            return self._cp[1]
        return None

    async def checkpoint_bytes(self) -> bytes:
        ttl = self.cfg.checkpoint_ttl
        now = time.monotonic()
        if ttl > 0 and self._cp is not None and now - self._cp[0] < ttl:
            return self._cp[1]
        note = await run_in_threadpool(self._checkpoint_covering_store, now)
        self._cp = (now, note)
        return note

    def _checkpoint_covering_store(self, now: float) -> bytes:
        """The latest stored checkpoint, or, when the store has grown past it (entries appended by another
        process: `ailedger append`, another server on the same store) and this server holds the log key,
        a new one signed at the store's size, at most once per ``checkpoint_refresh`` seconds. So a read
        of /checkpoint covers an entry appended elsewhere within checkpoint_refresh + checkpoint_ttl
        seconds (docs/api.md), not only after this server's next write."""
        note = self.ledger.store.latest_checkpoint()
        if self.ledger.log.signer is None:
            return note if note is not None else self.ledger.checkpoint()  # no key: says so if there is none
        if note is not None:
            if now - self._signed_at < self.cfg.checkpoint_refresh:
                return note
            if parse_checkpoint_text(parse_note(note).text).size >= self.ledger.store.size():
                return note
        self._signed_at = now
        return self.ledger.checkpoint()

    @staticmethod
    def _results(results: list[Any]) -> list[dict[str, Any]]:
        return [{"index": r.index, "leaf_hash": r.leaf_hash.hex(), "duplicate": r.duplicate} for r in results]

    # -- writes ------------------------------------------------------------------------
    async def _admit_registrations(self, request: Request, objs: list[Any], data: bytes) -> None:
        """Entries are authenticated by their own signatures (and the signer's registration, in
        ingest); an ``identity.register`` entry is signed by a key nobody admitted yet, so a request
        that carries one must also carry a credential: an operator token or an RFC 9421 signature by
        a registered identity (a sponsor). ``open_registration`` (a public log) waives this."""
        if self.cfg.open_registration:
            return
        if not any(isinstance(o, dict) and o.get("type") == IDENTITY_REGISTER for o in objs):
            return
        raw = request.scope.get("raw_path") or request.url.path.encode()
        path = raw.decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in request.scope["headers"]}
        cred = await run_in_threadpool(self.auth.check, request.method, path, query, headers)
        cred.check_body(hashlib.sha256(data).digest())

    def _parse_body(self, data: bytes) -> tuple[Any, bool]:
        """(value, canonical): a body that is already canonical JSON (what ailedger's clients send) is
        read by the fast parser and its entries are not canonicalised again; any other is read strictly."""
        if data:
            obj = parse_canonical(data)
            if obj is not None:
                return obj, True
        return None, False

    async def post_entry(self, request: Request) -> Response:
        data = await self.read_body(request, MAX_ENTRY_BYTES * 2 + 1024)
        obj, canonical = self._parse_body(data)
        if not canonical:
            obj = await self.read_json(request, 0, data)
        await self._admit_registrations(request, [obj], data)
        res = (await self.ingest.submit_async([obj], canonical=canonical))[0]
        self._cp = None
        return json_response(self._results([res])[0], 200 if res.duplicate else 201)

    async def post_batch(self, request: Request) -> Response:
        data = await self.read_body(request, self.cfg.max_body)
        # the common case, canonical entries the C checker takes whole: no Python value per entry
        results = await self.ingest.submit_body_async(data)
        if results is not None:
            self._cp = None
            new = len(results) - sum(map(_DUPLICATE, results))
            body = _answer_batch(results) if _answer_batch is not None else json_bytes(
                {"results": self._results(results), "appended": new, "duplicates": len(results) - new})
            return Response(body, status_code=201 if new else 200, media_type="application/json")
        obj, canonical = self._parse_body(data)
        if not canonical:
            obj = await self.read_json(request, 0, data)
        if not isinstance(obj, dict) or not isinstance(obj.get("entries"), list):
            raise BadInputError('a batch is a JSON object {"entries": [entry, ...]}', field="entries")
        if set(obj) - {"entries"}:
            raise BadInputError(f"unknown field {min(set(obj) - {'entries'})!r} in batch", field="entries")
        await self._admit_registrations(request, obj["entries"], data)
        results = await self.ingest.submit_async(obj["entries"], batch=True, canonical=canonical)
        self._cp = None
        new = sum(1 for r in results if not r.duplicate)
        return json_response({"results": self._results(results), "appended": new,
                              "duplicates": len(results) - new}, 201 if new else 200)

    async def post_identity(self, request: Request) -> Response:
        data = await self.read_body(request, MAX_ENTRY_BYTES * 2 + 1024)
        obj = await self.read_json(request, 0, data)
        if isinstance(obj, dict) and obj.get("type") == IDENTITY_REGISTER:
            await self._admit_registrations(request, [obj], data)
        res = (await self.ingest.submit_async([obj], registration=True))[0]
        self._cp = None
        return json_response(self._results([res])[0], 200 if res.duplicate else 201)

    # -- tlog-tiles reads -------------------------------------------------------------------
    async def get_checkpoint(self, request: Request) -> Response:
        note = await self.checkpoint_bytes()
        return Response(note, media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=1", "Access-Control-Allow-Origin": "*"})

    async def get_tile(self, request: Request) -> Response:
        """A tile or entry bundle, exactly as the static mirror (`ailedger tiles serve`) serves them,
        following C2SP tlog-tiles: only the canonical path of each tile (the path as sent: no
        percent-encoding, no leading zeroes, the shortest index form) names it, anything else is 404;
        a partial tile is served while it is the right edge of the tree (its full tile does not exist
        yet) and only at a width some checkpoint of this log needs ("logs MUST serve partial tiles
        corresponding to tree sizes for which a checkpoint was produced, but MAY delete any partial
        tile once the corresponding full tile is available")."""
        raw = request.scope.get("raw_path")
        path = raw.decode("latin-1") if raw is not None else request.url.path
        try:
            level, n, width = parse_tile_path(path)
        except BadInputError as exc:
            raise NotFoundError(f"no tile at this path: {exc.message}", field="path") from None
        rel = path[1:]
        full = width == TILE_WIDTH
        headers = {"Cache-Control": "public, max-age=31536000, immutable" if full else "public, max-age=60",
                   "Access-Control-Allow-Origin": "*"}
        cached = self.tiles.get(rel)
        if cached is not None:
            return Response(cached, media_type="application/octet-stream", headers=headers)
        store = self.ledger.store
        size = await run_in_threadpool(store.size)
        shift = 0 if level == "entries" else int(level) * TILE_HEIGHT
        complete = size >> shift if shift < 64 else 0  # complete entries (level 0) or subtrees at this level
        end = n * TILE_WIDTH + width
        if end > complete:
            raise NotFoundError(f"{rel} is beyond the log's {size} entries")
        if not full:
            if (n + 1) * TILE_WIDTH <= complete:
                raise NotFoundError(f"{rel} is a partial tile of a tile that is now full: fetch "
                                    f"{rel.split('.p/')[0]}")
            if not await run_in_threadpool(self._checkpointed, end << shift, (end + 1) << shift):
                # entries appended by another process may not be checkpointed yet: the read path signs one
                await run_in_threadpool(self._checkpoint_covering_store, time.monotonic())
                if not await run_in_threadpool(self._checkpointed, end << shift, (end + 1) << shift):
                    raise NotFoundError(f"{rel}: no checkpoint of this log has a size that needs this partial tile")
        if level == "entries":
            data = await run_in_threadpool(entry_bundle_bytes, store, n, end)
            if data is None:
                raise NotFoundError(f"no entry bundle {rel}")
        else:
            data = await run_in_threadpool(tile_bytes, store, int(level), n, end << shift)
            if data is None or len(data) != 32 * width:
                raise NotFoundError(f"no tile {rel}")
        if full:
            self.tiles.put(rel, data)
        else:
            self.tiles.put_partial(rel, data)
        return Response(data, media_type="application/octet-stream", headers=headers)

    def _checkpointed(self, lo: int, hi: int) -> bool:
        """Is there a stored checkpoint whose size is in [lo, hi)?"""
        store = self.ledger.store
        if hi - lo == 1:
            return store.checkpoint_at(lo) is not None
        at_least = getattr(store, "checkpoint_size_at_least", None)
        if at_least is not None:
            found = at_least(lo)
            return found is not None and found < hi
        return any(lo <= sz < hi for sz, _ in store.checkpoints())

    # -- entries and proofs ----------------------------------------------------------------------
    async def _entry_bytes(self, request: Request) -> tuple[int, bytes]:
        index = int(request.path_params["index"])
        size = await run_in_threadpool(self.ledger.store.size)
        if index >= size:
            raise NotFoundError(f"no entry {index}: the log has {size} entries", field="index")
        data = await run_in_threadpool(self.ledger.store.leaves, index, index + 1)
        if not data:
            raise NotFoundError(f"no entry {index}", field="index")
        return index, bytes(data[0])

    async def get_entry(self, request: Request) -> Response:
        index, data = await self._entry_bytes(request)
        obj = json.loads(data)
        return json_response({"index": index, "leaf_hash": leaf_hash(data).hex(), "entry": obj},
                             headers={"Cache-Control": "public, max-age=31536000, immutable"})

    async def get_entry_raw(self, request: Request) -> Response:
        _, data = await self._entry_bytes(request)
        return Response(data, media_type="application/json",
                        headers={"Cache-Control": "public, max-age=31536000, immutable"})

    async def get_proof(self, request: Request) -> Response:
        index, _ = await self._entry_bytes(request)
        bundle = await run_in_threadpool(self.ledger.prove, index)
        return Response(bundle, media_type="text/plain; charset=utf-8",
                        headers={"Content-Disposition": f'inline; filename="entry-{index}.tlog-proof"'})

    async def get_inclusion(self, request: Request) -> Response:
        index, data = await self._entry_bytes(request)
        note = await self.checkpoint_bytes()
        cp = parse_checkpoint_text(parse_note(note).text)
        tree_size = _int_param(request, "tree_size", cp.size, 1)
        if index >= tree_size:
            raise BadInputError(f"entry {index} is not in a tree of size {tree_size}", field="tree_size")
        if tree_size > cp.size:
            raise BadInputError(f"tree_size {tree_size} is beyond the latest checkpoint's {cp.size}",
                                field="tree_size")
        proof = await run_in_threadpool(self.ledger.log.inclusion_proof, index, tree_size)
        root = await run_in_threadpool(self.ledger.log.root_at, tree_size)
        return json_response({"index": index, "tree_size": tree_size, "leaf_hash": leaf_hash(data).hex(),
                              "root": root.hex(), "proof": [h.hex() for h in proof]})

    async def get_consistency(self, request: Request) -> Response:
        note = await self.checkpoint_bytes()
        cp = parse_checkpoint_text(parse_note(note).text)
        new = _int_param(request, "new", cp.size, 1)
        old = _int_param(request, "old", None, 1)
        if new > cp.size:
            raise BadInputError(f"new size {new} is beyond the latest checkpoint's {cp.size}", field="new")
        if old > new:
            raise BadInputError(f"old size {old} is larger than new size {new}", field="old")
        proof = await run_in_threadpool(self.ledger.log.consistency_proof, old, new)
        old_root = await run_in_threadpool(self.ledger.log.root_at, old)
        new_root = await run_in_threadpool(self.ledger.log.root_at, new)
        return json_response({"old": old, "new": new, "old_root": old_root.hex(), "new_root": new_root.hex(),
                              "proof": [h.hex() for h in proof]})

    # -- search ----------------------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        q = request.query_params
        allowed = {"subject", "signer", "type", "term", "after", "limit"}
        unknown = set(q.keys()) - allowed
        if unknown:
            raise BadInputError(f"unknown query parameter {min(unknown)!r}", field=min(unknown))
        terms = []
        for key, prefix in (("type", "type:"), ("signer", "signer:"), ("subject", "subject:"), ("term", "")):
            v = q.get(key)
            if v:
                if len(v) > 512:
                    raise BadInputError(f"{key} is too long", field=key)
                terms.append(prefix + v)
        if not terms:
            raise BadInputError("search needs at least one of subject, signer, type, term", field="term")
        after = _int_param(request, "after", 0, 0) - 1
        limit = _int_param(request, "limit", 100, 1, 1000)
        hits = await run_in_threadpool(_search, self.ledger, terms, after, limit)
        out = []
        for idx, data in hits:
            e = json.loads(data)
            out.append({"index": idx, "type": e.get("type"), "signer": e.get("signer"), "time": e.get("time"),
                        "leaf_hash": leaf_hash(data).hex()})
        nxt = out[-1]["index"] + 1 if len(out) == limit else None
        return json_response({"results": out, "next_after": nxt})

    async def model_status(self, request: Request) -> Response:
        """Whether a model may be used, on whose word (services.authority.model_status: the one rule set)."""
        from ailedger.authority.service import model_status

        name = request.path_params["name"]
        if not name or len(name) > 200 or name.startswith("#") or any(c.isspace() for c in name):
            raise BadInputError("a model name is 1..200 characters, no spaces, not starting with #", field="name")
        st = await run_in_threadpool(model_status, self.ledger, name)
        return json_response(st.to_dict())

    async def epcis_trace(self, request: Request) -> Response:
        """An EPCIS item's trace (``/v1/epcis/trace``) or recall report (``/v1/epcis/recall``), every event with
        its inclusion proof (docs/supply-chain.md)."""
        from ailedger.supplychain.service import recall, trace

        q = request.query_params
        unknown = set(q.keys()) - {"epc", "direction"}
        if unknown:
            raise BadInputError(f"unknown query parameter {min(unknown)!r}", field=min(unknown))
        epc = q.get("epc", "")
        if not epc or len(epc) > 290 or any(c.isspace() or not c.isprintable() for c in epc):
            raise BadInputError("epc is an EPC URI or GS1 Digital Link URI (1..290 printable characters)", field="epc")
        if request.url.path.endswith("/recall"):
            if "direction" in q:
                raise BadInputError("a recall always goes forward: no direction", field="direction")
            return json_response(await run_in_threadpool(recall, self.ledger, epc))
        direction = q.get("direction", "forward")
        if direction not in ("forward", "backward"):
            raise BadInputError("direction is forward or backward", field="direction")
        return json_response(await run_in_threadpool(trace, self.ledger, epc, forward=direction == "forward"))

    # -- misc ------------------------------------------------------------------------------------
    async def log_info(self, request: Request) -> Response:
        note = await self.checkpoint_bytes()
        cp = parse_checkpoint_text(parse_note(note).text)
        size = await run_in_threadpool(self.ledger.store.size)
        return json_response({"origin": self.ledger.origin, "size": size, "vkey": self.ledger.vkey,
                              "checkpoint": {"size": cp.size, "root": cp.root.hex(), "note": note.decode()},
                              "policy": {"time_window_seconds": self.cfg.time_window,
                                         "require_registered": self.cfg.require_registered,
                                         "rate_per_identity": self.cfg.rate, "burst": self.cfg.burst,
                                         "rate_shared_by": self.rate_scope,
                                         "max_batch": self.cfg.max_batch, "max_body": self.cfg.max_body,
                                         "max_entry_bytes": MAX_ENTRY_BYTES,
                                         "open_registration": self.cfg.open_registration,
                                         "head_timeout_seconds": self.cfg.head_timeout,
                                         "body_timeout_seconds": self.cfg.body_timeout,
                                         "min_body_rate": self.cfg.min_body_rate}})

    async def healthz(self, request: Request) -> Response:
        size = await run_in_threadpool(self.ledger.store.size)
        return json_response({"ok": True, "size": size})

    async def openapi(self, request: Request) -> Response:
        return Response(self._spec, media_type="application/json")

    async def get_metrics(self, request: Request) -> Response:
        """Prometheus metrics of this process (docs/monitor.md); 404 when metrics are off."""
        if self.metrics is None:
            raise NotFoundError("metrics are off (serve config `metrics`, or install ailedger[monitor])")
        body, ctype = await run_in_threadpool(self.metrics.render)
        return Response(body, media_type=ctype.split(";")[0], headers={"Content-Type": ctype})


def _serve_tracing(ledger: Ledger) -> None:
    """One OpenTelemetry span per committed write group when tracing is configured (server/tracing.py)."""
    from ailedger.server.tracing import GroupTracer, tracer

    t = tracer("serve")
    if t is None:
        return
    spans = GroupTracer(t, "serve")
    before = ledger.committer.on_group
    if before is None:
        ledger.committer.on_group = spans
        return

    def both(items: int, weight: int, seconds: float, failed: bool) -> None:
        before(items, weight, seconds, failed)
        spans(items, weight, seconds, failed)

    ledger.committer.on_group = both


def _serve_metrics(ledger: Ledger) -> Any:
    """The serve process's metrics: the committer reports each group; sizes are read when scraped."""
    from ailedger.server.metrics import Behind, ServiceMetrics, available

    if not available():
        log.warning("metrics are off: prometheus_client is not installed (pip install 'ailedger[monitor]')")
        return None
    m = ServiceMetrics("serve")
    ledger.committer.on_group = m.group
    store = ledger.store
    behind = Behind()

    def cp_size() -> float | None:
        note = store.latest_checkpoint()
        return None if note is None else parse_checkpoint_text(parse_note(note).text).size

    def cp_behind() -> float | None:
        size = cp_size()
        return None if size is None else behind(size < store.size())

    def witnessed() -> float | None:
        from ailedger.tlog.witness import cosigned_checkpoint

        note = cosigned_checkpoint(ledger)
        return None if note is None else parse_checkpoint_text(parse_note(note).text).size

    w_behind = Behind()

    def witness_behind() -> float | None:
        size = witnessed()
        return None if size is None else w_behind(size < store.size())

    def anchor_behind() -> float | None:
        from ailedger.anchoring.service import anchored_head  # a shell may load a capability on use

        head = anchored_head(ledger.path)
        if head is None:
            return None
        return 0.0 if head[0] >= store.size() else max(0.0, time.time() - head[1])

    m.gauge_fn("ailedger_tree_size", "Entries in the log's store", store.size)
    m.gauge_fn("ailedger_witnessed_size", "Tree size of the largest checkpoint witnesses cosigned", witnessed)
    m.gauge_fn("ailedger_witness_seconds_behind",
               "Seconds the largest cosigned checkpoint has not covered the whole store (0: it does)", witness_behind)
    m.gauge_fn("ailedger_anchor_seconds_behind", "Seconds since the last confirmed anchor, while the log has grown "
               "past it (0: the anchored tree is the whole store)", anchor_behind)
    m.gauge_fn("ailedger_checkpoint_size", "Tree size of the latest signed checkpoint", cp_size)
    m.gauge_fn("ailedger_checkpoint_seconds_behind",
               "Seconds the latest signed checkpoint has not covered the whole store (0: it does)", cp_behind)
    ERROR_HOOK[:] = [m.error]
    return m


def _search(ledger: Ledger, terms: list[str], after: int, limit: int) -> list[tuple[int, bytes]]:
    store = ledger.store
    first, rest = terms[0], terms[1:]
    out: list[tuple[int, bytes]] = []
    scanned = 0
    while len(out) < limit and scanned < 100000:
        idxs = store.find(first, after, 1000)
        if not idxs:
            break
        for idx in idxs:
            if all(store.find(t, idx - 1, 1) == [idx] for t in rest):
                out.append((idx, bytes(store.leaves(idx, idx + 1)[0])))
                if len(out) >= limit:
                    break
        scanned += len(idxs)
        after = idxs[-1]
    return out


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        resp = error_response(MethodNotAllowedError(f"method {request.method} is not allowed on this path"))
        if exc.headers and "Allow" in exc.headers:
            resp.headers["Allow"] = exc.headers["Allow"]
        return resp
    if exc.status_code == 404:
        path = request.url.path
        return error_response(NotFoundError(f"no such path: {path[:200]}{'...' if len(path) > 200 else ''}"))
    return json_response({"code": "http_error", "message": str(exc.detail)}, exc.status_code)


def create_app(ledger: Ledger | str | os.PathLike[str] | None, cfg: ServeConfig | None = None) -> ASGIApp:
    cfg = cfg or ServeConfig()
    if not isinstance(ledger, Ledger):
        ledger = Ledger.open(ledger)
    api = Api(ledger, cfg)
    try:
        ledger.log.sign_if_behind()  # none yet, or behind the store (a crash before it was signed)
        if ledger.store.latest_checkpoint() is None:
            ledger.checkpoint()  # without the log key: raises, and the warning below says so
    except AiledgerError as exc:  # a read-only ledger without checkpoint: reads will say so
        log.warning("no checkpoint: %s", exc.message)
    g = _guard
    routes: list[Any] = [
        Route("/checkpoint", g(api.get_checkpoint), methods=["GET"]),
        Route("/tile/{rest:path}", g(api.get_tile), methods=["GET"]),
        Route("/openapi.json", g(api.openapi), methods=["GET"]),
        Route("/healthz", g(api.healthz), methods=["GET"]),
        Route("/metrics", g(api.get_metrics), methods=["GET"]),
        Route("/v1/log", g(api.log_info), methods=["GET"]),
        Route("/v1/entries", g(api.post_entry), methods=["POST"]),
        Route("/v1/entries/batch", g(api.post_batch), methods=["POST"]),
        Route("/v1/identities", g(api.post_identity), methods=["POST"]),
        Route("/v1/entries/{index:index}", g(api.get_entry), methods=["GET"]),
        Route("/v1/entries/{index:index}/raw", g(api.get_entry_raw), methods=["GET"]),
        Route("/v1/entries/{index:index}/proof", g(api.get_proof), methods=["GET"]),
        Route("/v1/entries/{index:index}/inclusion", g(api.get_inclusion), methods=["GET"]),
        Route("/v1/consistency", g(api.get_consistency), methods=["GET"]),
        Route("/v1/search", g(api.search), methods=["GET"]),
        Route("/v1/models/{name:path}", g(api.model_status), methods=["GET"]),
        Route("/v1/epcis/trace", g(api.epcis_trace), methods=["GET"]),
        Route("/v1/epcis/recall", g(api.epcis_trace), methods=["GET"]),
    ]
    if cfg.web:
        from ailedger.http.explorer import web_routes

        routes.extend(web_routes(api))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.api = api
    # the guards every ailedger server shares (ailedger.server.asgi): a POST body is read whole first, within
    # its deadline, up to max_body, counted against max_buffered bytes of bodies in flight; only then does the
    # request take one of max_inflight request slots and max_writes write slots (else 503 + Retry-After). A
    # stalled body holds a connection and the bytes it sent, never a write slot.
    guard = Guard(_FastReads(app, api), deadlines=cfg.deadlines(), max_body=cfg.max_body, buffer_methods=("POST",),
                  write_methods=("POST",), max_buffered=cfg.max_buffered, max_inflight=cfg.max_inflight,
                  max_writes=cfg.max_writes, name="api")
    return _FastWrite(guard, guard, api)


def app_from_env() -> ASGIApp:
    """Factory for ``uvicorn --factory``: ledger from $AILEDGER_LEDGER, config from $AILEDGER_SERVE_CONFIG."""
    cfg = ServeConfig.from_dict(json.loads(os.environ.get(ENV_CONFIG) or "{}"))
    app = create_app(os.environ.get("AILEDGER_LEDGER"), cfg)
    if cfg.ingest_port is not None:
        _start_ingest_front(app, cfg, cfg.ingest_port)
    tune_gc()
    return app


def _start_ingest_front(app: ASGIApp, cfg: ServeConfig, port: int) -> None:
    """``serve --ingest-port``: the C write front in ONE of the worker processes (the first to lock
    LEDGER/run/ingest-front.lock; the lock goes with the process, and the worker that replaces it takes it), so
    that every single-entry writer joins the same groups (a group per worker would be a fraction as large)."""
    import atexit
    import fcntl

    from ailedger.http.ingest_front import IngestFront

    assert isinstance(app, _FastWrite)
    run = Path(app.api.ledger.path) / "run"
    run.mkdir(exist_ok=True)
    fd = os.open(run / "ingest-front.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # another worker of this server runs it
        os.close(fd)
        return
    front = IngestFront(app.api, cfg.ingest_host, port).start()  # the lock's fd stays open: held while we live
    atexit.register(front.stop)
    app.api.ingest_front = front


def tune_gc() -> None:
    """The cyclic garbage collector of a serving process: what was loaded to start it (modules, the app,
    the rules) is moved out of the collector's sight (``gc.freeze``) and the youngest generation is
    collected every 50,000 allocations instead of 700. A batch of 1,000 entries allocates hundreds of
    thousands of short-lived objects (parsed JSON, rows), nearly none of them in cycles (reference
    counting frees them), and the default thresholds made the collector re-walk them and the frozen
    heap dozens of times per batch: 3-8 CPU-us per entry (bench/RESULTS.md, "commit path"). Cycles are
    still collected, later."""
    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(50_000, g1, g2)


