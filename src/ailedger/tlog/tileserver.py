"""`ailedger tiles serve`: a small read-only HTTP server for a static tile mirror.

The mirror directory is what `ailedger tiles export` writes (checkpoint, tile/<L>/<N>[.p/<W>],
tile/entries/<N>[.p/<W>]).  The event loop is C (``ailedger.tlog._tiled``): every tile path names bytes
that never change, so each tile is read from disk once and then answered from memory; the checkpoint
is re-read as soon as inotify reports it replaced (and at least every ``refresh`` seconds).  It
answers GET and HEAD on the C2SP tlog-tiles paths and nothing else and keeps the read path off the
write coordinator.  nginx (`ailedger tiles nginx-conf`) is the documented default (docs/mirror.md); this
server is kept while it survives the fuzz harness in tests/fuzz/tiled/ and stays ahead of nginx on the
same tiles (bench/tiles_bench.py, bench/RESULTS.md)."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError, BadInputError

__all__ = ["available", "bind", "parse_listen", "serve_mirror"]

try:
    from ailedger.tlog import _tiled
except ImportError:  # not built: no C compiler at install time, or not Linux
    _tiled = None  # type: ignore[assignment]


def available() -> bool:
    return _tiled is not None


class _Stop(Exception):
    pass


def parse_listen(listen: str) -> tuple[str, int]:
    m = re.fullmatch(r"(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):([0-9]{1,5})", listen)
    if m is None or int(m.group(3)) > 65535:
        raise BadInputError(f"listen address {listen!r} is not host:port (e.g. 127.0.0.1:8080)", field="listen")
    return m.group(1) or m.group(2), int(m.group(3))


def bind(listen: str, backlog: int = 4096) -> socket.socket:
    host, port = parse_listen(listen)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise BadInputError(f"cannot listen on {listen}: {e.strerror}", field="listen") from e
    fam, _, _, _, addr = infos[0]
    s = socket.socket(fam, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(addr)
        s.listen(backlog)
    except OSError as e:
        s.close()
        raise BadInputError(f"cannot listen on {listen}: {e.strerror}", field="listen") from e
    return s


def _check_directory(directory: Path) -> None:
    if not directory.is_dir():
        raise BadInputError(f"{directory} is not a directory; write a mirror first with "
                            f"`ailedger tiles export {directory}`", field="directory")
    if not os.access(directory, os.R_OK | os.X_OK):
        raise BadInputError(f"cannot read {directory}", field="directory")


def _raise_fd_limit(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


def _run_loop(sock: socket.socket, directory: Path, kw: dict[str, int]) -> dict[str, Any]:
    """Serve until SIGTERM or SIGINT; returns the loop's counters."""
    assert _tiled is not None

    def stop(*_: Any) -> None:
        raise _Stop

    old_term = signal.signal(signal.SIGTERM, stop)
    old_int = signal.signal(signal.SIGINT, stop)
    try:
        _tiled.serve(sock.fileno(), str(directory), **kw)
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
    return dict(_tiled.stats())


def serve_mirror(directory: Path, listen: str = "127.0.0.1:8080", *, workers: int = 1, refresh: float = 1.0,
                 cache_mb: int = 256, idle_timeout: float = 60.0, max_conns: int = 10000,
                 ready: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Serve the tile mirror ``directory`` on ``listen`` until SIGTERM or SIGINT; returns counters.

    ``workers`` processes share the listening socket.  ``ready`` is called once the socket listens,
    with the address actually bound (``listen`` may name port 0)."""
    if _tiled is None:
        raise AiledgerError("`ailedger tiles serve` needs the C module ailedger.tlog._tiled, built by "
                            "`pip install -e .` on Linux with a C compiler (scripts/setup.sh installs gcc); "
                            "or serve the directory with nginx: `ailedger tiles nginx-conf`")
    directory = Path(directory)
    _check_directory(directory)
    if workers < 1:
        raise BadInputError("workers must be at least 1", field="workers")
    if refresh <= 0 or idle_timeout <= 0 or max_conns < 1 or cache_mb < 1:
        raise BadInputError("refresh, idle timeout, max connections and cache size must be positive",
                            field="options")
    kw = {"refresh_ms": max(1, int(refresh * 1000)), "cache_bytes": cache_mb << 20,
          "idle_ms": max(1, int(idle_timeout * 1000)), "max_conns": max_conns}
    _raise_fd_limit(max_conns + 64)
    sock = bind(listen)
    try:
        host, port = sock.getsockname()[:2]
        info = {"directory": str(directory.resolve()), "url": f"http://{host if ':' not in host else f'[{host}]'}"
                f":{port}", "workers": workers, "pid": os.getpid()}
        if workers == 1:
            if ready:
                ready(info)
            return _run_loop(sock, directory, kw)
        return _run_workers(sock, directory, kw, workers, ready, info)
    finally:
        sock.close()


def _run_workers(sock: socket.socket, directory: Path, kw: dict[str, int], workers: int,
                 ready: Callable[[dict[str, Any]], None] | None, info: dict[str, Any]) -> dict[str, Any]:
    """Fork ``workers`` processes on the shared socket; SIGTERM/SIGINT stop them all; counters summed."""
    pipes: list[tuple[int, int]] = []
    died: list[tuple[int, int]] = []

    def stop(*_: Any) -> None:
        raise _Stop

    old_term = signal.signal(signal.SIGTERM, stop)
    old_int = signal.signal(signal.SIGINT, stop)
    try:
        try:
            for _ in range(workers):
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:  # a worker: serve, report counters on the pipe, leave without Python's cleanup
                    code = 0
                    try:
                        os.close(r)
                        stats = _run_loop(sock, directory, kw)
                        os.write(w, json.dumps(stats).encode())
                    except BaseException:  # noqa: BLE001 - a worker never returns into the parent's code
                        code = 1
                    finally:
                        os._exit(code)
                os.close(w)
                pipes.append((pid, r))
            if ready:
                ready(info)
            # a worker that ends on its own is a fault: stop the others and say so (a supervisor restarts)
            pid, status = os.wait()
            died.append((pid, os.waitstatus_to_exitcode(status)))
        except _Stop:
            pass
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        gone = {p for p, _ in died}
        for pid, _ in pipes:
            if pid not in gone:
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        total: dict[str, Any] = {}
        for pid, r in pipes:
            if pid not in gone:
                try:
                    os.waitpid(pid, 0)
                except ChildProcessError:
                    pass
            with os.fdopen(r, "rb") as f:
                raw = f.read()
            if not raw:
                continue
            for k, v in json.loads(raw).items():
                total[k] = (total.get(k, 0) + v) if isinstance(v, int) and not isinstance(v, bool) else v
        total["workers"] = workers
        if died:
            raise AiledgerError(f"tile server worker {died[0][0]} ended with exit code {died[0][1]}; "
                                "the other workers were stopped", stats=total)
        return total
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)
