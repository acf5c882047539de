"""HTTP front of a witness: C2SP tlog-witness ``POST /add-checkpoint``, served like every ailedger server
(uvicorn + the shared guards of :mod:`ailedger.server.asgi`).

Also serves ``GET /vkey`` (the witness's cosignature vkey) and ``GET /evidence`` (JSON list of the
split-view evidence it has kept), which are ailedger additions outside the C2SP protocol.

Authentication: ``add-checkpoint`` is the only request that changes the witness's state, and C2SP
tlog-witness authenticates it by the log's signature on the submitted checkpoint ("there is no
authentication of requests beyond the validation of the signature on the checkpoint"): a checkpoint
from an unknown origin is 404, one whose signatures do not verify under a configured key of that
log is 403, and neither changes anything. The witness has no configuration endpoint (logs are added
with ``ailedger witness add-log`` on the witness's own files). Request heads and bodies have
deadlines (:mod:`ailedger.server.guard`); a body is at most 64 KiB (413).

The protocol's own answers (200 cosignature lines, 400/403/404/409/422 from
:class:`~ailedger.tlog.witness.WitnessError`) keep the plain-text bodies C2SP describes; everything
else the server refuses (an unknown path, a body too large or too slow) is the shared JSON error
``{"code", "message"}``.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from starlette.concurrency import run_in_threadpool

from ailedger.server.asgi import Guard, Receive, Scope, Send, Server, error_body, read_body, send_json
from ailedger.server.guard import Deadlines
from ailedger.server.metrics import ServiceMetrics, available
from ailedger.tlog.witness import Witness, WitnessError

__all__ = ["WitnessServer", "make_app", "make_server"]

MAX_BODY = 64 * 1024


async def _send(send: Send, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def _witness_metrics(witness: Witness) -> Any:
    """Prometheus metrics of the witness (None without prometheus_client): checkpoints by answer, time to
    answer, and per log the size last cosigned and the seconds since (how far behind the witness is)."""
    if not available():
        return None
    m = ServiceMetrics("witness")
    m.family_fn("ailedger_witness_cosigned_size", "Tree size of the last checkpoint cosigned, per log", "origin",
                lambda: [(o, s) for o, (s, _t) in m.logs.items()])
    m.family_fn("ailedger_witness_seconds_behind", "Seconds since the witness last cosigned a checkpoint of the log",
                "origin", lambda: [(o, time.time() - t) for o, (_s, t) in m.logs.items()])
    return m


# C2SP tlog-witness answers -> an error code for the metrics
_WITNESS_CODES = {400: "bad_input", 403: "bad_signature", 404: "unknown_log", 409: "conflict",
                  422: "bad_proof"}


def _origin_size(body: bytes) -> tuple[str, int] | None:
    """Origin and size of the checkpoint in an add-checkpoint body (only after the witness accepted it)."""
    try:
        note = body.split(b"\n\n", 1)[1].split(b"\n", 2)
        return note[0].decode("utf-8", "replace")[:200], int(note[1])
    except (IndexError, ValueError):
        return None


def make_app(witness: Witness, deadlines: Deadlines | None = None) -> Any:
    """The witness as an ASGI app, behind the shared guards; ``GET /metrics``: Prometheus metrics."""
    metrics = _witness_metrics(witness)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope["method"], scope["path"]
        if method in ("GET", "HEAD") and path == "/metrics" and metrics is not None:
            body, ctype = metrics.render()
            await _send(send, 200, body, ctype)
            return
        if method == "POST":
            if path.rstrip("/") != "/add-checkpoint":
                await send_json(send, 404, error_body("not_found", f"no such path: {path[:200]}"))
                return
            headers = dict(scope["headers"])
            if b"content-length" not in headers or b"transfer-encoding" in headers:
                await send_json(send, 400, error_body("bad_input", "a Content-Length up to 64 KiB is required",
                                                      field="content-length"), [("Connection", "close")])
                return
            body = await read_body(receive)
            t0 = time.perf_counter()
            try:
                lines = await run_in_threadpool(witness.add_checkpoint, body)
            except WitnessError as exc:
                if metrics is not None:  # one increment per refused checkpoint (409: the log moved on, ...)
                    metrics.error(_WITNESS_CODES.get(exc.status, "refused"), exc.status)
                await _send(send, exc.status, exc.body, exc.content_type)
                return
            if metrics is not None:
                metrics.requests.labels("witness", "add-checkpoint").observe(time.perf_counter() - t0)
                got = _origin_size(body)
                if got is not None:
                    metrics.logs[got[0]] = (got[1], time.time())
            await _send(send, 200, lines)
        elif method in ("GET", "HEAD") and path == "/vkey":
            await _send(send, 200, (witness.vkey + "\n").encode())
        elif method in ("GET", "HEAD") and path == "/evidence":
            ev = await run_in_threadpool(witness.evidence)
            await _send(send, 200, json.dumps(ev, indent=1).encode(), "application/json")
        elif method in ("GET", "HEAD", "POST"):
            await send_json(send, 404, error_body("not_found", f"no such path: {path[:200]}"))
        else:
            await send_json(send, 405, error_body("method_not_allowed", f"method {method} is not allowed"),
                            [("Allow", "GET, HEAD, POST")])

    return Guard(app, deadlines=deadlines, max_body=MAX_BODY, buffer_methods=("POST",), name="witness")


class WitnessServer(Server):
    """The witness on a socket bound at construction; ``serve_forever``/``start_background``/``shutdown``."""

    def __init__(self, witness: Witness, host: str = "127.0.0.1", port: int = 0, verbose: bool = False,
                 deadlines: Deadlines | None = None) -> None:
        self.witness = witness
        self.verbose = verbose
        if verbose:  # one access-log line per request on stderr
            logger = logging.getLogger("ailedger.access")
            if not logger.handlers:
                logger.addHandler(logging.StreamHandler(sys.stderr))
            logger.setLevel(logging.INFO)
        deadlines = deadlines or Deadlines()
        super().__init__(make_app(witness, deadlines), host, port, deadlines=deadlines, name="witness")


def make_server(witness: Witness, host: str = "127.0.0.1", port: int = 0, verbose: bool = False,
                deadlines: Deadlines | None = None) -> WitnessServer:
    return WitnessServer(witness, host, port, verbose, deadlines)
