"""`ailedger serve --tiles-port`: the static tile mirror as two child commands of the CLI.

`ailedger tiles export DIR --watch` keeps the mirror up to date and `ailedger tiles serve DIR` serves it.
Starting commands is the command line's business, so this lives here and not in the kernel
(``ailedger.tlog.tileserver`` serves; it never starts a process of the CLI)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError, BadInputError
from ailedger.tlog import tileserver
from ailedger.tlog.tileserver import parse_listen

__all__ = ["MirrorProcesses"]


def _die_with_parent() -> None:
    """In a child before exec: get SIGTERM when the parent dies (Linux), so no mirror outlives its server."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class MirrorProcesses:
    """The static mirror beside `ailedger serve --tiles-port`: `ailedger tiles export DIR --watch` and
    `ailedger tiles serve DIR` as child processes (their warnings go to this process's stderr); the
    mirror holds the whole log and the tile server listens when this returns."""

    def __init__(self, ledger: Path, directory: Path, listen: str, *, every: float = 0.5) -> None:
        if not tileserver.available():
            raise AiledgerError("--tiles-port needs the C module ailedger.tlog._tiled (Linux, built by "
                                "`pip install -e .` with a C compiler); serve a mirror with nginx instead: "
                                "`ailedger tiles export` and `ailedger tiles nginx-conf`")
        parse_listen(listen)
        self.directory = Path(directory)
        self.procs: list[subprocess.Popen[str]] = []
        try:
            # the watcher's first line is its first (whole) export, so the mirror is complete before it is served
            self._start(["tiles", "export", str(directory), "--ledger", str(ledger), "--watch", str(every)],
                        "size", "the tile mirror could not be written", "tiles_dir")
            self.url = self._start(["tiles", "serve", str(directory), "--listen", listen], "url",
                                   "the tile server did not start", "tiles_port")["url"]
        except BaseException:
            self.stop()
            raise
        for p in self.procs:
            threading.Thread(target=p.stdout.read, daemon=True).start()  # type: ignore[union-attr]

    def _start(self, args: list[str], key: str, failed: str, field: str) -> dict[str, Any]:
        """Start `ailedger ARGS --json`; its first line must carry ``key`` (else its error is raised).
        The rest of its output is read and dropped (a thread per child, started once both run: no thread
        is alive while preexec_fn runs), so it never blocks on a full pipe."""
        p = subprocess.Popen([sys.executable, "-c", "from ailedger.cli.main import main; main()", *args, "--json"],
                             stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)  # noqa: PLW1509 - no thread runs yet
        self.procs.append(p)
        assert p.stdout is not None
        line = p.stdout.readline()
        try:
            said = json.loads(line) if line else {}
        except ValueError:
            said = {}
        if key not in said:
            code = p.wait()
            msg = (said.get("error") or {}).get("message") or f"exit code {code}"
            raise BadInputError(f"{failed}: {msg}", field=field)
        return said

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
