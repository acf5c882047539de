"""The ceiling this machine allows the single-entry writers of issue 21, measured in one run per store.

Issue 21's figure: 50 writers sending single entries reach at least 0.8 of the pre-batched rate measured in the
same run. This bench measures, per store (SQLite; PostgreSQL unless --no-pg), in alternated rounds:

(a) P, the pre-batched reference, exactly as ``bench/http_bench.py --writers-only`` measures it (its functions,
    imported: ``writer_entries``, ``batched_figure``): a real ``ailedger serve`` on a fresh ledger, 4 keep-alive
    connections posting the pre-signed entries in batches of 1,000. Figures: entries/s (``p_rate``); CPU-us per
    entry of the server process tree (``p_server_us``: /proc, user + system), plus on PostgreSQL the database's
    processes that serve this ledger (``p_db_us``: its backends, found by the application name the store gives
    its connections, and the cluster's WAL writer, checkpointer and background writer; the store's work is
    machine CPU too), and of the client (``p_client_us``: this process, which runs the asyncio client).
(b) E, the bare request/answer exchange: ``bench/front_echo_bench.py``'s ``one_round`` (imported): the ingest
    port's C loop (``ailedger.tlog._front``) with a responder that answers each group at once (groups of
    ``--group``, 25 = 50 writers in 2 cohorts, gathered as the ingest front gathers them), no check, no store;
    50 closed-loop writers with the C client (``bench/singles_client.c``), each request's body one of the real
    signed single entries of (a)'s run (the same bodies http_bench's single-entry writers send) and each answer
    the size of the ingest front's (a 64-hex leaf hash). Figures: requests/s; CPU-us per request of the server
    threads (the loop and the responder; the bench's main thread, which writes the client's input file and
    parses its output, is left out: ``e_server_us``) and of the C client (its own getrusage over the sending
    phase: ``e_client_us``).
(c) optionally (--commit-share), C, the store's own durable group commit: ``TransparencyLog.append`` (the
    Ledger's log, no checkpoint signed in either) of groups of ``--group`` rows against groups of 1,000, CPU-us
    per entry of the appending thread plus, on PostgreSQL, the database processes that serve it (as in (a));
    alternated group sizes.
    ``c_diff_us`` = per entry at ``--group`` minus per entry at 1,000: what a small group costs beyond a large one.
    It belongs to today's design (the ingest front commits one transaction per cohort's group: 25 of 50 writers);
    the ceilings without it (``ceiling_without_commit_share``) hold for any design.
(s) optionally (--with-singles), the real single-entry writers of http_bench (``singles_figure``, imported) to the
    ingest port of the same server, so that the JSON shows actual/ceiling.

Why P_server + E (+ C_diff) is a lower bound of what a single entry costs the machine (``floor_single_us``):
a single entry goes through the same per-entry code as an entry of a pre-batched batch (the C checker of
``Ingestor.prepare_bodies``, the committer, the store's append: the ingest front merges a group's entries into
one request as the batch endpoint does), so its server CPU is at least a batched entry's, whose per-request,
per-commit and per-answer costs are shared by 1,000 entries (P_server counts them at 1/1000 each); each single
additionally needs a request/answer exchange of its own, and E is that exchange measured with the leanest
server loop and client this project has, doing nothing else, at its own high rate where each wake-up of the loop
finds many requests (the real one must also check, commit and build an answer, and at the singles' lower rate its
writers wait longer, so they sleep and are woken more per request); and its group commit is shared by 25
entries, not 1,000 (C_diff, when measured; without it the floor is lower still). The pre-batched client's
CPU (p_client_us: sending the 1,000-entry bodies, parsing the 1,000 results in Python) is not in the floor: a
single's client work is the exchange's client side, which E counts with the same C client and body. Counted
twice: the server's reading of the entry's bytes and the formatting of its answer (in P inside the batch's body
and answer, in E per request): a copy of ~350 bytes and a short format, a few CPU-us at most. The parts are
measured at different moments, each with the /proc tick (10 ms) on 1-2 CPU-seconds: the floor is a lower bound to
within a few per cent, not exactly (a singles path with nothing beyond the parts measures at the floor +-3%).
Per-process CPU leaves out softirq time charged to no process (the
loopback's receive side); the bench also reads the machine's busy time (/proc/stat) over each part
(``*_stat_us``) as a cross-check, meaningful on a quiet machine only (it counts every process): over (b) it also
holds the C client's start and the bookkeeping around it. In a round where (a) runs first, p_client_us also
holds the asyncio client's first use in this process (tens of ms: fresh heap pages); it is only in ceiling_cpu's
numerator (a higher ceiling: the safe direction for a ceiling).

Ceilings (``ceilings``, a pure function), with ``p_machine_us = p_server_us + p_client_us`` (+ p_db_us):
  ceiling_wall = (cores * 1e6 / floor_single_us) / p_rate: the most entries/s the singles could reach on every
                 core at the floor, over the pre-batched rate measured in the same round. A hard bound (the
                 machine has cores * 1e6 CPU-us per second): below the target (0.8), the target cannot be met
                 against this reference on this machine;
  ceiling_cpu  = p_machine_us / floor_single_us: the same if the pre-batched path too used every core at its
                 measured CPU per entry (a reference that saturates the machine: ceiling_wall falls to it).
                 Below the target, the target cannot be met once the reference uses the machine fully;
and, for comparison, both with the batch client's CPU counted in the floor too (``*_batch_client_counted``:
floor = p_machine_us + E + C_diff), lower but not a strict bound.

    PYTHONPATH=src .venv/bin/python bench/singles_floor_bench.py [--entries 20000] [--single-entries 10000]
        [--writers 50] [--group 25] [--rounds 3] [--pg-dsn DSN | --no-pg] [--with-singles] [--commit-share]
        [--ports LO-HI]

Per round and store: the parts in alternated order (even rounds a, b, s, c; odd rounds reversed; stores
alternated too), each round on a fresh ledger (PostgreSQL: a fresh schema, dropped after). Medians over the
rounds of each figure and of each round's ceilings. Last line: one JSON object (figures, references, ratios).
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
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import front_echo_bench
import http_bench
import singles_client
from limits import cores as _cores

from ailedger.tlog.ledger import Ledger

TARGET = 0.8
DEFAULT_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres password=root"  # http_bench's default


def ceilings(p_rate: float, p_server_us: float, p_client_us: float, e_server_us: float, e_client_us: float,
             cores: int, c_diff_us: float | None = None, p_db_us: float = 0.0, target: float = TARGET) -> dict:
    """The ceilings of the singles' rate over the pre-batched rate (see the module docstring), from the parts'
    figures: P (entries/s and CPU-us per entry of the server, the database's processes and the client), E (CPU-us
    per exchange of the server and the client), C_diff (CPU-us per entry of a small group commit beyond a large
    one, or None when not measured)."""
    for name, v in (("p_rate", p_rate), ("p_server_us", p_server_us), ("e_server_us", e_server_us),
                    ("e_client_us", e_client_us)):
        if not v > 0:
            raise ValueError(f"{name} must be positive, not {v!r}")
    for name, v in (("p_client_us", p_client_us), ("p_db_us", p_db_us)):
        if not v >= 0:
            raise ValueError(f"{name} must not be negative, not {v!r}")
    if cores < 1:
        raise ValueError(f"cores must be at least 1, not {cores!r}")
    c = 0.0 if c_diff_us is None else c_diff_us
    e_us = e_server_us + e_client_us
    p_store_side = p_server_us + p_db_us  # what the server side (serve + the database) spends per entry
    p_machine = p_store_side + p_client_us
    floor = p_store_side + e_us + c
    if not floor > 0:
        raise ValueError(f"the floor of a single entry must be positive, not {floor!r} (c_diff_us {c_diff_us!r})")
    floor_counted = p_machine + e_us + c
    out = {"p_rate": p_rate, "p_server_us": p_server_us, "p_db_us": p_db_us, "p_client_us": p_client_us,
           "p_machine_us": p_machine, "e_server_us": e_server_us, "e_client_us": e_client_us, "e_us": e_us,
           "c_diff_us": c_diff_us, "cores": cores, "floor_single_us": floor,
           "ceiling_cpu": p_machine / floor,
           "ceiling_wall": cores * 1e6 / floor / p_rate,
           "ceiling_cpu_batch_client_counted": p_machine / floor_counted,
           "ceiling_wall_batch_client_counted": cores * 1e6 / floor_counted / p_rate,
           "target": target}
    out["below_target"] = {"cpu": out["ceiling_cpu"] < target, "wall": out["ceiling_wall"] < target}
    return out


class DbCpu:
    """The CPU of the PostgreSQL processes that serve one ledger's schema over a window: its backends (the store
    names its connections ``ailedger:<schema>``, pg_stat_activity's application_name) and the cluster's WAL writer,
    checkpointer and background writer, read from /proc (a local server). Other clients' backends (other
    sessions on a shared machine) are not counted."""

    _BACKGROUND = ("walwriter", "checkpointer", "background writer")

    def __init__(self, dsn: str, schema: str) -> None:
        self.dsn, self.app = dsn, f"ailedger:{schema}"[:63]
        self._pids: set[int] = set()
        self._c0: dict[int, float] = {}

    def _now(self) -> set[int]:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True, connect_timeout=10) as con:
            rows = con.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s OR backend_type = "
                               "ANY(%s)", (self.app, list(self._BACKGROUND))).fetchall()
        return {int(r[0]) for r in rows}

    def start(self) -> None:
        self._pids = self._now()
        self._c0 = {p: _pid_cpu_s(p) for p in self._pids}

    def stop(self) -> float:
        """CPU seconds since start() of the processes there at start() and of those that came since (all of
        theirs: they started within the window)."""
        pids = self._pids | self._now()
        return sum(_pid_cpu_s(p) - self._c0.get(p, 0.0) for p in pids)


def _pid_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of one process so far (/proc), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """The machine's busy CPU seconds so far, every process and interrupt (/proc/stat: user, nice, system, irq,
    softirq, steal)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:9]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def _us(cpu_s: float, n: int) -> float:
    return round(cpu_s / max(1, n) * 1e6, 2)


