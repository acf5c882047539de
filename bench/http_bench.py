"""HTTP service benchmark: batched appends (SQLite, PostgreSQL), checkpoint/tile read latency, a load test.

    .venv/bin/python bench/http_bench.py [--quick] [--pg-dsn DSN] [--load-seconds 60] [--workers 2]

Everything runs on 127.0.0.1: real `ailedger serve` processes, an aiohttp client in this process; with
--writers-only, the single-entry writers are bench/singles_client.c (--client c, the default: compiled here
with cc, a few CPU-us per request; falls back to wrk, then to the Python client, with a note).
Figures:
  append_eps_sqlite / append_eps_postgres: entries/s of pre-signed entries posted in batches of 1000 by
      4 concurrent clients (signing is done before the clock starts; the server checks every signature).
  read_*: latency of GET /checkpoint and tile paths with 200 concurrent readers, (a) closed loop (each reader
      sends its next request as soon as the last answer arrives: measures saturation) and (b) paced
      (each reader sends one request every 100 ms = 2000 req/s offered).
  load_*: 50 concurrent writers for --load-seconds (single entries and batches of 20, signed on the fly),
      then the log is checked: every acknowledged entry at its index, indices dense and unique, audit clean.
Prints human lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from limits import (  # the machine's limits (bench/limits.py)
    fork_pool,
    sodium_all_cores,
    sodium_cpu_us_per_verify,
    sodium_verify_per_s,
    tree_cpu_s,
)

from ailedger.encoding.canonical import canonical_json
from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.tlog.ledger import Ledger, utc_now
from ailedger.tlog.merkle import leaf_hash

try:  # a faster event loop for the bench's own clients (the client shares the 2 cores with the server)
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
except ImportError:  # pragma: no cover
    pass


class Key:
    def __init__(self, name: str) -> None:
        self.name = name
        self.key = Ed25519PrivateKey.generate()
        pub = self.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.did = did_from_public_key(pub)

    def entry(self, t: str, body: dict) -> dict:
        return build_entry(t, body, self.did, utc_now(), self.key.sign).to_dict()

    def registration(self) -> dict:
        return self.entry("identity.register", {"name": self.name, "did": self.did, "subjects": [self.did]})


def free_port() -> int:
    import socket

    span = os.environ.get("BENCH_PORTS")  # "lo-hi": a port range of one's own on a shared machine
    if span:
        lo, hi = (int(x) for x in span.split("-"))
        for port in random.sample(range(lo, hi + 1), hi - lo + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise RuntimeError(f"no free port in {span}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_checkpoint(dsn: str) -> None:
    """A PostgreSQL CHECKPOINT before a timed phase (as benchmark practice has it): the dirty pages of the phase
    before are written now, not by a checkpoint that falls in the middle of the next measurement (session 11 saw
    the first PostgreSQL run of each set take 72.5-82 CPU-us per entry against 63.5-66 in the others)."""
    import psycopg

    try:
        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute("CHECKPOINT")
    except psycopg.Error as exc:  # not a superuser (CHECKPOINT needs pg_checkpoint): measure without it
        print(f"note: no CHECKPOINT before the PostgreSQL phase: {exc}".strip(), flush=True)


def drop_schema(dsn: str, schema: str) -> None:
    """Drop a bench's own PostgreSQL schema (best effort: the bench's figures do not depend on it)."""
    try:
        import psycopg

        with psycopg.connect(dsn, autocommit=True) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    except Exception:  # noqa: BLE001, S110 - best-effort clean-up of the bench's own schema
        pass


class Server:
    def __init__(self, ledger: Path, workers: int, extra: list[str] | None = None) -> None:
        self.port = free_port()
        while str(self.port) in (extra or []):  # not a port already given to it (--ingest-port)
            self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logf = open(ledger.parent / f"serve-{self.port}.log", "wb")  # noqa: SIM115 - closed by stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from ailedger.cli.main import main; main()", "serve", "--ledger", str(ledger),
             "--port", str(self.port), "--workers", str(workers), "--max-writes", "256", "--max-inflight", "4096",
             "--open-registration",  # the bench registers its writers itself (a public log)
             *(extra or [])],
            stdout=self.logf, stderr=subprocess.STDOUT, cwd=ROOT)
        import urllib.request

        t0 = time.time()
        while time.time() - t0 < 180:  # minutes, not seconds, on a shared machine under load
            if self.proc.poll() is not None:
                break
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=5)
                return
            except OSError:
                time.sleep(0.1)
        self.logf.flush()
        raise RuntimeError(f"server did not start: {(ledger.parent / f'serve-{self.port}.log').read_text()[-2000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)
        self.logf.close()


def proc_cpu(root_pid: int) -> float:
    """CPU seconds (user+system) used so far by a process and all its descendants (bench/limits.py)."""
    return tree_cpu_s(root_pid)


def pg_backend_cpu(pg: tuple[str, str] | None) -> dict[int, float]:
    """On-CPU seconds so far of the PostgreSQL backends serving one ledger schema (their application_name is
    ``ailedger:<schema>``; /proc/<pid>/schedstat: the server must run on this machine), by pid; {} otherwise."""
    if pg is None:
        return {}
    import psycopg

    dsn, schema = pg
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as con:
            pids = [int(r[0]) for r in con.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                                   (f"ailedger:{schema}"[:63],))]
    except psycopg.Error:
        return {}
    out: dict[int, float] = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                out[pid] = int(f.read().split()[0]) / 1e9
        except OSError:
            pass
    return out


def pg_cpu_since(pg: tuple[str, str] | None, before: dict[int, float]) -> float | None:
    """The backends' CPU seconds since ``before`` (a backend begun since counts from zero; one that ended is
    missed: the pools keep theirs open)."""
    if pg is None:
        return None
    now = pg_backend_cpu(pg)
    return sum(c - before.get(pid, 0.0) for pid, c in now.items()) if now else None


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float("nan")


async def bench_append(url: str, n_batches: int, batch: int, clients: int) -> dict:
    keys = [Key(f"bench{i}") for i in range(clients)]
    async with aiohttp.ClientSession() as s:
        for k in keys:
            async with s.post(url + "/v1/identities", json=k.registration()) as r:
                assert r.status in (200, 201), await r.text()
    print(f"  signing {n_batches * batch} entries ...", flush=True)
    bodies = []
    leaves: list[bytes] = []
    for b in range(n_batches):
        k = keys[b % clients]
        es = [k.entry("bench.event", {"b": b, "i": i, "subjects": [f"sha256:{(b * batch + i):064x}"]})
              for i in range(batch)]
        bodies.append(json.dumps({"entries": es}).encode())
        leaves.extend(canonical_json(e) for e in es)
    queue = list(enumerate(bodies))
    lat: list[float] = []
    appended = 0

    async def client() -> None:
        nonlocal appended
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as s:
            while queue:
                _, body = queue.pop()
                t = time.perf_counter()
                async with s.post(url + "/v1/entries/batch", data=body,
                                  headers={"content-type": "application/json"}) as r:
                    js = await r.json()
                    assert r.status == 201, js
                lat.append(time.perf_counter() - t)
                appended += js["appended"]

    t0 = time.perf_counter()
    await asyncio.gather(*[client() for _ in range(clients)])
    dt = time.perf_counter() - t0
    return {"entries": appended, "seconds": round(dt, 2), "entries_per_s": round(appended / dt),
            "batch_p50_ms": round(pct(lat, 50) * 1000, 1), "batch_p99_ms": round(pct(lat, 99) * 1000, 1),
            "_leaves": leaves}


def _tile1(size: int) -> str:
    """The first level-1 tile as it stands at ``size``: full from 65,536 entries on, else partial."""
    if size < 256:
        return "/checkpoint"
    return "/tile/1/000" if size >> 8 >= 256 else f"/tile/1/000.p/{size >> 8}"


async def bench_reads(url: str, size: int, readers: int, seconds: float, pace: float | None) -> dict:
    full_tiles = max(1, size // 256)
    paths = ["/checkpoint"] + [f"/tile/0/{n:03d}" if n < 1000 else None for n in range(min(full_tiles, 999))]
    paths = [p for p in paths if p]
    tile1 = _tile1(size)
    lat: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def reader(s: aiohttp.ClientSession, r: random.Random) -> None:
        nonlocal errors
        nxt = time.perf_counter() + r.random() * (pace or 0)
        while True:
            if pace:
                await asyncio.sleep(max(0.0, nxt - time.perf_counter()))
                nxt += pace
            now = time.perf_counter()
            if now > stop:
                return
            x = r.random()
            p = "/checkpoint" if x < 0.5 else (tile1 if x < 0.6 else r.choice(paths))
            try:
                async with s.get(url + p) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            lat.append(time.perf_counter() - now)

    conn = aiohttp.TCPConnector(limit=readers + 10)
    async with aiohttp.ClientSession(connector=conn) as s:
        await asyncio.gather(*[reader(s, random.Random(i)) for i in range(readers)])
    return {"requests": len(lat), "rps": round(len(lat) / seconds), "errors": errors,
            "p50_ms": round(pct(lat, 50) * 1000, 2), "p99_ms": round(pct(lat, 99) * 1000, 2),
            "mean_ms": round(statistics.fmean(lat) * 1000, 2) if lat else None}


async def load_test(url: str, writers: int, seconds: float) -> dict:
    keys = [Key(f"load{i}") for i in range(8)]
    acked: list[tuple[int, str, bool]] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession() as s:
        for k in keys:
            async with s.post(url + "/v1/identities", json=k.registration()) as r:
                assert r.status in (200, 201)
                js = await r.json()
                acked.append((js["index"], js["leaf_hash"], js["duplicate"]))
    stop = time.perf_counter() + seconds

    async def writer(w: int) -> None:
        k = keys[w % len(keys)]
        n = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
            while time.perf_counter() < stop:
                if n % 5 == 4:
                    es = [k.entry("load.event", {"w": w, "n": n, "j": j}) for j in range(20)]
                    path, body = "/v1/entries/batch", {"entries": es}
                else:
                    path, body = "/v1/entries", k.entry("load.event", {"w": w, "n": n})
                try:
                    async with s.post(url + path, json=body) as r:
                        js = await r.json()
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                        if r.status in (200, 201):
                            res = js.get("results", [js])
                            acked.extend((x["index"], x["leaf_hash"], x["duplicate"]) for x in res)
                except aiohttp.ClientError:
                    statuses[0] = statuses.get(0, 0) + 1
                n += 1
                await asyncio.sleep(0)

    t0 = time.perf_counter()
    await asyncio.gather(*[writer(w) for w in range(writers)])
    return {"acked": acked, "statuses": statuses, "seconds": time.perf_counter() - t0}


def wrk_reads(url: str, size: int, conns: int, seconds: int, threads: int = 2) -> dict | None:
    """Closed-loop read load with wrk (C; far cheaper than a Python client), random checkpoint/tile paths."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    full = max(1, min(999, size // 256))
    paths = ["/checkpoint"] * full + [f"/tile/0/{n:03d}" for n in range(full)]
    if size >= 256:
        paths.append(_tile1(size))
    lua = Path(tempfile.mkstemp(suffix=".lua")[1])
    # requests are formatted once, up front: wrk's own cost per request stays small
    lua.write_text("paths = {" + ",".join(f'"{p}"' for p in paths) + "}\n"
                   "reqs = {}\n"
                   "init = function(args) for i, p in ipairs(paths) do reqs[i] = wrk.format('GET', p) end end\n"
                   "request = function() return reqs[math.random(#reqs)] end\n")
    r = subprocess.run([exe, f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
                       capture_output=True, text=True, check=False)
    lua.unlink()
    out: dict = {"tool": "wrk", "connections": conns}
    for line in r.stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
            v = parts[1]
            ms = float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us") else float(v[:-1]) * 1000
            out[f"p{parts[0][:-1]}_ms"] = round(ms, 2)
        elif line.startswith("Requests/sec:"):
            out["rps"] = round(float(parts[1]))
        elif "Non-2xx" in line or "Socket errors" in line:
            out.setdefault("errors", []).append(line.strip())
    return out


def timed_append(srv: Server, n_batches: int, label: str) -> dict:
    """Batched appends (batches of 1,000, 4 clients) with the server's own CPU time."""
    c0 = proc_cpu(srv.proc.pid)
    a = asyncio.run(bench_append(srv.url, n_batches, 1000, 4))
    a["server_cpu_s"] = round(proc_cpu(srv.proc.pid) - c0, 2)
    a["entries_per_server_cpu_s"] = round(a["entries"] / max(a["server_cpu_s"], 1e-9))
    # the limit for the same work (issue 21): libsodium verifying the same signatures on every core
    a["sodium_verify_all_cores_per_s"] = round(sodium_verify_per_s(a.pop("_leaves")))
    a["ratio_vs_sodium_limit"] = round(a["entries_per_s"] / a["sodium_verify_all_cores_per_s"], 3)
    print(f"append over HTTP, {label}: {a['entries_per_s']} entries/s ({a['entries']} in {a['seconds']} s, "
          f"batch p50 {a['batch_p50_ms']} ms); server used {a['server_cpu_s']} CPU-s = "
          f"{a['entries_per_server_cpu_s']} entries per server CPU-second; libsodium on every core "
          f"{a['sodium_verify_all_cores_per_s']}/s -> ratio {a['ratio_vs_sodium_limit']}")
    return a


def _wait_port(port: int) -> None:
    for _ in range(200):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def _summary(runs: list[dict]) -> dict:
    ok = [r for r in runs if r.get("p99_ms") is not None]
    return {"runs": runs,
            "p99_ms_median": round(statistics.median(r["p99_ms"] for r in ok), 2) if ok else None,
            "p99_ms_worst": max(r["p99_ms"] for r in ok) if ok else None,
            "p50_ms_median": round(statistics.median(r["p50_ms"] for r in ok), 2) if ok else None,
            "rps_median": round(statistics.median(r["rps"] for r in ok)) if ok else None}


def static_mirror_reads(ledger_dir: Path, work: Path, conns: int, seconds: int, rounds: int = 3) -> dict | None:
    """The read path off the write server: `ailedger tiles export` into a directory, served by
    `ailedger tiles serve` (the C mirror server, 1 worker) and, as the reference, by nginx (1 worker,
    the configuration `ailedger tiles nginx-conf` writes); wrk (1 thread, 200 connections that never
    pause) reads each in turn, alternating, ``rounds`` times."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if shutil.which("wrk") is None:
        return None
    from ailedger.tlog.mirror import export_tiles, nginx_conf
    from ailedger.tlog.tileserver import available

    site = work / "site"
    t = time.perf_counter()
    with Ledger.open(ledger_dir) as led:
        st = export_tiles(led, site)
    export_s = time.perf_counter() - t
    procs: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        if available():
            port = free_port()
            p = subprocess.Popen([sys.executable, "-c", "from ailedger.cli.main import main; main()", "tiles",
                                  "serve", str(site), "--listen", f"127.0.0.1:{port}", "--json"],
                                 stdout=subprocess.DEVNULL, cwd=ROOT)
            procs["tiled"] = (p, f"http://127.0.0.1:{port}")
            _wait_port(port)
        if nginx is not None:
            port = free_port()
            conf = work / "nginx.conf"
            user = None
            if os.geteuid() == 0:
                import getpass

                user = getpass.getuser()
            conf.write_text(nginx_conf(site, f"127.0.0.1:{port}", work / "ngx", workers=1, user=user))
            (work / "ngx").mkdir(exist_ok=True)
            p = subprocess.Popen([nginx, "-c", str(conf), "-g", "daemon off;"])
            procs["nginx"] = (p, f"http://127.0.0.1:{port}")
            _wait_port(port)
        runs: dict[str, list[dict]] = {k: [] for k in procs}
        for r in range(rounds):
            order = list(procs) if r % 2 == 0 else list(reversed(procs))
            for name in order:
                p, url = procs[name]
                c0 = proc_cpu(p.pid)
                w = wrk_reads(url, st["size"], conns, seconds, threads=1)
                if w is None:
                    continue
                w["server_cpu_s"] = round(proc_cpu(p.pid) - c0, 2)
                w["loadavg"] = round(os.getloadavg()[0], 2)
                runs[name].append(w)
                print(f"  round {r + 1}, {name}: {w.get('rps')} req/s, p50 {w.get('p50_ms')} ms, "
                      f"p99 {w.get('p99_ms')} ms, server CPU {w['server_cpu_s']} s", flush=True)
        out: dict = {"size": st["size"], "export_s": round(export_s, 2), "connections": conns,
                     "seconds_per_run": seconds, "wrk_threads": 1}
        for name, rs in runs.items():
            out[name] = _summary(rs)
        if runs.get("tiled") and runs.get("nginx"):
            pairs = list(zip(runs["tiled"], runs["nginx"]))
            out["ratio_rps_tiled_vs_nginx"] = round(statistics.median(a["rps"] / b["rps"] for a, b in pairs), 2)
            out["ratio_p99_tiled_vs_nginx"] = round(
                statistics.median(a["p99_ms"] / b["p99_ms"] for a, b in pairs), 2)
        if "tiled" in procs:
            out["tiled"]["paced_50ms"] = asyncio.run(bench_reads(procs["tiled"][1], st["size"], conns,
                                                                 float(seconds), 0.05))
        return out
    finally:
        for p, _ in procs.values():
            p.terminate()
            p.wait(10)


def make_ledger(d: Path, n: int) -> int:
    """A ledger of n signed entries, appended directly (for --reads-only)."""
    Ledger.init(d, origin="bench.example/reads").close()
    k = Key("reader-bench")
    datas = [json.dumps(k.registration()).encode()]
    datas += [json.dumps(k.entry("bench.event", {"i": i, "subjects": [f"sha256:{i:064x}"]})).encode()
              for i in range(n - 1)]
    with Ledger.open(d) as led:
        bad = [r for r in led.append_entries(datas) if isinstance(r, str)]
        assert not bad, bad[:3]
        led.checkpoint()
        return led.size


def check_log(ledger_dir: Path, acked: list[tuple[int, str, bool]], base: int) -> dict:
    with Ledger.open(ledger_dir) as led:
        new = [(i, h) for i, h, d in acked if not d]
        idxs = [i for i, _ in new]
        dup = len(idxs) - len(set(idxs))
        size = led.size
        expected = set(range(base, size))
        lost = len(expected - set(idxs))
        extra = len(set(idxs) - expected)
        wrong = sum(1 for i, h in new if leaf_hash(led.entry_bytes(i)).hex() != h)
        rep = led.audit(signatures=True)
    return {"size": size, "acknowledged_new": len(new), "duplicated_indices": dup, "unacknowledged_in_log": lost,
            "acknowledged_missing": extra, "wrong_content": wrong, "audit_ok": rep.ok,
            "audit_problems": len(rep.problems)}


# -- --writers-only: many small writers against pre-batched appends and the signature limit ---------------------

def bench_subject(i: int, kind: str = "sequential") -> str:
    """The subject entry ``i`` names: its number in 64 hex digits (``sequential``: each group's new ``subject:``
    terms sit side by side in the index) or a SHA-256 of it (``random``: each lands anywhere, as the digests and
    ids that real entries name do)."""
    return f"sha256:{hashlib.sha256(b'%d' % i).hexdigest() if kind == 'random' else format(i, '064x')}"


def _presign(job: tuple[int, int, int, str, str]) -> list[bytes]:
    """Worker: ``count`` signed bench.event entries (canonical bytes) by key ``seed``."""
    seed, start, count, when, kind = job
    from ailedger.encoding.records import build_entry as _build

    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"http-bench-%d" % seed).digest())
    did = did_from_public_key(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                              serialization.PublicFormat.Raw))
    return [_build("bench.event", {"i": i, "k": seed, "subjects": [bench_subject(i, kind)]}, did, when,
                   key.sign).leaf_bytes for i in range(start, start + count)]


def presign(n: int, keys: int, procs: int, offset: int = 0, subjects: str = "sequential") -> list[bytes]:
    """n entries signed by `keys` identities (round-robin blocks), signed on every core before any clock starts;
    ``subjects``: see :func:`bench_subject`."""

    when = utc_now()
    step = 2000
    jobs = [(offset + (k % keys), offset * 10_000_000 + s, min(step, n - s), when, subjects)
            for k, s in enumerate(range(0, n, step))]
    with fork_pool(procs) as pool:  # ends by close() and join(), never terminate() (bench/limits.py)
        return [e for part in pool.imap(_presign, jobs) for e in part]


def bench_key(seed: int) -> Key:
    k = Key(f"bench{seed}")
    k.key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"http-bench-%d" % seed).digest())
    pub = k.key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    k.did = did_from_public_key(pub)
    return k


async def lean_posts(url: str, path: str, bodies_per_conn: list[list[bytes]]) -> dict:
    """One keep-alive HTTP/1.1 connection per list of bodies, each posting its bodies one after the other
    (the next when the last is answered). A minimal client (asyncio streams, no per-request objects) so the
    client's share of the 2 cores stays small. Returns latencies, statuses and the acknowledged results."""
    from urllib.parse import urlsplit

    u = urlsplit(url)
    host, port = u.hostname, u.port
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            "Content-Length: ").encode()
    lat: list[float] = []
    statuses: dict[int, int] = {}
    acked: list[tuple[int, str, bool]] = []

    async def conn(bodies: list[bytes]) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        pc = time.perf_counter
        try:
            for body in bodies:
                t = pc()
                writer.write(head + str(len(body)).encode() + b"\r\n\r\n" + body)
                hdr = await reader.readuntil(b"\r\n\r\n")
                status = int(hdr[9:12])
                k = hdr.lower().find(b"content-length:")
                n = int(hdr[k + 15 : hdr.index(b"\r\n", k)])
                data = await reader.readexactly(n)
                lat.append(pc() - t)
                statuses[status] = statuses.get(status, 0) + 1
                if status in (200, 201):
                    js = json.loads(data)
                    for x in js.get("results", [js]):
                        acked.append((x["index"], x["leaf_hash"], x["duplicate"]))
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*[conn(b) for b in bodies_per_conn])
    return {"seconds": time.perf_counter() - t0, "lat": lat, "statuses": statuses, "acked": acked}


