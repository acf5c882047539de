"""Where a single entry's CPU goes on the ingest port (``serve --ingest-port``), thread by thread.

An API and its ingest front in this process, on a fresh ledger (SQLite, or a throw-away PostgreSQL schema),
then one of:

* ``--mode http``: 50 (``--writers``) wrk connections post pre-signed single entries, each the next once
  answered (bench/http_bench.py's wrk client); printed: entries/s, wrk's p50/p99, this process's CPU per entry
  and each thread's (``/proc/self/task``): the checking thread and its helper (``ailedger-sigchk``, the C
  thread that checks half of a large piece's signatures; a Python thread in older trees), the committing
  thread, the C loop (a thread nobody names: "C-or-other"), and MainThread (this script waiting for wrk: not
  the server's work).
* ``--mode inproc``: no network; groups of ``--group`` entries through ``IngestFront.check`` and
  ``IngestFront.commit`` on this thread (no helper split): thread CPU per entry of each (the check is
  mostly libsodium's verify, the commit mostly the store's transaction).

``--src DIR`` measures the ailedger package under DIR (e.g. another worktree's src, for an A/B from one copy
of this script). Machine-noise: alternate A and B in the same minutes.

    python bench/ingest_threads_bench.py --store sqlite --entries 11000
    python bench/ingest_threads_bench.py --mode inproc --src /other/tree/src
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def thread_cpu() -> dict[int, float]:
    """CPU seconds (user + system) of each thread of this process, by native id."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for t in os.listdir("/proc/self/task"):
        try:
            f = Path(f"/proc/self/task/{t}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(t)] = (int(f[11]) + int(f[12])) / tick
    return out


def c_thread_name(tid: int) -> str:
    """A thread Python does not name: its own name when the C code gave it one (``_speedups``' signature helper:
    "ailedger-sigchk"), else "C-or-other" (the front's C loop)."""
    try:
        comm = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
    except OSError:
        return "C-or-other"
    return comm if comm.startswith("ailedger-") else "C-or-other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("http", "inproc"), default="http")
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres password=root")
    ap.add_argument("--entries", type=int, default=11000, help="entries signed (http: the first 1,000 warm up)")
    ap.add_argument("--writers", type=int, default=50)
    ap.add_argument("--group", type=int, default=50, help="entries per group (--mode inproc)")
    ap.add_argument("--port", type=int, default=0, help="the ingest port (0: any free one)")
    ap.add_argument("--src", default=str(ROOT / "src"), help="the ailedger package measured (its parent folder)")
    ap.add_argument("--subjects", choices=("sequential", "random"), default="sequential",
                    help="each entry's own subject: its number in hex or a SHA-256 of it (http_bench.bench_subject)")
    args = ap.parse_args()
    sys.path.insert(0, args.src)
    pkg = importlib.import_module("ailedger")  # first, from --src: every ailedger module comes from there
    sys.path.insert(1, str(ROOT / "bench"))
    from http_bench import bench_key, presign, wrk_singles  # type: ignore[import-not-found]
    from starlette.testclient import TestClient

    from ailedger.http import ingest_front
    from ailedger.http.app import ServeConfig, create_app
    from ailedger.tlog.ledger import Ledger

    d = Path(tempfile.mkdtemp(prefix="ingest-threads-")) / "ledger"
    store = None
    if args.store == "postgres":
        store = {"store": "postgres", "dsn": args.pg_dsn, "schema": "ithreads_" + uuid.uuid4().hex[:10]}
    Ledger.init(d, origin="bench.example/ingest-threads", store=store).close()
    keys = [bench_key(100 + k) for k in range(8)]
    entries = presign(args.entries, 8, os.cpu_count() or 2, 100, args.subjects)
    out: dict[str, Any] = {"mode": args.mode, "store": args.store, "subjects": args.subjects,
                           "package": str(Path(pkg.__file__ or "").parent),
                           "loadavg_start": round(os.getloadavg()[0], 2)}
    try:
        with Ledger.open(d) as led:
            app = create_app(led, ServeConfig(open_registration=True, max_inflight=4096))
            tc = TestClient(app)
            for k in keys:
                r = tc.post("/v1/identities", json=k.registration())
                assert r.status_code in (200, 201), r.text
            front = ingest_front.IngestFront(app.api, "127.0.0.1", args.port)  # type: ignore[attr-defined]
            if args.mode == "inproc":
                ingest_front._SPLIT = 10**9  # one thread: the CPU of the work itself
                groups = [[(i, entries[i]) for i in range(a, min(args.entries, a + args.group))]
                          for a in range(0, args.entries, args.group)]
                t_check = t_commit = 0.0
                n = 0
                for k, grp in enumerate(groups):
                    t0 = time.thread_time()
                    checked = front.check(grp)
                    t1 = time.thread_time()
                    answers = front.commit([checked])
                    t2 = time.thread_time()
                    assert all(a[1] == 201 for a in answers), answers[:2]
                    if k >= len(groups) // 5:  # the first fifth warms up
                        t_check += t1 - t0
                        t_commit += t2 - t1
                        n += len(grp)
                front.sock.close()
                out.update(group=args.group, entries=n, check_cpu_us_per_entry=round(t_check / n * 1e6, 2),
                           commit_cpu_us_per_entry=round(t_commit / n * 1e6, 2))
            else:
                front.start()
                try:
                    base = f"http://127.0.0.1:{front.port}"
                    wrk_singles(base, entries[:1000], args.writers)  # warm-up
                    c0, p0 = thread_cpu(), time.process_time()
                    r = wrk_singles(base, entries[1000:], args.writers)
                    c1, p1 = thread_cpu(), time.process_time()
                    if r is None:
                        raise SystemExit("wrk is not installed (scripts/setup.d/25-nginx.sh installs it)")
                    names = {t.native_id: t.name for t in threading.enumerate()}
                    m = len(r["acked"])
                    per: dict[str, float] = {}
                    for tid, v in c1.items():
                        name = names.get(tid) or c_thread_name(tid)
                        per[name] = per.get(name, 0.0) + v - c0.get(tid, 0.0)
                    out.update(writers=args.writers, entries=m, entries_per_s=round(m / r["seconds"]),
                               p50_ms=r.get("p50_ms"), p99_ms=r.get("p99_ms"), statuses=r["statuses"],
                               process_cpu_us_per_entry=round((p1 - p0) / m * 1e6, 1),
                               client_cpu_us_per_entry=round(r["client_cpu_s"] / m * 1e6, 1),
                               thread_cpu_us_per_entry={k: round(v / m * 1e6, 1) for k, v in
                                                        sorted(per.items(), key=lambda x: -x[1]) if v > 0.001},
                               groups=front.stats["groups"], c_loop=front.c_stats())
                finally:
                    front.stop()
    finally:
        if store is not None:
            import psycopg

            with psycopg.connect(args.pg_dsn, autocommit=True) as con:
                con.execute(f'DROP SCHEMA IF EXISTS "{store["schema"]}" CASCADE')
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