def prebatched_part(srv: http_bench.Server, entries: list[bytes], db_cpu: DbCpu | None) -> dict:
    """(a): http_bench's pre-batched figure, with the database's CPU (PostgreSQL) and the machine's."""
    if db_cpu:
        db_cpu.start()
    m0 = machine_busy_s()
    fig, _ = http_bench.batched_figure(srv, entries)
    machine = machine_busy_s() - m0
    db = db_cpu.stop() if db_cpu else 0.0
    n = fig["entries"]
    return {"entries": n, "seconds": fig["seconds"], "entries_per_s": fig["entries_per_s"],
            "batch_p50_ms": fig["batch_p50_ms"], "server_cpu_us": _us(fig["server_cpu_s"], n),
            "db_cpu_us": _us(db, n), "client_cpu_us": _us(fig["client_cpu_s"], n), "stat_us": _us(machine, n)}


def exchange_part(exe: Path, bodies: list[bytes], writers: int, group: int) -> dict:
    """(b): front_echo_bench's round with these request bodies and answers of the ingest front's size."""
    port = http_bench.free_port()
    m0 = machine_busy_s()
    r = front_echo_bench.one_round(exe, port, len(bodies), writers, group, 0.0, bodies=bodies, leaf_hash_hex=64)
    machine = machine_busy_s() - m0
    bad = {k: v for k, v in r["statuses"].items() if int(k) != 201}
    if bad or r["client_cpu_us_per_request"] is None:
        raise RuntimeError(f"the bare exchange did not answer every request with 201: {r['statuses']}")
    return {"requests": len(bodies), "requests_per_s": r["requests_per_s"],
            "server_cpu_us": r["server_threads_cpu_us_per_request"],
            "server_process_cpu_us": r["server_cpu_us_per_request"],
            "client_cpu_us": r["client_cpu_us_per_request"], "stat_us": _us(machine, len(bodies)),
            "body_bytes_mean": r["body_bytes_mean"], "requests_per_group": r["requests_per_group"],
            "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]}


def singles_part(srv: http_bench.Server, entries: list[bytes], writers: int, db_cpu: DbCpu | None) -> dict:
    """(s): http_bench's single-entry writers (the C client) to the server's ingest port."""
    if db_cpu:
        db_cpu.start()
    m0 = machine_busy_s()
    fig, _ = http_bench.singles_figure(srv, entries, writers, "c", "ingest")
    machine = machine_busy_s() - m0
    db = db_cpu.stop() if db_cpu else 0.0
    n = fig["entries"]
    out = {"entries": n, "seconds": fig["seconds"], "entries_per_s": fig["entries_per_s"], "client": fig["client"],
           "p50_ms": fig["p50_ms"], "p99_ms": fig["p99_ms"], "server_cpu_us": _us(fig["server_cpu_s"], n),
           "db_cpu_us": _us(db, n), "client_cpu_us": fig.get("client_cpu_us_per_entry"), "stat_us": _us(machine, n)}
    if fig.get("client_note"):
        out["client_note"] = fig["client_note"]
    return out


def commit_share_part(store: dict | None, n: int, group: int, big: int = 1000) -> dict:
    """(c): the store's own append (TransparencyLog.append, no checkpoint) of ``n`` rows in groups of ``group``
    and ``n`` in groups of ``big``, alternated piece by piece, on a fresh ledger (after a warm-up group); CPU of
    this thread plus the PostgreSQL processes' that serve it (:class:`DbCpu`)."""
    import store_append_bench

    from ailedger.tlog.stores import LeafRow

    rows = [LeafRow(*r) for r in store_append_bench.make_rows(2 * n + big)]
    d = Path(tempfile.mkdtemp(prefix="floor-commit-"))
    led = Ledger.init(d / "led", origin="floorbench.example/commit", store=store)
    db_cpu = DbCpu(store["dsn"], store["schema"]) if store is not None else None
    spent = {group: 0.0, big: 0.0}
    done = {group: 0, big: 0}
    try:
        log = led.log
        log.append(rows[:big], sign=False)  # warm-up: the tables, the statements, the border
        pos = big
        for k in range(n // big):
            for g in ((group, big) if k % 2 == 0 else (big, group)):
                piece = rows[pos : pos + big]
                pos += big
                if db_cpu:
                    db_cpu.start()
                t0 = time.thread_time()
                for i in range(0, len(piece), g):
                    log.append(piece[i : i + g], sign=False)
                spent[g] += time.thread_time() - t0 + (db_cpu.stop() if db_cpu else 0.0)
                done[g] += len(piece)
        size = log.size
    finally:
        led.close()
        shutil.rmtree(d, ignore_errors=True)
    if size != pos:
        raise RuntimeError(f"the commit-share ledger holds {size} entries, not {pos}")
    small_us, big_us = _us(spent[group], done[group]), _us(spent[big], done[big])
    return {"entries_each": done[group], "group": group, "big_group": big, "group_cpu_us": small_us,
            "big_group_cpu_us": big_us, "c_diff_us": round(small_us - big_us, 2)}


def store_round(label: str, store: dict | None, args: argparse.Namespace, rnd: int, exe: Path, work: Path) -> dict:
    """One round on one store: a fresh ledger and server, the parts in this round's order."""
    d = work / f"{label}-{rnd}"
    Ledger.init(d, origin=f"floorbench.example/{label}", store=store).close()
    extra: list[str] = []
    ingest_port = None
    if args.with_singles:
        ingest_port = http_bench.free_port()
        extra += ["--ingest-port", str(ingest_port)]
    srv = http_bench.Server(d, args.workers, extra)
    srv.ingest_url = f"http://127.0.0.1:{ingest_port}" if ingest_port else None  # type: ignore[attr-defined]
    db_cpu = DbCpu(store["dsn"], store["schema"]) if store is not None else None
    parts = ["prebatched", "exchange"] + (["singles"] if args.with_singles else []) + \
        (["commit_share"] if args.commit_share else [])
    if rnd % 2:
        parts.reverse()
    out: dict[str, Any] = {"round": rnd + 1, "store": label, "order": parts}
    try:
        offset = 1000 * rnd + (0 if label == "sqlite" else 500)
        batch_entries, single_entries = http_bench.writer_entries(srv.url, args.entries, args.single_entries,
                                                                  _cores(), offset)
        for part in parts:
            if part == "prebatched":
                out[part] = prebatched_part(srv, batch_entries, db_cpu)
            elif part == "exchange":
                out[part] = exchange_part(exe, single_entries, args.writers, args.group)
            elif part == "singles":
                out[part] = singles_part(srv, single_entries, args.writers, db_cpu)
            else:
                cs_store = None if store is None else {**store, "schema": store["schema"] + "_c"}
                try:
                    out[part] = commit_share_part(cs_store, args.commit_entries, args.group)
                finally:
                    if cs_store is not None:
                        http_bench.drop_schema(args.pg_dsn, cs_store["schema"])
            out["loadavg"] = round(os.getloadavg()[0], 2)
    finally:
        srv.stop()
        if store is not None:
            http_bench.drop_schema(args.pg_dsn, store["schema"])
    p, e = out["prebatched"], out["exchange"]
    c = out.get("commit_share")
    out["ceiling"] = ceilings(p["entries_per_s"], p["server_cpu_us"], p["client_cpu_us"], e["server_cpu_us"],
                              e["client_cpu_us"], _cores(), c["c_diff_us"] if c else None, p["db_cpu_us"])
    if c:  # the same without the commit share, for comparison
        nc = ceilings(p["entries_per_s"], p["server_cpu_us"], p["client_cpu_us"], e["server_cpu_us"],
                      e["client_cpu_us"], _cores(), None, p["db_cpu_us"])
        out["ceiling_without_commit_share"] = {k: nc[k] for k in ("floor_single_us", "ceiling_cpu", "ceiling_wall")}
    if "singles" in out:
        out["actual"] = actual_ratios(out["singles"], p, out["ceiling"])
    return out


def actual_ratios(s: dict, p: dict, ceil: dict) -> dict:
    """The singles as measured against the pre-batched rate and the ceilings of the same round."""
    ratio = s["entries_per_s"] / p["entries_per_s"]
    s_machine = s["server_cpu_us"] + s["db_cpu_us"] + (s["client_cpu_us"] or 0.0)
    return {"singles_vs_prebatched": ratio, "actual_vs_ceiling_wall": ratio / ceil["ceiling_wall"],
            "actual_vs_ceiling_cpu": ratio / ceil["ceiling_cpu"], "singles_machine_us": s_machine,
            "floor_share_of_singles_cpu": ceil["floor_single_us"] / s_machine if s_machine else None}


def _med(xs: list[float]) -> float:
    return float(statistics.median(xs))


def summarize(runs: list[dict]) -> dict:
    """Medians over the rounds of one store: each part's figures and each round's ceilings and ratios."""
    out: dict[str, Any] = {"rounds": len(runs)}
    for part in ("prebatched", "exchange", "singles", "commit_share"):
        rs = [r[part] for r in runs if part in r]
        if rs:
            out[part] = {k: _med([x[k] for x in rs]) for k, v in rs[0].items()
                         if isinstance(v, (int, float)) and not isinstance(v, bool) and all(x.get(k) is not None
                                                                                            for x in rs)}
    keys = ("ceiling_cpu", "ceiling_wall", "ceiling_cpu_batch_client_counted", "ceiling_wall_batch_client_counted",
            "floor_single_us", "p_machine_us", "e_us")
    out["ceiling"] = {k: _med([r["ceiling"][k] for r in runs]) for k in keys}
    out["ceiling"]["below_target"] = {"cpu": out["ceiling"]["ceiling_cpu"] < TARGET,
                                      "wall": out["ceiling"]["ceiling_wall"] < TARGET}
    if all("ceiling_without_commit_share" in r for r in runs):
        out["ceiling_without_commit_share"] = {k: _med([r["ceiling_without_commit_share"][k] for r in runs])
                                               for k in ("floor_single_us", "ceiling_cpu", "ceiling_wall")}
    if all("actual" in r for r in runs):
        out["actual"] = {k: _med([r["actual"][k] for r in runs]) for k in runs[0]["actual"]
                         if all(r["actual"][k] is not None for r in runs)}
    return out


def _print_round(r: dict) -> None:
    p, e, c = r["prebatched"], r["exchange"], r["ceiling"]
    line = (f"round {r['round']} {r['store']}: pre-batched {p['entries_per_s']} entries/s, {c['p_machine_us']:.1f} "
            f"machine CPU-us/entry (server {p['server_cpu_us']}, db {p['db_cpu_us']}, client {p['client_cpu_us']}; "
            f"/proc/stat {p['stat_us']}); bare exchange {e['requests_per_s']} req/s, {c['e_us']:.1f} CPU-us "
            f"(server {e['server_cpu_us']}, client {e['client_cpu_us']}; /proc/stat {e['stat_us']}, "
            f"{e['body_bytes_mean']:.0f}-byte bodies)")
    if "commit_share" in r:
        cs = r["commit_share"]
        line += (f"; commit share: group {cs['group']} {cs['group_cpu_us']} vs {cs['big_group']} "
                 f"{cs['big_group_cpu_us']} CPU-us/entry -> C_diff {cs['c_diff_us']}")
    line += (f" => floor {c['floor_single_us']:.1f} CPU-us/single; ceiling cpu {c['ceiling_cpu']:.3f}, wall "
             f"{c['ceiling_wall']:.3f} (target {TARGET})")
    if "singles" in r:
        s, a = r["singles"], r["actual"]
        line += (f"; singles {s['entries_per_s']} entries/s = {a['singles_vs_prebatched']:.3f} of pre-batched, "
                 f"{a['actual_vs_ceiling_wall']:.3f} of the wall ceiling, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms")
    print(line + f" (load {r['loadavg']})", flush=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=20000, help="pre-batched entries per round (batches of 1,000)")
    ap.add_argument("--single-entries", type=int, default=10000,
                    help="requests of the bare exchange (and of the singles) per round")
    ap.add_argument("--writers", type=int, default=50)
    ap.add_argument("--group", type=int, default=25, help="the exchange's (and commit share's) group: 50 writers "
                                                          "in the ingest front's 2 cohorts")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="serve --workers")
    ap.add_argument("--pg-dsn", default=DEFAULT_DSN)
    ap.add_argument("--no-pg", action="store_true")
    ap.add_argument("--with-singles", action="store_true",
                    help="also http_bench's 50 single-entry writers (C client, the ingest port) in every round")
    ap.add_argument("--commit-share", action="store_true",
                    help="also (c): the store's append in groups of --group against groups of 1,000")
    ap.add_argument("--commit-entries", type=int, default=10000,
                    help="entries per group size of --commit-share (a multiple of 1,000)")
    ap.add_argument("--ports", help="LO-HI: the ports the servers and the exchange may use (else any free port)")
    a = ap.parse_args(argv)
    if a.entries < 1000 or a.entries % 1000:
        ap.error("--entries must be a positive multiple of 1000 (batches of 1,000)")
    if a.single_entries < a.writers or a.writers < 1:
        ap.error("--writers must be at least 1 and --single-entries at least --writers")
    if not 1 <= a.group <= 1000:
        ap.error("--group must be between 1 and 1000")
    if a.rounds < 1:
        ap.error("--rounds must be at least 1")
    if a.commit_share and (a.commit_entries < 1000 or a.commit_entries % 1000):
        ap.error("--commit-entries must be a positive multiple of 1000")
    if a.ports:
        try:
            lo, hi = (int(x) for x in a.ports.split("-"))
        except ValueError:
            ap.error(f"--ports must be LO-HI, not {a.ports!r}")
        if not 1024 <= lo < hi <= 65535:
            ap.error(f"--ports {a.ports}: need 1024 <= LO < HI <= 65535")
        os.environ["BENCH_PORTS"] = f"{lo}-{hi}"  # http_bench.free_port's range
    exe, why = singles_client.build()
    if exe is None:
        raise SystemExit(f"the C client is needed for the exchange (bench/singles_client.c): {why}")
    stores: list[tuple[str, dict | None]] = [("sqlite", None)]
    if not a.no_pg:
        stores.append(("postgres", {"store": "postgres", "dsn": a.pg_dsn, "schema": ""}))
    print(f"singles floor bench: {_cores()} CPUs, load average {os.getloadavg()[0]:.2f}, {a.rounds} rounds, "
          f"stores {[s for s, _ in stores]}", flush=True)
    out: dict[str, Any] = {"bench": "singles_floor", "args": vars(a), "cpus": _cores(),
                           "loadavg_start": round(os.getloadavg()[0], 2), "target": TARGET}
    work = Path(tempfile.mkdtemp(prefix="floorbench-"))
    runs: dict[str, list[dict]] = {}
    try:
        for rnd in range(a.rounds):
            order = stores if rnd % 2 == 0 else list(reversed(stores))
            for label, store in order:
                st = None if store is None else {**store, "schema": "floor_" + uuid.uuid4().hex[:12]}
                try:
                    r = store_round(label, st, a, rnd, exe, work)
                except Exception as exc:
                    if label == "postgres" and rnd == 0 and not runs.get(label):
                        print(f"postgres unavailable, skipped: {exc}", flush=True)
                        stores = [s for s in stores if s[0] != "postgres"]
                        continue
                    raise
                runs.setdefault(label, []).append(r)
                _print_round(r)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out["runs"] = runs
    out["figures"] = {label: summarize(rs) for label, rs in runs.items()}
    out["references"] = {label: {"prebatched_entries_per_s": f["prebatched"]["entries_per_s"],
                                 "prebatched_machine_us_per_entry": f["ceiling"]["p_machine_us"],
                                 "bare_exchange_us": f["ceiling"]["e_us"],
                                 "bare_exchange_requests_per_s": f["exchange"]["requests_per_s"]}
                         for label, f in out["figures"].items()}
    ratios: dict[str, Any] = {}
    for label, f in out["figures"].items():
        c = f["ceiling"]
        ratios[f"ceiling_cpu_{label}"] = round(c["ceiling_cpu"], 3)
        ratios[f"ceiling_wall_{label}"] = round(c["ceiling_wall"], 3)
        ratios[f"ceiling_below_target_{label}"] = c["below_target"]
        if "ceiling_without_commit_share" in f:
            ratios[f"ceiling_cpu_without_commit_share_{label}"] = round(f["ceiling_without_commit_share"]["ceiling_cpu"], 3)
            ratios[f"ceiling_wall_without_commit_share_{label}"] = round(f["ceiling_without_commit_share"]["ceiling_wall"],
                                                                         3)
        if "actual" in f:
            ratios[f"singles_vs_prebatched_{label}"] = round(f["actual"]["singles_vs_prebatched"], 3)
            ratios[f"singles_vs_ceiling_wall_{label}"] = round(f["actual"]["actual_vs_ceiling_wall"], 3)
    out["ratios"] = ratios
    out["loadavg_end"] = round(os.getloadavg()[0], 2)
    for label, f in out["figures"].items():
        c = f["ceiling"]
        print(f"{label} (medians of {f['rounds']} rounds): floor {c['floor_single_us']:.1f} CPU-us per single = "
              f"pre-batched {f['prebatched']['server_cpu_us'] + f['prebatched']['db_cpu_us']:.1f} (server side) + "
              f"bare exchange {c['e_us']:.1f}"
              + (f" + commit share {f['commit_share']['c_diff_us']:.1f}" if "commit_share" in f else "")
              + f"; ceiling cpu {c['ceiling_cpu']:.3f}, wall {c['ceiling_wall']:.3f} against target {TARGET}: "
              f"{'BELOW' if c['below_target']['wall'] else 'not below'} (wall), "
              f"{'BELOW' if c['below_target']['cpu'] else 'not below'} (cpu)", flush=True)
    print(json.dumps(out, separators=(",", ":")), flush=True)
    return out


if __name__ == "__main__":
    main()