_WRK_SINGLES = r"""
-- one POST /v1/entries per pre-signed entry (one per line of the entries file), each thread its own slice;
-- every answer is written to the thread's acks file; a connection with nothing left to send idles
local first, count, n, got, out, reqs = 0, 0, 0, 0, nil, {}
id = 0
setup = function(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
end
nthreads = 0
init = function(args)
  local path, dir, threads = args[1], args[2], tonumber(args[3])
  local lines = {}
  for line in io.lines(path) do lines[#lines + 1] = line end
  local per = math.ceil(#lines / threads)
  first, count = id * per + 1, math.min(per, #lines - id * per)
  local hs = {["Content-Type"] = "application/json"}
  for i = first, first + count - 1 do reqs[#reqs + 1] = wrk.format("POST", "/v1/entries", hs, lines[i]) end
  out, out_dir = io.open(dir .. "/acks-" .. id, "w"), dir
  out:setvbuf("full", 1048576)  -- written at the end (a write per answer would take the cores from the server)
  verify = (id == 0)
  local ready = io.open(dir .. "/ready-" .. id, "w")
  ready:close()
end
request = function()
  if verify then  -- wrk calls request() once on thread 0 to check the script: not a request sent
    verify = false
    return reqs[1]
  end
  n = n + 1
  if n > count then return "" end
  return reqs[n]
end
response = function(status, headers, body)
  got = got + 1
  out:write(status, " ", body, "\n")
  if got >= count then
    out:close()
    io.open(out_dir .. "/done-" .. id, "w"):close()
    wrk.thread:stop()
  end
end
"""


