"""The ledger as an HTTP service (Starlette): write API, tlog-tiles read API, proofs, search, explorer.

One process opens one :class:`~ailedger.services.ledger.Ledger`; several processes (uvicorn
workers, or several machines on one PostgreSQL) may serve the same ledger: the store sequences the
writers. Blocking store calls run in the thread pool; immutable full tiles are cached in memory.
See docs/api.md.
"""

from __future__ import annotations

import base64
import collections
import json
import logging
import os
import sqlite3
import threading
import time
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ailedger.api.errors import (
    MalformedJSONError,
    MethodNotAllowedError,
    OverloadedError,
    TooLargeError,
    error_response,
    json_response,
)
from ailedger.api.openapi import openapi_spec
from ailedger.core.canonical import parse_json
from ailedger.core.checkpoint import parse_checkpoint_text
from ailedger.core.errors import AiledgerError, BadInputError, NotFoundError, StorageError
from ailedger.core.merkle import leaf_hash
from ailedger.core.note import parse_note
from ailedger.core.records import MAX_ENTRY_BYTES
from ailedger.core.tiles import TILE_HEIGHT, TILE_WIDTH, parse_tile_path
from ailedger.services.ingest import Ingestor, IngestPolicy, SharedBuckets
from ailedger.services.ledger import Ledger
from ailedger.services.tiles import entry_bundle_bytes, tile_bytes

__all__ = ["ENV_CONFIG", "ServeConfig", "app_from_env", "create_app"]

log = logging.getLogger("ailedger.api")
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

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ServeConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class _LRU:
    """Bytes cache for immutable tiles, bounded by total size."""

    def __init__(self, max_bytes: int) -> None:
        self.max = max_bytes
        self.used = 0
        self.d: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, k: str) -> bytes | None:
        with self.lock:
            v = self.d.get(k)
            if v is not None:
                self.d.move_to_end(k)
            return v

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


class _FastReads:
    """Pure ASGI front for the hottest reads: the cached checkpoint and cached immutable tiles are answered
    without routing or a thread hop; everything else (and every cache miss) goes to the app."""

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


class _Limits:
    """Pure ASGI middleware: at most N requests (and M writes) in flight, else 503 + Retry-After."""

    def __init__(self, app: ASGIApp, cfg: ServeConfig) -> None:
        self.app = app
        self.cfg = cfg
        self.inflight = 0
        self.writes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_write = scope.get("method") == "POST"
        if self.inflight >= self.cfg.max_inflight or (is_write and self.writes >= self.cfg.max_writes):
            resp = error_response(OverloadedError("the server is busy; retry after a moment"))
            await resp(scope, receive, send)
            return
        self.inflight += 1
        self.writes += is_write
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            self.writes -= is_write


