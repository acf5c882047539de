"""HTTP front of a witness: C2SP tlog-witness ``POST /add-checkpoint`` on a stdlib threading server.

Also serves ``GET /vkey`` (the witness's cosignature vkey) and ``GET /evidence`` (JSON list of the
split-view evidence it has kept), which are ailedger additions outside the C2SP protocol.

Authentication: ``add-checkpoint`` is the only request that changes the witness's state, and C2SP
tlog-witness authenticates it by the log's signature on the submitted checkpoint ("there is no
authentication of requests beyond the validation of the signature on the checkpoint"): a checkpoint
from an unknown origin is 404, one whose signatures do not verify under a configured key of that
log is 403, and neither changes anything. The witness has no configuration endpoint (logs are added
with ``ailedger witness add-log`` on the witness's own files). Request heads and bodies have
deadlines (:mod:`ailedger.server.guard`).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from ailedger.errors import BadInputError
from ailedger.server.guard import Deadlines, GuardedHandler, GuardedServer, content_length
from ailedger.tlog.witness import Witness, WitnessError

__all__ = ["WitnessServer", "make_server"]

MAX_BODY = 64 * 1024


class _Handler(GuardedHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the protocol recommends
    disable_nagle_algorithm = True  # headers and body go out in separate writes: no Nagle/delayed-ACK stall
    server: WitnessServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _send(self, status: int, body: bytes, ctype: str = "text/plain; charset=utf-8") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/add-checkpoint":
            self.close_connection = True  # its body is not read
            self._send(404, b"not found\n")
            return
        try:
            n = content_length(self.headers.get("Content-Length"))
        except BadInputError:
            n = None
        if n is None or n > MAX_BODY or "Transfer-Encoding" in self.headers:
            self.close_connection = True
            self._send(413 if n is not None and n > MAX_BODY else 400, b"a Content-Length up to 64 KiB is required\n")
            return
        body = self.rfile.read(n)
        if len(body) != n:  # the client went away mid-body: nothing to answer
            self.close_connection = True
            return
        try:
            lines = self.server.witness.add_checkpoint(body)
        except WitnessError as exc:
            self._send(exc.status, exc.body, exc.content_type)
            return
        except Exception as exc:  # noqa: BLE001 # pragma: no cover - never leak a traceback to a peer
            self._send(500, f"internal error: {type(exc).__name__}\n".encode())
            return
        self._send(200, lines)

    def do_GET(self) -> None:
        if self.path == "/vkey":
            self._send(200, (self.server.witness.vkey + "\n").encode())
        elif self.path == "/evidence":
            self._send(200, json.dumps(self.server.witness.evidence(), indent=1).encode(), "application/json")
        else:
            self._send(404, b"not found\n")


class WitnessServer(GuardedServer):

    def __init__(self, witness: Witness, host: str = "127.0.0.1", port: int = 0, verbose: bool = False,
                 deadlines: Deadlines | None = None) -> None:
        self.witness = witness
        self.verbose = verbose

        class Handler(_Handler):
            pass

        Handler.deadlines = deadlines or Deadlines()
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        assert isinstance(host, str)  # an AF_INET address
        return f"http://{host}:{port}"

    def start_background(self) -> threading.Thread:
        t = threading.Thread(target=self.serve_forever, name="witness-http", daemon=True)
        t.start()
        return t


def make_server(witness: Witness, host: str = "127.0.0.1", port: int = 0, verbose: bool = False,
                deadlines: Deadlines | None = None) -> WitnessServer:
    return WitnessServer(witness, host, port, verbose, deadlines)
