"""The lean C load generator of bench/http_bench.py's single-entry writers (bench/singles_client.c).

build() compiles singles_client.c with the system C compiler (cc, else gcc or clang) once per version of the
source (the binary is cached under the temporary directory, keyed by the source's hash) and returns its path,
or None with the reason when there is no compiler or the build fails (the caller then falls back to wrk, then
to the Python client). run() posts one pre-built request per entry over ``conns`` keep-alive connections, one
in flight per connection, and returns every answer in entry order with its latency and the client's own CPU.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

SOURCE = Path(__file__).resolve().with_name("singles_client.c")


def compiler() -> str | None:
    for name in ("cc", "gcc", "clang"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def build_c(source: Path, cache_dir: Path | None = None, *, shared: bool = False) -> tuple[Path | None, str]:
    """Compile ``source`` (a program, or a shared library when ``shared``) with the system C compiler once per
    version of the source and compiler, cached under the temporary directory (keyed by their hash); (path, "")
    or (None, why it is not available)."""
    cc = compiler()
    if cc is None:
        return None, "no C compiler (cc, gcc or clang) on PATH"
    tag = hashlib.sha256(source.read_bytes() + cc.encode()).hexdigest()[:16]
    cache = cache_dir or Path(tempfile.gettempdir()) / f"ailedger-bench-{os.getuid()}"
    cache.mkdir(parents=True, exist_ok=True)
    ext = ".so" if shared else ""
    out = cache / f"{source.stem}-{tag}{ext}"
    if out.exists():
        return out, ""
    tmp = cache / f".{source.stem}-{tag}-{os.getpid()}{ext}"
    flags = ["-shared", "-fPIC"] if shared else []
    r = subprocess.run([cc, "-O2", "-Wall", "-Wextra", *flags, "-pthread", "-o", str(tmp), str(source)],
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        return None, f"{cc} failed to build {source.name}: {(r.stderr or r.stdout).strip()[-500:]}"
    os.replace(tmp, out)  # atomic: a concurrent build of the same source gives the same binary
    return out, ""


def build(cache_dir: Path | None = None) -> tuple[Path | None, str]:
    """(path of the compiled client, "") or (None, why it is not available)."""
    return build_c(SOURCE, cache_dir)


def parse_results(data: bytes) -> list[tuple[int, int, bytes]]:
    """The client's --out file: (status, latency in ns, body) per entry, in entry order."""
    out: list[tuple[int, int, bytes]] = []
    pos = 0
    while pos < len(data):
        nl = data.index(b"\n", pos)
        status, lat, blen = (int(x) for x in data[pos:nl].split())
        body = data[nl + 1 : nl + 1 + blen]
        if len(body) != blen or data[nl + 1 + blen : nl + 2 + blen] != b"\n":
            raise ValueError(f"truncated result record at byte {pos}")
        out.append((status, lat, body))
        pos = nl + 2 + blen
    return out


def run(exe: Path, url: str, entries: list[bytes], conns: int, path: str = "/v1/entries",
        timeout_s: float = 60.0, threads: int = 1) -> dict[str, Any]:
    """Post every entry (one request each) to ``url`` + ``path`` from ``conns`` connections, closed loop, on
    ``threads`` threads (each its own slice of the connections).

    Returns the client's JSON summary (seconds, cpu_s, cpu_us_per_request, p50_ms, p99_ms, ...) plus
    ``results`` (status, latency ns, body per entry, in order), ``statuses`` ({status: count}) and ``acked``
    ((index, leaf_hash, duplicate) of every 200/201 answer). The clock runs from the first request sent to
    the last answer read (connections are opened before)."""
    if any(b"\n" in e for e in entries):
        raise ValueError("an entry holds a newline: the client takes one request body per line")
    u = urlsplit(url)
    if u.scheme != "http" or not u.hostname or not u.port:
        raise ValueError(f"an http://HOST:PORT URL is needed, not {url!r}")
    tmp = Path(tempfile.mkdtemp(prefix="singles-client-"))
    try:
        (tmp / "entries").write_bytes(b"\n".join(entries) + b"\n")
        proc = subprocess.Popen([str(exe), "--host", u.hostname, "--port", str(u.port), "--path", path,
                                 "--conns", str(conns), "--threads", str(threads), "--entries",
                                 str(tmp / "entries"), "--out", str(tmp / "out"), "--timeout", str(timeout_s),
                                 "--wait"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdin is not None and proc.stdout is not None
        ready = proc.stdout.readline()
        if ready != b"ready\n":
            err = proc.communicate(timeout=30)[1]
            raise RuntimeError(f"singles_client did not start: {(ready + err).decode(errors='replace')[-1000:]}")
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"singles_client failed ({proc.returncode}): {err.decode(errors='replace')[-1000:]}")
        summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
        results = parse_results((tmp / "out").read_bytes())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    statuses: dict[int, int] = {}
    acked: list[tuple[int, str, bool]] = []
    for status, _, body in results:
        statuses[status] = statuses.get(status, 0) + 1
        if status in (200, 201):
            js = json.loads(body)
            acked.append((js["index"], js["leaf_hash"], js["duplicate"]))
    summary.update(results=results, statuses=statuses, acked=acked)
    return summary