def _is_db_error(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return True
    mod = type(exc).__module__
    return mod.startswith("psycopg")


def _guard(fn: Any) -> Any:
    """Turn every failure of an endpoint into a JSON error answer."""

    async def wrapper(request: Request) -> Response:
        try:
            return await fn(request)
        except AiledgerError as exc:
            return error_response(exc)
        except RecursionError:
            return error_response(MalformedJSONError("JSON is nested too deeply"))
        except Exception as exc:
            if _is_db_error(exc):  # a driver error a store let through (disk full, I/O error, lost server)
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
        shared = None
        if cfg.rate_table:
            try:
                shared = SharedBuckets(Path(cfg.rate_table))
            except OSError as exc:
                log.warning("rate limits per process: cannot open %s (%s)", cfg.rate_table, exc.strerror)
        self.ingest = Ingestor(ledger, IngestPolicy(time_window=cfg.time_window,
                                                    require_registered=cfg.require_registered,
                                                    rate=cfg.rate, burst=cfg.burst, max_batch=cfg.max_batch),
                               shared_buckets=shared)
        self.tiles = _LRU(cfg.tile_cache_bytes)
        self._cp: tuple[float, bytes] | None = None
        self._spec = json.dumps(openapi_spec(ledger.origin, web=cfg.web), separators=(",", ":")).encode()

    # -- helpers ---------------------------------------------------------------------
    async def read_json(self, request: Request, limit: int) -> Any:
        cl = request.headers.get("content-length")
        if cl is not None and cl.isdigit() and int(cl) > limit:
            raise TooLargeError(f"request body of {cl} bytes exceeds the limit of {limit} bytes",
                                limit=limit)
        chunks: list[bytes] = []
        n = 0
        async for c in request.stream():
            n += len(c)
            if n > limit:
                raise TooLargeError(f"request body exceeds the limit of {limit} bytes", limit=limit)
            chunks.append(c)
        data = b"".join(chunks)
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
        note = await run_in_threadpool(self.ledger.store.latest_checkpoint)
        if note is None:
            note = await run_in_threadpool(self.ledger.checkpoint)
        self._cp = (now, note)
        return note

    @staticmethod
    def _results(results: list[Any]) -> list[dict[str, Any]]:
        return [{"index": r.index, "leaf_hash": r.leaf_hash.hex(), "duplicate": r.duplicate} for r in results]

    # -- writes ------------------------------------------------------------------------
    async def post_entry(self, request: Request) -> Response:
        obj = await self.read_json(request, MAX_ENTRY_BYTES * 2 + 1024)
        res = (await self.ingest.submit_async([obj]))[0]
        self._cp = None
        return json_response(self._results([res])[0], 200 if res.duplicate else 201)

    async def post_batch(self, request: Request) -> Response:
        obj = await self.read_json(request, self.cfg.max_body)
        if not isinstance(obj, dict) or not isinstance(obj.get("entries"), list):
            raise BadInputError('a batch is a JSON object {"entries": [entry, ...]}', field="entries")
        if set(obj) - {"entries"}:
            raise BadInputError(f"unknown field {min(set(obj) - {'entries'})!r} in batch", field="entries")
        results = await self.ingest.submit_async(obj["entries"], batch=True)
        self._cp = None
        new = sum(1 for r in results if not r.duplicate)
        return json_response({"results": self._results(results), "appended": new,
                              "duplicates": len(results) - new}, 201 if new else 200)

    async def post_identity(self, request: Request) -> Response:
        obj = await self.read_json(request, MAX_ENTRY_BYTES * 2 + 1024)
        res = (await self.ingest.submit_async([obj], registration=True))[0]
        self._cp = None
        return json_response(self._results([res])[0], 200 if res.duplicate else 201)

    # -- tlog-tiles reads -------------------------------------------------------------------
    async def get_checkpoint(self, request: Request) -> Response:
        note = await self.checkpoint_bytes()
        return Response(note, media_type="text/plain; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=1", "Access-Control-Allow-Origin": "*"})

    async def get_tile(self, request: Request) -> Response:
        rel = "tile/" + request.path_params["rest"]
        if ".." in rel or "//" in rel or "\\" in rel:
            raise BadInputError("tile path must not contain '..', '//' or backslashes", field="path")
        level, n, width = parse_tile_path(rel)
        full = width == TILE_WIDTH
        headers = {"Cache-Control": "public, max-age=31536000, immutable" if full else "public, max-age=60",
                   "Access-Control-Allow-Origin": "*"}
        cached = self.tiles.get(rel)
        if cached is not None:
            return Response(cached, media_type="application/octet-stream", headers=headers)
        store = self.ledger.store
        size = await run_in_threadpool(store.size)
        if level == "entries":
            need = n * TILE_WIDTH + width
            if need > size:
                raise NotFoundError(f"entry bundle {rel} is beyond the log's {size} entries")
            first = n * TILE_WIDTH
            data = await run_in_threadpool(entry_bundle_bytes, store, n, need)
            if data is None or first >= need:
                raise NotFoundError(f"no entry bundle {rel}")
        else:
            assert isinstance(level, int)
            shift = level * TILE_HEIGHT
            if shift >= 63 or ((n * TILE_WIDTH + width) << shift) > size:
                raise NotFoundError(f"tile {rel} is beyond the log's {size} entries")
            data = await run_in_threadpool(tile_bytes, store, level, n, (n * TILE_WIDTH + width) << shift)
            if data is None or len(data) != 32 * width:
                raise NotFoundError(f"no tile {rel}")
        self.tiles.put(rel, data)
        return Response(data, media_type="application/octet-stream", headers=headers)

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
                                         "max_batch": self.cfg.max_batch, "max_body": self.cfg.max_body,
                                         "max_entry_bytes": MAX_ENTRY_BYTES}})

    async def healthz(self, request: Request) -> Response:
        size = await run_in_threadpool(self.ledger.store.size)
        return json_response({"ok": True, "size": size})

    async def openapi(self, request: Request) -> Response:
        return Response(self._spec, media_type="application/json")


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
        return error_response(NotFoundError(f"no such path: {request.url.path}"))
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
        Route("/v1/log", g(api.log_info), methods=["GET"]),
        Route("/v1/entries", g(api.post_entry), methods=["POST"]),
        Route("/v1/entries/batch", g(api.post_batch), methods=["POST"]),
        Route("/v1/identities", g(api.post_identity), methods=["POST"]),
        Route("/v1/entries/{index:int}", g(api.get_entry), methods=["GET"]),
        Route("/v1/entries/{index:int}/raw", g(api.get_entry_raw), methods=["GET"]),
        Route("/v1/entries/{index:int}/proof", g(api.get_proof), methods=["GET"]),
        Route("/v1/entries/{index:int}/inclusion", g(api.get_inclusion), methods=["GET"]),
        Route("/v1/consistency", g(api.get_consistency), methods=["GET"]),
        Route("/v1/search", g(api.search), methods=["GET"]),
    ]
    if cfg.web:
        from ailedger.web.pages import web_routes

        routes.extend(web_routes(api))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
    app.state.api = api
    return _Limits(_FastReads(app, api), cfg)


def app_from_env() -> ASGIApp:
    """Factory for ``uvicorn --factory``: ledger from $AILEDGER_LEDGER, config from $AILEDGER_SERVE_CONFIG."""
    cfg = ServeConfig.from_dict(json.loads(os.environ.get(ENV_CONFIG) or "{}"))
    return create_app(os.environ.get("AILEDGER_LEDGER"), cfg)


