"""Issue 21 (lanes pgpipe, pg1rt): one small append transaction on PostgreSQL, three ways.

In one process, on a fresh schema, ``TransparencyLog.append`` of groups of G rows (``store_append_bench``'s
rows, the checkpoint signed in each group's transaction), in rounds of 20 groups alternated between the
ways the store sends a small append: ``one_call`` (``writer_at``: the lock, the size check, the rows, stripes
and checkpoint in one call of the schema's ailedger_append_v1, its own transaction: 1 round trip per group),
``pipeline`` (``writer``: BEGIN + lock + size, then the rows, stripes and checkpoint as one statement in the
COMMIT's pipeline: 2 round trips) and ``copy`` (binary COPY per table, the way of larger appends: 8 round
trips). Figures per group, medians over the rounds: wall, the appending thread's CPU and the PostgreSQL
backend's CPU (``/proc/<pid>/schedstat``: the server must be local; the writer pool holds one connection here,
so one backend does every group). References: the pipeline and COPY paths, measured in the same process,
alternated with the one call (a tree without ``writer_at`` measures pipeline and copy only).

    PYTHONPATH=src .venv/bin/python bench/pg_group_bench.py [--group 25] [--rounds 10] [--pg-dsn DSN]

Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from store_append_bench import make_rows

from ailedger.tlog.ledger import Ledger
from ailedger.tlog.stores import LeafRow
from ailedger.tlog.stores import postgres as pg

PER_ROUND = 20


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--group", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=10, help="rounds of 20 groups per path")
    ap.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres")
    args = ap.parse_args()
    g = args.group
    total = args.rounds * 2 * PER_ROUND * g
    rows = [LeafRow(*r) for r in make_rows(total + 1000)]
    d = tempfile.mkdtemp()
    store = {"store": "postgres", "dsn": args.pg_dsn, "schema": "pgb_" + uuid.uuid4().hex[:12]}
    led = Ledger.init(os.path.join(d, "led"), origin="pgbench.example/log", store=store)
    inline = pg._INLINE_ROWS
    log = led.log
    st = log.store
    one = hasattr(st, "writer_at")
    modes = ("one_call", "pipeline", "copy") if one else ("pipeline", "copy")
    res: dict[str, list[tuple[float, float, float]]] = {m: [] for m in modes}
    try:
        st._writers.size = 1  # type: ignore[attr-defined]  # one backend: its CPU is every group's
        with st.writer() as w:  # type: ignore[attr-defined]
            w.cur.execute("SELECT pg_backend_pid()")
            backend = int(w.cur.fetchone()[0])

        def backend_cpu() -> float:
            with open(f"/proc/{backend}/schedstat") as f:
                return int(f.read().split()[0]) / 1e9

        for k in range(0, 1000, g):  # warm-up
            log.append(rows[k : k + g])
        pos = 1000
        for r in range(args.rounds):
            for mode in modes[r % len(modes):] + modes[:r % len(modes)]:  # each mode first in turn
                pg._INLINE_ROWS = inline if mode != "copy" else 0
                if one:
                    st._fn = mode == "one_call"  # type: ignore[attr-defined]  # False: writer_at is writer
                t0, c0, b0 = time.perf_counter(), time.thread_time(), backend_cpu()
                for _ in range(PER_ROUND):
                    log.append(rows[pos : pos + g])
                    pos += g
                res[mode].append(((time.perf_counter() - t0) / PER_ROUND * 1e6,
                                  (time.thread_time() - c0) / PER_ROUND * 1e6,
                                  (backend_cpu() - b0) / PER_ROUND * 1e6))
        audit = log.audit().ok
    finally:
        pg._INLINE_ROWS = inline
        led.close()
        ps = pg.PostgresStore(args.pg_dsn, schema=store["schema"])
        ps.drop_schema()
        ps.close()
        shutil.rmtree(d, ignore_errors=True)
    out: dict[str, object] = {"bench": "pg_group", "group": g, "rounds": args.rounds, "groups_per_round": PER_ROUND,
                              "audit_ok": audit, "loadavg": round(os.getloadavg()[0], 2),
                              "schema": store["schema"]}
    names = ("wall_us_per_group", "client_cpu_us_per_group", "backend_cpu_us_per_group")
    for mode, v in res.items():
        out[mode] = {n: round(statistics.median(x[i] for x in v)) for i, n in enumerate(names)}
        print(f"{mode:>8}: " + ", ".join(f"{n} {out[mode][n]}" for n in names))  # type: ignore[index]
    out["ratios_pipeline_vs_copy"] = {n: round(out["pipeline"][n] / out["copy"][n], 3)  # type: ignore[index]
                                      for n in names}
    if one:
        out["ratios_one_call_vs_pipeline"] = {n: round(out["one_call"][n] / out["pipeline"][n], 3)  # type: ignore[index]
                                              for n in names}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