def wrk_singles(url: str, entries: list[bytes], conns: int, threads: int = 1) -> dict | None:
    """The single-entry writers driven by wrk (C): ``conns`` keep-alive connections, each posting one entry,
    the next once it is answered; every answer is kept (to check the log after). wrk's own CPU per request
    is a fraction of a Python client's, so the server gets the cores (the client's CPU is reported)."""
    exe = shutil.which("wrk")
    if exe is None:
        return None
    tmp = Path(tempfile.mkdtemp(prefix="wrk-singles-"))
    try:
        (tmp / "entries").write_bytes(b"\n".join(entries) + b"\n")
        (tmp / "singles.lua").write_text(_WRK_SINGLES)
        proc = subprocess.Popen([exe, f"-t{threads}", f"-c{conns}", "-d600s", "--latency", "--timeout", "30s",
                                 "-s", str(tmp / "singles.lua"), url, "--", str(tmp / "entries"), str(tmp),
                                 str(threads)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        while sum(1 for _ in tmp.glob("ready-*")) < threads:
            if proc.poll() is not None:
                raise RuntimeError(f"wrk failed: {proc.stdout.read() if proc.stdout else ''}")
            time.sleep(0.001)
        t0 = time.perf_counter()
        c0 = tree_cpu_s(proc.pid)
        done = [tmp / f"done-{k}" for k in range(threads)]
        while not all(f.exists() for f in done) and proc.poll() is None:
            time.sleep(0.002)
        dt = time.perf_counter() - t0
        client_cpu = tree_cpu_s(proc.pid) - c0
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        text = proc.communicate(timeout=30)[0]
        lat = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("50%", "75%", "90%", "99%"):
                v = parts[1]
                ms = (float(v[:-2]) if v.endswith("ms") else float(v[:-2]) / 1000 if v.endswith("us")
                      else float(v[:-1]) * 1000)
                lat[f"p{parts[0][:-1]}_ms"] = round(ms, 2)
        statuses: dict[int, int] = {}
        acked: list[tuple[int, str, bool]] = []
        for f in tmp.glob("acks-*"):
            for line in f.read_bytes().splitlines():
                st, _, body = line.partition(b" ")
                status = int(st)
                statuses[status] = statuses.get(status, 0) + 1
                if status in (200, 201):
                    js = json.loads(body)
                    acked.append((js["index"], js["leaf_hash"], js["duplicate"]))
        return {"seconds": dt, "statuses": statuses, "acked": acked, "client": "wrk", "client_cpu_s": client_cpu,
                **lat}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def singles_run(client: str, url: str, entries: list[bytes], per: list[list[bytes]], threads: int = 1) -> dict:
    """The single-entry writers (len(per) connections, one request in flight each) with the chosen client:
    ``c`` (bench/singles_client.c, compiled here with cc; falls back to wrk, then to the Python client),
    ``wrk`` (falls back to the Python client) or ``python``. Every fallback is printed and kept as
    ``client_note``. ``threads``: the C client's threads. Returns seconds, statuses, acked, p50_ms/p99_ms, client
    and (c, wrk) client_cpu_s."""
    conns = len(per)
    notes: list[str] = []
    if client == "c":
        import singles_client

        exe, why = singles_client.build()
        if exe is not None:
            r = singles_client.run(exe, url, entries, conns, threads=threads)
            r.pop("results")
            r.update(client="c", client_cpu_s=r["cpu_s"], p50_ms=round(r["p50_ms"], 2), p99_ms=round(r["p99_ms"], 2))
            return r
        notes.append(f"C client unavailable ({why}): wrk instead")
        client = "wrk"
    if client == "wrk":
        r = wrk_singles(url, entries, conns)
        if r is not None:
            if notes:
                print(f"  note: {notes[-1]}", flush=True)
                r["client_note"] = "; ".join(notes)
            return r
        notes.append("wrk is not installed: the Python client instead (its CPU shares the cores with the server)")
    for n in notes:
        print(f"  note: {n}", flush=True)
    r = asyncio.run(lean_posts(url, "/v1/entries", per))
    r.update(client="python", p50_ms=round(pct(r["lat"], 50) * 1000, 2), p99_ms=round(pct(r["lat"], 99) * 1000, 2))
    if notes:
        r["client_note"] = "; ".join(notes)
    return r


def writer_entries(url: str, n_batch: int, n_single: int, procs: int, offset: int,
                   subjects: str = "sequential") -> tuple[list[bytes], list[bytes]]:
    """The pre-batched figure's entries (4 keys) and the single-entry writers' (8 keys), the keys registered at
    ``url`` first, everything signed on every core before any clock starts; ``subjects``: see :func:`bench_subject`."""
    keys_b = [bench_key(offset + k) for k in range(4)]
    keys_s = [bench_key(offset + 100 + k) for k in range(8)]
    import httpx

    for k in keys_b + keys_s:
        r = httpx.post(url + "/v1/identities", json=k.registration(), timeout=30)
        assert r.status_code in (200, 201), r.text
    return presign(n_batch, 4, procs, offset, subjects), presign(n_single, 8, procs, offset + 100, subjects)


def batched_figure(srv: Server, batch_entries: list[bytes], pg: tuple[str, str] | None = None
                   ) -> tuple[dict, list[tuple[int, str, bool]]]:
    """The pre-batched figure: ``batch_entries`` posted in batches of 1,000 from 4 keep-alive connections
    (:func:`lean_posts`, in this process), with the server process tree's CPU and this process's (the client's),
    and with ``pg`` (dsn, schema) the PostgreSQL backends' (``pg_backend_cpu_us_per_entry``).
    Returns the figure and the acknowledged (index, leaf_hash, duplicate)."""
    n_batch = len(batch_entries)
    bodies = [b'{"entries":[' + b",".join(batch_entries[i : i + 1000]) + b"]}" for i in range(0, n_batch, 1000)]
    per = [bodies[c::4] for c in range(4)]
    c0, k0, b0 = proc_cpu(srv.proc.pid), time.process_time(), pg_backend_cpu(pg)
    r = asyncio.run(lean_posts(srv.url, "/v1/entries/batch", per))
    cpu, client_cpu, bcpu = proc_cpu(srv.proc.pid) - c0, time.process_time() - k0, pg_cpu_since(pg, b0)
    assert set(r["statuses"]) == {201}, r["statuses"]
    fig = {"entries": len(r["acked"]), "seconds": round(r["seconds"], 3),
           "entries_per_s": round(len(r["acked"]) / r["seconds"]),
           "batch_p50_ms": round(pct(r["lat"], 50) * 1000, 1), "batch_p99_ms": round(pct(r["lat"], 99) * 1000, 1),
           "server_cpu_s": round(cpu, 2), "client_cpu_s": round(client_cpu, 3)}
    fig["server_cpu_us_per_entry"] = round(fig["server_cpu_s"] / fig["entries"] * 1e6, 1)
    if bcpu is not None:
        fig["pg_backend_cpu_us_per_entry"] = round(bcpu / max(1, len(r["acked"])) * 1e6, 1)
    return fig, list(r["acked"])


def singles_figure(srv: Server, single_entries: list[bytes], writers: int, client: str, front: str,
                   client_threads: int = 1, pg: tuple[str, str] | None = None) -> tuple[dict, list[tuple[int, str, bool]]]:
    """The single-entry writers' figure: ``writers`` closed-loop connections, each posting one entry and the next
    once it is answered (:func:`singles_run`), to the ingest port when the server has one and ``front`` is
    ``ingest``, else to the API port; with the server process tree's CPU and the client's (and with ``pg``
    the PostgreSQL backends', as :func:`batched_figure`)."""
    n_single = len(single_entries)
    per = [[single_entries[i] for i in range(c, n_single, writers)] for c in range(writers)]
    c0, b0 = proc_cpu(srv.proc.pid), pg_backend_cpu(pg)
    s_url = getattr(srv, "ingest_url", None) or srv.url  # --singles-front ingest: the ingest port
    r = singles_run(client, s_url, single_entries, per, client_threads)
    cpu, bcpu = proc_cpu(srv.proc.pid) - c0, pg_cpu_since(pg, b0)
    assert set(r["statuses"]) <= {200, 201}, r["statuses"]
    fig = {"writers": writers, "client": r["client"], "front": front, "entries": len(r["acked"]),
           "seconds": round(r["seconds"], 3), "entries_per_s": round(len(r["acked"]) / r["seconds"]),
           "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"], "statuses": r["statuses"], "server_cpu_s": round(cpu, 2)}
    if "client_cpu_s" in r:
        fig["client_cpu_us_per_entry"] = round(r["client_cpu_s"] / max(1, len(r["acked"])) * 1e6, 1)
    if r.get("client_note"):
        fig["client_note"] = r["client_note"]
    if bcpu is not None:
        fig["pg_backend_cpu_us_per_entry"] = round(bcpu / max(1, len(r["acked"])) * 1e6, 1)
    fig["server_cpu_us_per_entry"] = round(fig["server_cpu_s"] / fig["entries"] * 1e6, 1)
    return fig, list(r["acked"])


def writers_phase(srv: Server, ledger_dir: Path, label: str, args: argparse.Namespace, procs: int,
                  offset: int, pg: tuple[str, str] | None = None) -> dict:
    """On one store: (1) pre-batched appends, batches of 1,000 from 4 connections; (2) 50 writers each posting
    single entries; (3) libsodium on all cores over the same entries. All entries signed before the clocks start.
    ``pg`` (dsn, schema): the PostgreSQL backends' CPU per entry is reported too (``pg_backend_cpu_us_per_entry``)."""
    n_batch = args.writer_entries
    n_single = args.single_entries or args.writer_entries
    url = srv.url
    batch_entries, single_entries = writer_entries(url, n_batch, n_single, procs, offset, args.subjects)
    out: dict = {"store": label, "subjects": args.subjects}
    # (1) pre-batched
    out["batched"], acked = batched_figure(srv, batch_entries, pg)
    # (2) 50 writers, single entries
    w = args.load_writers
    out["singles"], acked_s = singles_figure(srv, single_entries, w, args.client, args.singles_front,
                                             args.client_threads, pg)
    acked += acked_s
    # (2b) the HTTP floor: the same 50 connections posting a body the server refuses after reading and parsing it
    # (400, no signature check, no write): what one request costs before any of the write path
    per = [[b"{}"] * (n_single // w // 2) for _ in range(w)]
    c0 = proc_cpu(srv.proc.pid)
    r = asyncio.run(lean_posts(url, "/v1/entries/batch", per))
    cpu = proc_cpu(srv.proc.pid) - c0
    n_floor = sum(r["statuses"].values())
    out["http_floor"] = {"requests": n_floor, "requests_per_s": round(n_floor / r["seconds"]),
                         "server_cpu_us_per_request": round(cpu / n_floor * 1e6, 1),
                         "p50_ms": round(pct(r["lat"], 50) * 1000, 2), "statuses": r["statuses"]}
    # (3) the limit, same run, same entries
    all_rate, all_cpu = sodium_all_cores(batch_entries + single_entries, procs)
    out["sodium_verify_all_cores_per_s"] = round(all_rate)
    # the same limit in CPU terms (load-independent): CPU-us of one libsodium verify against server CPU-us per entry
    out["sodium_cpu_us_per_verify"] = round(sodium_cpu_us_per_verify(batch_entries), 1)
    out["cpu_ratio_batched_vs_sodium"] = round(out["sodium_cpu_us_per_verify"] / out["batched"]["server_cpu_us_per_entry"], 3)
    # and against one verify's CPU while every core verifies (the server's condition: all cores busy), same run
    out["sodium_cpu_us_per_verify_all_cores"] = round(all_cpu, 1)
    out["cpu_ratio_batched_vs_sodium_all_cores"] = round(all_cpu / out["batched"]["server_cpu_us_per_entry"], 3)
    out["cpu_ratio_singles_vs_batched"] = round(out["batched"]["server_cpu_us_per_entry"]
                                                / out["singles"]["server_cpu_us_per_entry"], 3)
    b, s_ = out["batched"]["entries_per_s"], out["singles"]["entries_per_s"]
    out["ratio_singles_vs_batched"] = round(s_ / b, 3)
    out["ratio_batched_vs_sodium_limit"] = round(b / out["sodium_verify_all_cores_per_s"], 3)
    out["acked"] = acked
    print(f"{label}: pre-batched {b} entries/s (batch p50 {out['batched']['batch_p50_ms']} ms); {w} writers of single "
          f"entries (to the {args.singles_front} port, client {out['singles']['client']} "
          f"{out['singles'].get('client_cpu_us_per_entry', '?')} CPU-us/request) {s_} entries/s, p50 {out['singles']['p50_ms']} ms, p99 {out['singles']['p99_ms']} ms; libsodium "
          f"verify on {procs} cores {out['sodium_verify_all_cores_per_s']}/s -> singles/batched "
          f"{out['ratio_singles_vs_batched']}, batched/limit {out['ratio_batched_vs_sodium_limit']}; server CPU per entry: "
          f"batched {out['batched']['server_cpu_us_per_entry']} us, single {out['singles']['server_cpu_us_per_entry']} us, "
          f"HTTP floor (a request refused after parsing) {out['http_floor']['server_cpu_us_per_request']} us "
          f"({out['http_floor']['requests_per_s']} req/s); libsodium {out['sodium_cpu_us_per_verify']} CPU-us per verify "
          f"-> CPU ratios: batched/limit {out['cpu_ratio_batched_vs_sodium']}, singles/batched (server) "
          f"{out['cpu_ratio_singles_vs_batched']}; libsodium with every core verifying "
          f"{out['sodium_cpu_us_per_verify_all_cores']} CPU-us per verify -> batched/limit "
          f"{out['cpu_ratio_batched_vs_sodium_all_cores']}", flush=True)
    return out


def writers_only(args: argparse.Namespace, work: Path, out: dict) -> None:
    procs = os.cpu_count() or 2
    stores: list[tuple[str, dict | None]] = [] if args.no_sqlite else [("sqlite", None)]
    if not args.no_pg:
        stores.append(("postgres", {"store": "postgres", "dsn": args.pg_dsn, "schema": "bench_" + uuid.uuid4().hex[:12]}))
    for rnd in range(args.rounds):
        for label, store in stores:
            d = work / f"{label}-{rnd}"
            try:
                Ledger.init(d, origin=f"bench.example/{label}", store=store).close()
            except Exception as exc:  # noqa: BLE001
                print(f"{label} unavailable, skipped: {exc}")
                continue
            extra = ["--commit-window-ms", str(args.commit_window_ms)] if args.commit_window_ms is not None else []
            ingest_port = None
            if args.singles_front == "ingest":  # the compiled write front beside the API (serve --ingest-port)
                ingest_port = free_port()
                extra += ["--ingest-port", str(ingest_port)]
            if store is not None:
                pg_checkpoint(args.pg_dsn)
            srv = Server(d, args.workers, extra)
            srv.ingest_url = f"http://127.0.0.1:{ingest_port}" if ingest_port else None
            try:
                res = writers_phase(srv, d, label, args, procs, offset=1000 * rnd + (0 if label == "sqlite" else 500),
                                    pg=(args.pg_dsn, store["schema"]) if store is not None else None)
            finally:
                srv.stop()
            acked = res.pop("acked")
            chk = check_log(d, acked, 12)
            res["check"] = chk
            print(f"  log after: {chk['acknowledged_new']} acknowledged, duplicated {chk['duplicated_indices']}, "
                  f"lost {chk['acknowledged_missing']}, audit ok {chk['audit_ok']}", flush=True)
            out.setdefault(f"writers_{label}", []).append(res)
            if store is not None:
                drop_schema(args.pg_dsn, store["schema"])
                store["schema"] = "bench_" + uuid.uuid4().hex[:12]



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    ap.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres password=root")
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--no-sqlite", action="store_true", help="with --writers-only: the PostgreSQL figures only")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--load-seconds", type=float, default=60.0)
    ap.add_argument("--load-writers", type=int, default=50)
    ap.add_argument("--readers", type=int, default=200)
    ap.add_argument("--read-seconds", type=float, default=10.0)
    ap.add_argument("--read-rounds", type=int, default=3,
                    help="saturation rounds per mirror server (tiles serve and nginx, alternating)")
    ap.add_argument("--reads-only", action="store_true",
                    help="only the read figures, on a ledger of --reads-size entries made directly")
    ap.add_argument("--reads-size", type=int, default=60004)
    ap.add_argument("--writers-only", action="store_true",
                    help="only the write figures: pre-batched appends, --load-writers writers of single entries and "
                         "the libsodium verify limit on all cores, per store, --rounds times")
    ap.add_argument("--writer-entries", type=int, default=30000, help="entries per write figure (--writers-only)")
    ap.add_argument("--single-entries", type=int, default=None,
                    help="entries of the single-entry writers' figure (default: --writer-entries); a smaller number "
                         "shortens a run whose point is the pre-batched figure")
    ap.add_argument("--rounds", type=int, default=1, help="repetitions of the --writers-only figures")
    ap.add_argument("--commit-window-ms", type=float, default=None, help="serve --commit-window-ms (default: serve's)")
    ap.add_argument("--client", choices=("c", "wrk", "python"), default="c",
                    help="the single-entry writers' client: c (bench/singles_client.c compiled with cc: a few "
                         "CPU-us per request; the default, falls back to wrk, then python, with a note), wrk "
                         "with a Lua script (20-25 CPU-us per request) or the minimal asyncio client")
    ap.add_argument("--client-threads", type=int, default=1,
                    help="threads of the C client (--client c), each with its own slice of the connections")
    ap.add_argument("--singles-front", choices=("api", "ingest"), default="api",
                    help="where the single-entry writers post: the API port, or the compiled write front "
                         "(serve --ingest-port)")
    ap.add_argument("--subjects", choices=("sequential", "random"), default="sequential",
                    help="--writers-only: each entry's own subject, its number in hex (sequential: new index terms "
                         "side by side) or a SHA-256 of it (random: new index terms anywhere in the index)")
    args = ap.parse_args()
    n_batches = 8 if args.quick else 60
    load_s = 5.0 if args.quick else args.load_seconds
    work = Path(tempfile.mkdtemp(prefix="httpbench-"))
    from ailedger.encoding.records import FAST_VERIFY  # the servers inherit this environment

    out: dict = {"bench": "http", "cpus": os.cpu_count(), "workers": args.workers, "singles_front": args.singles_front,
                 "loadavg_start": os.getloadavg()[0], "entry_checker": "c" if FAST_VERIFY else "python"}
    print(f"http bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, {args.workers} workers")
    try:
        if args.writers_only:
            writers_only(args, work, out)
            return
        if args.reads_only:
            d = work / "reads"
            t = time.perf_counter()
            size = make_ledger(d, args.reads_size)
            print(f"ledger of {size} entries made in {time.perf_counter() - t:.1f} s")
            srv = Server(d, args.workers)
            try:
                closed_reads_from_serve(srv, size, args, out)
            finally:
                srv.stop()
            mirror_reads(d, work, args, out)
            return
        # --- SQLite ---------------------------------------------------------------------
        d = work / "sqlite"
        Ledger.init(d, origin="bench.example/sqlite").close()
        srv = Server(d, args.workers)
        try:
            a = out["append_sqlite"] = timed_append(srv, n_batches, "SQLite")
            size = a["entries"] + 4
            closed_reads_from_serve(srv, size, args, out)
            for mode, pace in (("closed", None), ("paced_50ms", 0.05), ("paced_100ms", 0.1), ("paced_1s", 1.0)):
                c0 = proc_cpu(srv.proc.pid)
                r = asyncio.run(bench_reads(srv.url, size, args.readers, args.read_seconds, pace))
                r["server_cpu_s"] = round(proc_cpu(srv.proc.pid) - c0, 2)
                out[f"read_{mode}"] = r
                print(f"reads, {args.readers} readers, {mode}: {r['rps']} req/s, p50 {r['p50_ms']} ms, "
                      f"p99 {r['p99_ms']} ms, errors {r['errors']}")
            base = size
            lt = asyncio.run(load_test(srv.url, args.load_writers, load_s))
        finally:
            srv.stop()
        chk = check_log(d, lt["acked"], base)
        mirror_reads(d, work, args, out)
        out["load_sqlite"] = {"seconds": round(lt["seconds"], 1), "writers": args.load_writers,
                              "statuses": lt["statuses"], **chk,
                              "entries_per_s": round(chk["acknowledged_new"] / lt["seconds"])}
        print(f"load test SQLite: {args.load_writers} writers x {lt['seconds']:.0f} s: {chk['acknowledged_new']} "
              f"entries acknowledged, statuses {lt['statuses']}, duplicated {chk['duplicated_indices']}, "
              f"lost {chk['acknowledged_missing']}, audit ok {chk['audit_ok']}")
        # --- PostgreSQL -----------------------------------------------------------------
        if not args.no_pg:
            schema = "bench_" + uuid.uuid4().hex[:12]
            d = work / "pg"
            try:
                Ledger.init(d, origin="bench.example/pg",
                            store={"store": "postgres", "dsn": args.pg_dsn, "schema": schema}).close()
            except Exception as exc:  # noqa: BLE001
                print(f"PostgreSQL unavailable, skipped: {exc}")
                out["append_postgres"] = None
            else:
                srv = Server(d, args.workers)
                try:
                    a = out["append_postgres"] = timed_append(srv, n_batches, "PostgreSQL")
                    base = a["entries"] + 4
                    lt = asyncio.run(load_test(srv.url, args.load_writers, load_s))
                finally:
                    srv.stop()
                chk = check_log(d, lt["acked"], base)
                out["load_postgres"] = {"seconds": round(lt["seconds"], 1), "writers": args.load_writers,
                                        "statuses": lt["statuses"], **chk,
                                        "entries_per_s": round(chk["acknowledged_new"] / lt["seconds"])}
                print(f"load test PostgreSQL: {args.load_writers} writers x {lt['seconds']:.0f} s: "
                      f"{chk['acknowledged_new']} entries acknowledged, statuses {lt['statuses']}, duplicated "
                      f"{chk['duplicated_indices']}, lost {chk['acknowledged_missing']}, audit ok {chk['audit_ok']}")
                try:
                    import psycopg

                    with psycopg.connect(args.pg_dsn, autocommit=True) as con:
                        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                except Exception:  # noqa: BLE001, S110 - best-effort clean-up of the bench's own schema
                    pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
        finish(out)


def closed_reads_from_serve(srv: Server, size: int, args: argparse.Namespace, out: dict) -> None:
    c0 = proc_cpu(srv.proc.pid)
    w = wrk_reads(srv.url, size, args.readers, int(args.read_seconds))
    if w is not None:
        w["server_cpu_s"] = round(proc_cpu(srv.proc.pid) - c0, 2)
        out["read_wrk_closed"] = w
        print(f"reads from `ailedger serve` with wrk, {args.readers} connections, closed loop: {w.get('rps')} "
              f"req/s, p50 {w.get('p50_ms')} ms, p99 {w.get('p99_ms')} ms")


def mirror_reads(d: Path, work: Path, args: argparse.Namespace, out: dict) -> None:
    print(f"reads from the static tile mirror: wrk 1 thread, {args.readers} connections that never pause, "
          f"{args.read_rounds} x {int(args.read_seconds)} s per server")
    sm = static_mirror_reads(d, work, args.readers, int(args.read_seconds), args.read_rounds)
    if sm is None:
        print("  wrk is not installed (scripts/setup.d/25-nginx.sh installs it): skipped")
        return
    out["read_static_mirror"] = sm
    for name, label in (("tiled", "ailedger tiles serve"), ("nginx", "nginx (reference)")):
        if sm.get(name):
            m = sm[name]
            print(f"{label}: p99 median {m['p99_ms_median']} ms, worst {m['p99_ms_worst']} ms; p50 median "
                  f"{m['p50_ms_median']} ms; {m['rps_median']} req/s median")
    if "ratio_rps_tiled_vs_nginx" in sm:
        print(f"tiles serve vs nginx, same run: {sm['ratio_rps_tiled_vs_nginx']}x the requests/s, "
              f"{sm['ratio_p99_tiled_vs_nginx']}x the p99")
    if sm.get("tiled", {}).get("paced_50ms"):
        print(f"tiles serve, {args.readers} readers every 50 ms: p99 {sm['tiled']['paced_50ms']['p99_ms']} ms")


def finish(out: dict) -> None:
    out["loadavg_end"] = os.getloadavg()[0]
    out["targets"] = {"append_eps": 5000, "read_p99_ms": 5, "readers": 200}
    ratios = {}
    for k in ("append_sqlite", "append_postgres"):
        if out.get(k):
            ratios[f"{k}_vs_target"] = round(out[k]["entries_per_s"] / 5000, 2)
    for k in ("read_wrk_closed", "read_paced_50ms", "read_paced_100ms", "read_paced_1s"):
        if out.get(k) and out[k].get("p99_ms"):
            ratios[f"{k}_p99_vs_target"] = round(out[k]["p99_ms"] / 5, 2)
    sm = out.get("read_static_mirror") or {}
    for name in ("tiled", "nginx"):
        if sm.get(name) and sm[name].get("p99_ms_median") is not None:
            ratios[f"mirror_{name}_p99_median_vs_target"] = round(sm[name]["p99_ms_median"] / 5, 2)
            ratios[f"mirror_{name}_p99_worst_vs_target"] = round(sm[name]["p99_ms_worst"] / 5, 2)
    for k in ("ratio_rps_tiled_vs_nginx", "ratio_p99_tiled_vs_nginx"):
        if k in sm:
            ratios[k] = sm[k]
    for label in ("sqlite", "postgres"):
        runs = out.get(f"writers_{label}")
        if runs:  # --writers-only: one value per round (targets: both >= 0.8)
            ratios[f"singles_vs_batched_{label}"] = [r["ratio_singles_vs_batched"] for r in runs]
            ratios[f"batched_vs_sodium_limit_{label}"] = [r["ratio_batched_vs_sodium_limit"] for r in runs]
            ratios[f"singles_p99_ms_{label}"] = [r["singles"]["p99_ms"] for r in runs]
            ratios[f"cpu_batched_vs_sodium_{label}"] = [r["cpu_ratio_batched_vs_sodium"] for r in runs]
            ratios[f"cpu_batched_vs_sodium_all_cores_{label}"] = [r["cpu_ratio_batched_vs_sodium_all_cores"] for r in runs]
            ratios[f"cpu_singles_vs_batched_{label}"] = [r["cpu_ratio_singles_vs_batched"] for r in runs]
            ratios[f"singles_client_cpu_us_per_request_{label}"] = [r["singles"].get("client_cpu_us_per_entry")
                                                                    for r in runs]
            if any("pg_backend_cpu_us_per_entry" in r["singles"] for r in runs):  # PostgreSQL's own CPU
                for phase in ("singles", "batched"):
                    ratios[f"{phase}_pg_backend_cpu_us_per_entry_{label}"] = [
                        r[phase].get("pg_backend_cpu_us_per_entry") for r in runs]
            out["targets"].update({"singles_vs_batched": 0.8, "batched_vs_sodium_limit": 0.8, "singles_p99_ms": 50})
    out["ratios"] = ratios
    print(json.dumps(out, separators=(",", ":")))


if __name__ == "__main__":
    main()
