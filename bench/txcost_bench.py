"""Issue 21 (lane txcost): the fixed CPU cost of one append transaction, in process.

For each store (SQLite; PostgreSQL when --pg-dsn reaches a server) and each group size G (1, 10, 50, 200),
the same number of pre-signed entries is appended with ``Ledger.append_entries(chunk, parallel=False)``, one
call (one group, one durable transaction with its checkpoint) per G entries, and the process CPU time (every
thread: the caller's checks and the committing thread's transaction) is divided per entry and per group.
Reference, measured in the same run on a fresh log of the same store: the same number of entries appended
as one batch (one call, one transaction), the least CPU the same essential work takes on this path.
Fixed cost per group = (CPU per entry of groups of G - CPU per entry of the one batch) * G.

Usage: PYTHONPATH=src .venv/bin/python bench/txcost_bench.py [--n 1000] [--rounds 3] [--pg-dsn DSN] [--no-pg]
Every figure is printed beside its reference; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.tlog.ledger import Ledger

GROUPS = (1, 10, 50, 200)


def make_entries(n: int, tag: str) -> list[bytes]:
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"txcost-bench").digest())
    did = did_from_public_key(key.public_key().public_bytes_raw())
    return [build_entry("model.eval", {"model": "bench-net", "run": i, "tag": tag, "score_bp": i % 10000,
                                       "dataset": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()},
                        did, "2026-12-07T00:00:00.000Z", key.sign).leaf_bytes for i in range(n)]


def new_ledger(tmp: Path, store: dict[str, Any] | None) -> Ledger:
    d = tmp / uuid.uuid4().hex[:8]
    led = Ledger.init(d, "bench.example/txcost", store=dict(store) if store else None)
    led.clock = lambda: time.mktime((2026, 12, 7, 0, 0, 0, 0, 0, 0)) - time.timezone  # entries' own date
    led.time_skew = 1e9
    return led


def run_groups(led: Ledger, entries: list[bytes], g: int) -> tuple[float, float]:
    """(process CPU seconds, wall seconds) to append ``entries`` in calls of ``g``."""
    chunks = [entries[i : i + g] for i in range(0, len(entries), g)]
    c0, w0 = time.process_time(), time.perf_counter()
    for c in chunks:
        res = led.append_entries(c, parallel=False)
        if any(isinstance(r, str) for r in res):
            raise SystemExit(f"refused: {[r for r in res if isinstance(r, str)][:1]}")
    return time.process_time() - c0, time.perf_counter() - w0


def bench_store(label: str, store: Callable[[], dict[str, Any] | None], tmp: Path, n: int, rounds: int,
                groups: tuple[int, ...]) -> dict[str, Any]:
    """``store()`` gives the config of a fresh store (each log in its own)."""
    out: dict[str, Any] = {}
    per: dict[str, list[float]] = {"batch": []}
    for g in groups:
        per[str(g)] = []
    warm = make_entries(200, f"{label}-warm")
    for r in range(rounds):
        # each size on its own fresh log, the one-batch reference first and again each round (same run)
        for g in ("batch", *groups):
            led = new_ledger(tmp, store())
            try:
                run_groups(led, warm, 50)  # warm the store, the code paths and the caches
                entries = make_entries(n, f"{label}-{r}-{g}")
                cpu, _wall = run_groups(led, entries, n if g == "batch" else int(g))
                per[str(g)].append(cpu / n * 1e6)
            finally:
                if led._committer is not None:
                    led._committer.close()
                led.store.close()
    ref = statistics.median(per["batch"])
    out["batch_cpu_us_per_entry"] = round(ref, 1)
    print(f"  {label}: one batch of {n}: {ref:.1f} CPU-us per entry (reference)")
    for g in groups:
        us = statistics.median(per[str(g)])
        fixed = (us - ref) * g
        out[f"g{g}"] = {"cpu_us_per_entry": round(us, 1), "cpu_us_per_group": round(us * g, 1),
                        "fixed_us_per_group": round(fixed, 1), "ratio_vs_batch": round(us / ref, 2)}
        print(f"  {label}: groups of {g:>3}: {us:7.1f} CPU-us per entry, {us * g:8.1f} per group, "
              f"fixed {fixed:7.1f} per group; {us / ref:.2f} x the one batch")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="entries per group size and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--groups", default=",".join(map(str, GROUPS)))
    ap.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres")
    ap.add_argument("--no-pg", action="store_true")
    args = ap.parse_args()
    groups = tuple(int(x) for x in args.groups.split(","))
    print(f"txcost bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, n={args.n}, "
          f"rounds={args.rounds} (medians)")
    res: dict[str, Any] = {"n": args.n, "rounds": args.rounds, "loadavg_start": round(os.getloadavg()[0], 2)}
    tmp = Path(tempfile.mkdtemp(prefix="txcost-"))
    schemas: list[str] = []
    try:
        res["sqlite"] = bench_store("sqlite", lambda: None, tmp, args.n, args.rounds, groups)
        if not args.no_pg:
            try:
                import psycopg

                with psycopg.connect(args.pg_dsn, connect_timeout=3):
                    pass
            except Exception as exc:  # noqa: BLE001 - no server: the figure is stated as missing
                print(f"  postgres: skipped ({exc})")
                res["postgres"] = None
            else:
                def fresh_schema() -> dict[str, Any]:
                    s = "txcost_" + uuid.uuid4().hex[:10]
                    schemas.append(s)
                    return {"store": "postgres", "dsn": args.pg_dsn, "schema": s}

                res["postgres"] = bench_store("postgres", fresh_schema, tmp, args.n, args.rounds, groups)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if schemas:
            import psycopg

            with psycopg.connect(args.pg_dsn, autocommit=True) as con:
                for s in schemas:
                    con.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
    res["loadavg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
