"""The store's share of a pre-batched append, in process: ``TransparencyLog.append`` of 1000-entry groups of the
rows the batch endpoint hands it (leaf bytes, leaf hash, the index terms of a ``bench.event`` entry: its type, its
signer, one subject of its own), with the checkpoint signed in each group's transaction, on SQLite or PostgreSQL.
No HTTP, no signature check, no parse: only the leaf rows, the dedup rows, the node stripes, the terms and term
runs, the checkpoint, their statements and the Python around them.

    PYTHONPATH=src .venv/bin/python bench/store_append_bench.py [--entries 20000] [--store sqlite|postgres]
        [--rows FILE] [--warm 2000]

Figure: CPU-us per entry of the appending thread (``time.thread_time``; PostgreSQL's own server process is
not counted: see ``--pg-backend``, which adds the backend's CPU read from /proc when the server is local), per
group after ``--warm`` entries of warm-up, the median and the minimum over the groups. ``--rows FILE`` reuses
(or writes) the rows, so that two source trees can be compared on identical input (run the same command with
``PYTHONPATH=treeA/src`` and ``treeB/src``, alternated). Under ``valgrind --tool=callgrind`` run it with two
``--entries`` and subtract (instructions per entry). The log is audited at the end (``audit_ok``). Last line:
one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import statistics
import tempfile
import time
import uuid

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.tlog.ledger import Ledger, entry_terms
from ailedger.tlog.stores import LeafRow


def make_rows(n: int) -> list[tuple[bytes, bytes, tuple[str, ...]]]:
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"store-append-bench").digest())
    did = did_from_public_key(key.public_key().public_bytes_raw())
    tag = uuid.uuid4().hex[:8]  # fresh leaves for every file of rows
    out = []
    for i in range(n):
        e = build_entry("bench.event", {"b": tag, "i": i, "subjects": [f"sha256:{hashlib.sha256(f'{tag}{i}'.encode()).hexdigest()}"]},
                        did, "2026-12-07T00:00:00.000Z", key.sign)
        out.append((e.leaf_bytes, hashlib.sha256(b"\0" + e.leaf_bytes).digest(), entry_terms(e)))
    return out


def _backend_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=20000)
    ap.add_argument("--group", type=int, default=1000)
    ap.add_argument("--warm", type=int, default=2000)
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres")
    ap.add_argument("--pg-backend", action="store_true", help="add the PostgreSQL backend's CPU (local server)")
    ap.add_argument("--rows", help="a file of rows to reuse (written when missing)")
    ap.add_argument("--no-audit", action="store_true")
    args = ap.parse_args()
    total = args.entries + args.warm
    if args.rows and os.path.exists(args.rows):
        with open(args.rows, "rb") as f:
            raw = pickle.load(f)
        if len(raw) < total:
            ap.error(f"{args.rows} holds {len(raw)} rows, fewer than --entries + --warm")
        raw = raw[:total]
    else:
        raw = make_rows(total)
        if args.rows:
            with open(args.rows, "wb") as f:
                pickle.dump(raw, f)
    rows = [LeafRow(*r) for r in raw]
    d = tempfile.mkdtemp()
    store = ({"store": "postgres", "dsn": args.pg_dsn, "schema": "sab_" + uuid.uuid4().hex[:12]}
             if args.store == "postgres" else None)
    led = Ledger.init(os.path.join(d, "led"), origin="storebench.example/log", store=store)
    backend = None
    try:
        log = led.log
        if args.store == "postgres" and args.pg_backend:
            with log.store._read() as cur:  # type: ignore[attr-defined]
                cur.execute("SELECT 1")
            with log.store.writer() as w:  # type: ignore[attr-defined]
                w.cur.execute("SELECT pg_backend_pid()")
                backend = int(w.cur.fetchone()[0])
        g = args.group
        for k in range(0, args.warm, g):
            log.append(rows[k : k + g])
        per: list[float] = []
        t_all = time.thread_time()
        b_all = _backend_cpu(backend)
        for k in range(args.warm, total, g):
            b0 = _backend_cpu(backend)
            t0 = time.thread_time()
            res = log.append(rows[k : k + g])
            per.append((time.thread_time() - t0 + _backend_cpu(backend) - b0) / len(res) * 1e6)
        us = (time.thread_time() - t_all + _backend_cpu(backend) - b_all) / args.entries * 1e6
        audit = None if args.no_audit else log.audit().ok
        size = log.size
    finally:
        led.close()
        if args.store == "postgres":
            from ailedger.tlog.stores.postgres import PostgresStore

            ps = PostgresStore(args.pg_dsn, schema=store["schema"])  # type: ignore[index]
            ps.drop_schema()
            ps.close()
        shutil.rmtree(d, ignore_errors=True)
    assert size == total, size
    out = {"bench": "store_append", "store": args.store, "entries": args.entries, "group": g,
           "cpu_us_per_entry": round(us, 2), "median_group_us_per_entry": round(statistics.median(per), 2),
           "min_group_us_per_entry": round(min(per), 2), "backend_counted": backend is not None,
           "audit_ok": audit, "loadavg": round(os.getloadavg()[0], 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
