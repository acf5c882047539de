"""Inference on encrypted inputs over HTTP: the FHE server on the project's one ASGI stack, and its client.

Routes (every error is the shared JSON shape ``{"code", "message", ...}``; nothing is logged for a refusal):

- ``POST /v1/fhe/keys``: body = a client's ``public.ctx`` (parameters, relinearisation and Galois keys, about
  43 MB, sent once per client); answer ``{"key": id, "params": ...}``.  A context holding a secret key is
  refused (400 ``bad_input``).  The server keeps the last ``max_keys`` contexts in memory.
- ``GET /v1/fhe/keys/ID``: 200 when the server holds that key, else 404 (the client uploads it then).
- ``POST /v1/fhe/infer``: body = a query envelope (``AILFHE1``); answer = the answer envelope
  (``application/octet-stream``), the inference record's receipt id in ``X-Ailedger-Receipt`` (and the model,
  the evaluation time and both digests in further ``X-Ailedger-*`` headers).  A body over the single-query
  limit (1 MiB) is 413 ``too_large`` before it is read; a malformed envelope is 400 ``malformed_ciphertext``,
  other CKKS parameters 400 ``other_params``, a key this server does not hold 400 ``other_key``.
- ``GET /v1/fhe/info``: the model, its registration index and the CKKS parameters.

The evaluation runs in a worker thread, one at a time (TenSEAL is CPU-bound; the machine decides the rate).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from typing import Any

from ailedger.errors import AiledgerError, BadInputError, NotFoundError
from ailedger.private.fhe import (
    MAGIC,
    MAX_ENVELOPE_BYTES,
    PARAMS,
    FheKeys,
    FheServer,
    MalformedCiphertextError,
    OtherKeyError,
    decrypt,
    encrypt,
    infer_logged,
    key_id,
    open_envelope,
)
from ailedger.server.asgi import (
    Guard,
    Receive,
    Scope,
    Send,
    Server,
    TooLargeError,
    error_body,
    read_body,
    send_json,
)
from ailedger.server.guard import Deadlines

__all__ = ["MAX_KEY_BYTES", "FheHttpServer", "make_app", "query"]

MAX_KEY_BYTES = 64 << 20  # a public context is ~43 MB
INFER_PATH = "/v1/fhe/infer"
KEYS_PATH = "/v1/fhe/keys"


def _declared(scope: Scope) -> int | None:
    for k, v in scope.get("headers", ()):
        if k == b"content-length":
            try:
                return int(v)
            except ValueError:
                return None
    return None


def _header_key(data: bytes) -> str | None:
    """The key id an envelope's header names (None when unreadable: open_envelope then names the fault)."""
    import struct

    try:
        (n,) = struct.unpack(">I", data[len(MAGIC):len(MAGIC) + 4])
        key = json.loads(data[len(MAGIC) + 4:len(MAGIC) + 4 + n]).get("key")
    except (struct.error, ValueError, AttributeError):
        return None
    return key if isinstance(key, str) else None


class _State:
    """The registered model, the trail its records go to, and the client contexts held (LRU)."""

    def __init__(self, reg: Any, trail: Any, max_keys: int, max_query: int) -> None:
        self.reg = reg
        self.trail = trail
        self.max_keys = max_keys
        self.max_query = max_query
        self.servers: OrderedDict[str, FheServer] = OrderedDict()
        self.lock = threading.Lock()
        self.queries = 0

    def add_key(self, public: bytes) -> str:
        kid = key_id(public)
        with self.lock:
            if kid in self.servers:
                self.servers.move_to_end(kid)
                return kid
        server = FheServer(self.reg.model, public)  # parses the context; refuses a secret one
        with self.lock:
            self.servers[kid] = server
            while len(self.servers) > self.max_keys:
                self.servers.popitem(last=False)
        return kid

    def infer(self, data: bytes) -> dict[str, Any]:
        kid = _header_key(data)
        with self.lock:
            server = self.servers.get(kid) if kid is not None else None
            if server is None and kid is not None and data.startswith(MAGIC):
                raise OtherKeyError(f"this server holds no public context for key {kid[:16]}...: upload "
                                    f"public.ctx to {KEYS_PATH} first", field="ciphertext")
            if server is None:  # not a readable envelope: open_envelope names the fault
                open_envelope(data, kind="query", key="")
                raise MalformedCiphertextError("malformed ciphertext: no key in the envelope", field="ciphertext")
            res = infer_logged(self.trail, server, data)
            self.queries += 1
        return res


def make_app(state: _State) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        from starlette.concurrency import run_in_threadpool

        method, path = scope["method"], scope["path"].rstrip("/")
        try:
            if method == "POST" and path == INFER_PATH:
                declared = _declared(scope)
                if declared is not None and declared > state.max_query:
                    raise TooLargeError(f"ciphertext of {declared} bytes exceeds the limit of {state.max_query} "
                                        "bytes", limit=state.max_query)
                body = await read_body(receive, state.max_query)
                res = await run_in_threadpool(state.infer, body)
                answer = res["answer"]
                hs = [(b"content-type", b"application/octet-stream"), (b"content-length", str(len(answer)).encode()),
                      (b"x-ailedger-receipt", str(res["receipt"]).encode()),
                      (b"x-ailedger-model", state.reg.name.encode()),
                      (b"x-ailedger-seconds", f"{res['seconds']:.4f}".encode()),
                      (b"x-ailedger-in-sha256", res["in_sha256"].encode()),
                      (b"x-ailedger-out-sha256", res["out_sha256"].encode())]
                await send({"type": "http.response.start", "status": 200, "headers": hs})
                await send({"type": "http.response.body", "body": answer})
            elif method == "POST" and path == KEYS_PATH:
                body = await read_body(receive, MAX_KEY_BYTES)
                kid = await run_in_threadpool(state.add_key, body)
                await send_json(send, 200, {"ok": True, "key": kid, "params": PARAMS})
            elif method in ("GET", "HEAD") and path.startswith(KEYS_PATH + "/"):
                kid = path[len(KEYS_PATH) + 1:]
                if kid not in state.servers:
                    raise NotFoundError(f"no public context for key {kid[:64]}", field="key")
                await send_json(send, 200, {"ok": True, "key": kid})
            elif method in ("GET", "HEAD") and path == "/v1/fhe/info":
                await send_json(send, 200, {"model": state.reg.name, "model_index": state.reg.index,
                                            "params": PARAMS, "max_query_bytes": state.max_query,
                                            "keys": len(state.servers), "queries": state.queries})
            else:
                await send_json(send, 404, error_body("not_found", f"no such path: {path[:200]}"))
        except TooLargeError:
            raise  # the Guard answers 413 and closes
        except NotFoundError as exc:
            await send_json(send, 404, exc.to_dict())
        except BadInputError as exc:
            await send_json(send, 400, exc.to_dict())
        except AiledgerError as exc:
            await send_json(send, 500, exc.to_dict())

    return Guard(app, max_body=MAX_KEY_BYTES, name="fhe")


class FheHttpServer(Server):
    """The FHE server for one registered model (``reg``), logging on ``trail``, on a bound socket."""

    def __init__(self, reg: Any, trail: Any, host: str = "127.0.0.1", port: int = 0, *, max_keys: int = 4,
                 max_query: int = MAX_ENVELOPE_BYTES, deadlines: Deadlines | None = None) -> None:
        self.state = _State(reg, trail, max_keys, max_query)
        super().__init__(make_app(self.state), host, port, deadlines=deadlines, name="fhe")


# -- the client -----------------------------------------------------------------------------------------
def _request(url: str, data: bytes | None = None, method: str = "GET", timeout: float = 120.0) -> tuple[int, Any, bytes]:
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/octet-stream"} if data is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return int(r.status), r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.headers, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        raise BadInputError(f"cannot reach the FHE server at {url}: {getattr(exc, 'reason', exc)}",
                            field="url") from None


def _refused(status: int, body: bytes) -> BadInputError:
    try:
        doc = json.loads(body)
        code, msg = doc.get("code", "error"), doc.get("message", "")
    except ValueError:
        code, msg = "error", body[:200].decode("utf-8", "replace")
    err = BadInputError(f"the FHE server refused the request (HTTP {status} {code}): {msg}", field="server",
                        status=status, server_code=code)
    return err


def query(url: str, keys: FheKeys, x: Any, *, timeout: float = 120.0) -> dict[str, Any]:
    """Encrypt digit ``x`` under ``keys``, have the server at ``url`` evaluate it (uploading ``public.ctx`` first
    when the server does not hold it), decrypt the answer: ``{"class", "logits", "receipt", ...}``."""
    base = url.rstrip("/")
    t0 = time.perf_counter()
    uploaded = 0
    status, _, body = _request(f"{base}{KEYS_PATH}/{keys.id}", timeout=timeout)
    if status == 404:
        status, _, body = _request(f"{base}{KEYS_PATH}", keys.public, "POST", timeout)
        if status != 200:
            raise _refused(status, body)
        uploaded = len(keys.public)
    elif status != 200:
        raise _refused(status, body)
    ct = encrypt(keys, x)
    t1 = time.perf_counter()
    status, headers, answer = _request(f"{base}{INFER_PATH}", ct, "POST", timeout)
    if status != 200:
        raise _refused(status, answer)
    t2 = time.perf_counter()
    res = decrypt(keys, answer)
    return {**res, "receipt": headers.get("X-Ailedger-Receipt"), "model": headers.get("X-Ailedger-Model"),
            "bytes_out": len(ct), "bytes_in": len(answer), "key_bytes_uploaded": uploaded,
            "server_seconds": float(headers.get("X-Ailedger-Seconds") or 0), "round_trip_seconds": t2 - t1,
            "seconds": time.perf_counter() - t0}
