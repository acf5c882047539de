"""Where the wall time of single-entry writers goes on the ingest port (issue 21): a timeline of the front's stages.

    .venv/bin/python bench/ingest_timeline_bench.py [--entries 10000] [--conns 50] [--window-ms 2]
        [--max-group 20000] [--rounds 3] [--store sqlite|postgres] [--pg-dsn DSN]

The API and its ingest front (``serve --ingest-port``) run in this process on a fresh SQLite ledger; the lean
C client (bench/singles_client.c, compiled here with cc) is the ``--conns`` writers, one request in flight per
connection. The front's stages are timed by wrapping, before it starts, ``IngestFront.check`` (parse and
signature checks of a piece, on the checking thread or its helper), ``IngestFront.commit`` (one durable
transaction per group, on the committing thread) and the C loop's ``take``/``take_ready``/``reply`` (the
checking thread waiting for requests; the answers handed back). From the intervals over the run:

* ``commit_busy``: share of the wall time the committing thread spends in commit + reply;
* ``check_busy``: share in which some thread is checking; ``overlap``: both at once (the pipeline overlapping
  a group's commit with the next group's checks); ``neither``: no stage busy (requests on the wire, the
  client, hand-offs, the GIL);
* per group: entries, commit time, and the gap from a commit's end to the next commit's start.

A stage missing from the front (renamed) is reported as not timed rather than failing. The server's CPU is
this process's CPU (the client is a child process: its CPU is its own report). Benchmarks are not tests:
on a shared machine the figures move with the load (``loadavg`` is printed). Prints human lines, then one
JSON object as the last line.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import types
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import singles_client

Interval = tuple[float, float]


class Recorder:
    """Intervals (kind, thread name, start, end, count) of the wrapped stages."""

    def __init__(self) -> None:
        self.ev: list[tuple[str, str, float, float, int]] = []
        self.timed: list[str] = []

    def wrap_module(self, mod: Any) -> Any:
        """A stand-in for the C loop module whose take/take_ready/reply are timed (the rest passes through)."""
        proxy = types.SimpleNamespace(**{k: getattr(mod, k) for k in dir(mod) if not k.startswith("__")})
        counts = {"take": lambda a, r: len(r), "take_ready": lambda a, r: len(r[0]),
                  "reply": lambda a, r: len(a[0])}
        for name, count in counts.items():
            if hasattr(mod, name):
                setattr(proxy, name, self._timed(name, getattr(mod, name), count))
                self.timed.append(f"_front.{name}")
        return proxy

    def wrap_method(self, cls: type, name: str, count: Any) -> None:
        if not hasattr(cls, name):
            return
        orig = getattr(cls, name)
        timed = self._timed(name, orig, count)
        setattr(cls, name, timed)
        self.timed.append(f"{cls.__name__}.{name}")

    def _timed(self, kind: str, fn: Any, count: Any) -> Any:
        ev, pc, cur = self.ev, time.perf_counter, threading.current_thread

        def g(*a: Any, **k: Any) -> Any:
            t0 = pc()
            r = fn(*a, **k)
            ev.append((kind, cur().name, t0, pc(), count(a, r)))
            return r

        return g


def union(iv: list[Interval]) -> list[Interval]:
    out: list[list[float]] = []
    for a, b in sorted(iv):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


def total(iv: list[Interval]) -> float:
    return sum(b - a for a, b in iv)


def intersect(x: list[Interval], y: list[Interval]) -> float:
    i = j = 0
    s = 0.0
    while i < len(x) and j < len(y):
        a, b = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if b > a:
            s += b - a
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return s


def analyse(ev: list[tuple[str, str, float, float, int]]) -> dict[str, Any]:
    """The shares of the wall time (the first request taken, when its take returns .. the last answer handed
    back) of each stage."""
    first = [e[3] for e in ev if e[0] in ("take", "take_ready") and e[4] > 0]
    t0 = min(first) if first else min(e[2] for e in ev)
    t1 = max(e[3] for e in ev if e[0] in ("reply", "commit")) if any(e[0] in ("reply", "commit") for e in ev) \
        else max(e[3] for e in ev)
    wall = max(t1 - t0, 1e-9)

    def clip(kinds: tuple[str, ...], thread: str | None = None) -> list[Interval]:
        return union([(max(a, t0), min(b, t1)) for k, th, a, b, _ in ev
                      if k in kinds and (thread is None or thread in th) and b > t0 and a < t1])

    commit = clip(("commit", "reply"), "commit")
    check = clip(("check",))
    both = intersect(commit, check)
    groups = [e for e in ev if e[0] == "commit"]
    sizes = [e[4] for e in groups]
    cms = [(e[3] - e[2]) * 1000 for e in groups]
    gaps = [(b[2] - a[3]) * 1000 for a, b in itertools.pairwise(groups)]
    # each gap split in two: the answers handed back .. the first request of the next group taken (the writers'
    # round trip: the C loop sends, the client reads and sends again, the C loop reads), then .. the next commit
    # (the rest arriving, the checks, the hand-off)
    replies = sorted(e[3] for e in ev if e[0] == "reply")
    takes = sorted(e[3] for e in ev if e[0] in ("take", "take_ready") and e[4] > 0)
    back: list[float] = []
    gather: list[float] = []
    for a, b in itertools.pairwise(groups):
        r = next((x for x in replies if x >= a[3]), None)
        t = next((x for x in takes if r is not None and x >= r), None)
        if r is not None and t is not None and t <= b[2]:
            back.append((t - r) * 1000)
            gather.append((b[2] - t) * 1000)
    per_thread: dict[str, float] = {}
    for k, th, a, b, _ in ev:
        if k == "check":
            per_thread[th] = per_thread.get(th, 0.0) + (b - a)
    pieces = [e[4] for e in ev if e[0] in ("take", "take_ready") and e[4] > 0]
    checks = [e[4] for e in ev if e[0] == "check"]
    out: dict[str, Any] = {
        "wall_s": round(wall, 4), "groups": len(groups),
        "group_entries_median": statistics.median(sizes) if sizes else None,
        "commit_ms_median": round(statistics.median(cms), 3) if cms else None,
        "commit_us_per_entry_median": round(statistics.median(c / s * 1000 for c, s in zip(cms, sizes) if s), 1)
        if sizes else None,
        "gap_ms_median": round(statistics.median(gaps), 3) if gaps else None,
        "answers_to_first_back_ms_median": round(statistics.median(back), 3) if back else None,
        "first_back_to_commit_ms_median": round(statistics.median(gather), 3) if gather else None,
        "commit_busy": round(total(commit) / wall, 3), "check_busy": round(total(check) / wall, 3),
        "overlap": round(both / wall, 3),
        "neither": round(1 - (total(commit) + total(check) - both) / wall, 3),
        "check_share_per_thread": {k: round(v / wall, 3) for k, v in sorted(per_thread.items())},
        # how requests come out of the C loop (pieces taken) and into the checks: small pieces check serially
        "pieces_per_group": round(len(pieces) / max(len(groups), 1), 1),
        "piece_entries_median": statistics.median(pieces) if pieces else None,
        "check_calls_per_group": round(len(checks) / max(len(groups), 1), 1),
        "check_entries_median": statistics.median(checks) if checks else None,
    }
    return out


class Sched:
    """``--sched``: every context switch on every CPU during the run (``perf record -e sched:sched_switch -a``,
    clock CLOCK_MONOTONIC like time.perf_counter), to say what each core ran while a group was committed or
    checked: this process's threads by name, the client, other processes, or nothing (idle)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.proc: Any = None
        self.error = ""

    def start(self) -> None:
        exe = shutil.which("perf")
        if exe is None:
            self.error = "perf is not installed"
            return
        import subprocess

        self.proc = subprocess.Popen([exe, "record", "-q", "-k", "CLOCK_MONOTONIC", "-e", "sched:sched_switch", "-a",
                                      "-o", str(self.out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # perf opens its buffers before the run starts (what it missed is not counted)
        if self.proc.poll() is not None:
            self.error = f"perf record failed: {self.proc.stderr.read().decode(errors='replace').strip()[-300:]}"
            self.proc = None

    def stop(self) -> None:
        import signal

        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(60)

    def shares(self, threads: dict[int, str], t0: float, t1: float,
               during: dict[str, list[Interval]]) -> dict[str, Any]:
        """Cores used over [t0, t1] by category, overall and within each set of intervals of ``during``."""
        import re
        import subprocess

        if self.proc is None:
            return {"error": self.error}
        text = subprocess.run(["perf", "script", "-i", str(self.out), "-F", "cpu,time,event,trace"],
                              capture_output=True, text=True, check=False).stdout
        rx = re.compile(r"\[(\d+)\]\s+([\d.]+):.*?next_comm=(.*?) next_pid=(\d+)")
        runs: list[tuple[float, float, str]] = []  # (start, end, category), every CPU
        cur: dict[int, tuple[float, str]] = {}
        first: dict[int, float] = {}
        last = 0.0
        for line in text.splitlines():
            m = rx.search(line)
            if not m:
                continue
            cpu, t, comm, tid = int(m[1]), float(m[2]), m[3], int(m[4])
            cat = ("idle" if tid == 0 else f"server:{threads[tid]}" if tid in threads
                   else "client" if comm.startswith("singles_client") else "other processes")
            if cpu in cur:
                runs.append((cur[cpu][0], t, cur[cpu][1]))
            first.setdefault(cpu, t)
            cur[cpu] = (t, cat)
            last = t
        runs += [(a, last, cat) for a, cat in cur.values()]  # what each CPU ran when the recording ended

        rec_lo = max(first.values(), default=t1)  # the recording covers every CPU from here on (perf starts late
        # on a loaded machine): the shares are of the covered part only

        def cores(iv: list[Interval]) -> dict[str, float]:
            iv = [(max(x, rec_lo), min(y, last)) for x, y in iv if min(y, last) > max(x, rec_lo)]
            span = total(iv)
            acc: dict[str, float] = {}
            for a, b, cat in runs:
                for x, y in iv:
                    lo, hi = max(a, x), min(b, y)
                    if hi > lo:
                        acc[cat] = acc.get(cat, 0.0) + hi - lo
            return {k: round(v / span, 3) for k, v in sorted(acc.items(), key=lambda kv: -kv[1])} if span else {}

        covered = max(0.0, min(t1, last) - max(t0, rec_lo)) / max(t1 - t0, 1e-9)
        out: dict[str, Any] = {"share_of_the_run_recorded": round(covered, 3), "cores_used_over_the_run": cores([(t0, t1)])}
        for name, iv in during.items():
            out[f"cores_used_while_{name}"] = cores(iv)
        return out


def one_round(args: argparse.Namespace, exe: Path, work: Path, rnd: int) -> dict[str, Any]:
    import http_bench as hb
    from starlette.testclient import TestClient

    from ailedger.http import ingest_front
    from ailedger.http.app import ServeConfig, create_app
    from ailedger.tlog.ledger import Ledger

    d = work / f"ledger-{rnd}"
    store = None
    if args.store == "postgres":
        store = {"store": "postgres", "dsn": args.pg_dsn, "schema": "tl_" + uuid.uuid4().hex[:12]}
    Ledger.init(d, origin="bench.example/timeline", store=store).close()
    rec = Recorder()
    real = ingest_front._front
    ingest_front._front = rec.wrap_module(real)  # type: ignore[assignment]
    cls = ingest_front.IngestFront
    saved = {k: cls.__dict__[k] for k in ("check", "commit") if k in cls.__dict__}
    rec.wrap_method(cls, "check", lambda a, r: len(a[1]))
    rec.wrap_method(cls, "commit", lambda a, r: len(r))
    try:
        with Ledger.open(d) as led:
            app = create_app(led, ServeConfig(open_registration=True, commit_window=args.window_ms / 1000,
                                              commit_max_entries=args.max_group,
                                              ingest_cohorts=getattr(args, "cohorts", 2)))
            api = TestClient(app)
            keys = [hb.bench_key(7000 + rnd * 10 + k) for k in range(8)]
            for k in keys:
                assert api.post("/v1/identities", json=k.registration()).status_code in (200, 201)
            entries = hb.presign(args.entries, 8, os.cpu_count() or 2, 7000 + rnd * 10,
                                 getattr(args, "subjects", "sequential"))
            with cls(app.api, "127.0.0.1", hb.free_port()) as front:  # type: ignore[arg-type]
                sched = Sched(work / f"sched-{rnd}.data") if args.sched else None
                if sched is not None:
                    sched.start()
                rec.ev.clear()
                la = os.getloadavg()[0]
                c0 = time.process_time()
                try:
                    r = singles_client.run(exe, front.url.rsplit("/v1/", 1)[0], entries, args.conns,
                                           threads=getattr(args, "client_threads", 1))
                finally:
                    cpu = time.process_time() - c0
                    threads = {int(t): "" for t in os.listdir("/proc/self/task")}
                    threads.update({t.native_id: t.name for t in threading.enumerate() if t.native_id})
                    threads = {t: n or "C loop (ailedger.tlog._front)" for t, n in threads.items()}
                    if sched is not None:
                        sched.stop()
    finally:
        ingest_front._front = real
        for k, v in saved.items():
            setattr(cls, k, v)
        if store is not None:
            hb.drop_schema(args.pg_dsn, store["schema"])
    ok = r["statuses"].get(201, 0)
    res: dict[str, Any] = {
        "loadavg": round(la, 2), "entries": ok, "statuses": {str(k): v for k, v in r["statuses"].items()},
        "entries_per_s": round(ok / r["seconds"]), "p50_ms": round(r["p50_ms"], 2), "p99_ms": round(r["p99_ms"], 2),
        "server_cpu_us_per_entry": round(cpu / max(ok, 1) * 1e6, 1),
        "client_cpu_us_per_request": round(r["cpu_us_per_request"], 2),
        "timed": rec.timed, **analyse(rec.ev)}
    if sched is not None:
        ev = rec.ev
        t0 = min(e[3] for e in ev if e[0] in ("take", "take_ready") and e[4] > 0)
        t1 = max(e[3] for e in ev)
        commit = union([(a, b) for k, th, a, b, _ in ev if k == "commit"])
        check = union([(a, b) for k, _, a, b, _ in ev if k == "check"])
        res["sched"] = sched.shares(threads, t0, t1, {"committing": commit, "checking": check})
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=10000)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--client-threads", type=int, default=1, help="threads of the C client")
    ap.add_argument("--window-ms", type=float, default=2.0, help="serve --commit-window-ms")
    ap.add_argument("--max-group", type=int, default=20000, help="serve --commit-max-entries")
    ap.add_argument("--cohorts", type=int, default=2, help="serve --ingest-cohorts (1: a group waits for every writer)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--switch-interval-ms", type=float, default=None,
                    help="sys.setswitchinterval for the server (this process): how long a thread may keep the GIL "
                         "while another waits for it (Python's default: 5 ms)")
    ap.add_argument("--sched", action="store_true",
                    help="record every context switch (perf, root or perf_event_paranoid <= -1): what each core ran "
                         "during the run, while groups were committed and while pieces were checked")
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres password=root")
    ap.add_argument("--subjects", choices=("sequential", "random"), default="sequential",
                    help="each entry's own subject: its number in hex or a SHA-256 of it (http_bench.bench_subject)")
    args = ap.parse_args()
    from ailedger.http.ingest_front import available

    if not available():
        sys.exit("the ingest front (ailedger.tlog._front) is not built here")
    if args.switch_interval_ms is not None:
        sys.setswitchinterval(args.switch_interval_ms / 1000)
    exe, why = singles_client.build()
    if exe is None:
        sys.exit(f"the C client cannot be built: {why}")
    work = Path(tempfile.mkdtemp(prefix="ingest-timeline-"))
    runs = []
    try:
        for rnd in range(args.rounds):
            r = one_round(args, exe, work, rnd)
            runs.append(r)
            print(f"round {rnd + 1}: {r['entries_per_s']} entries/s, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
                  f"server {r['server_cpu_us_per_entry']} CPU-us/entry, client {r['client_cpu_us_per_request']}; "
                  f"{r['groups']} groups of {r['group_entries_median']} (commit {r['commit_ms_median']} ms, gap to "
                  f"the next {r['gap_ms_median']} ms: answers out -> first request back {r['answers_to_first_back_ms_median']}, "
                  f"-> next commit {r['first_back_to_commit_ms_median']}); wall shares: commit {r['commit_busy']}, check "
                  f"{r['check_busy']}, both {r['overlap']}, neither {r['neither']} (load {r['loadavg']})",
                  flush=True)
            for k, v in r.get("sched", {}).items():
                print(f"  {k.replace('_', ' ')}: {v}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    keys = ("entries_per_s", "p50_ms", "p99_ms", "server_cpu_us_per_entry", "client_cpu_us_per_request",
            "commit_ms_median", "gap_ms_median", "commit_busy", "check_busy", "overlap", "neither")
    med = {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in keys}
    print(f"median of {len(runs)}: " + ", ".join(f"{k} {v}" for k, v in med.items()))
    import json

    print(json.dumps({"bench": "ingest_timeline", "args": vars(args), "cpus": os.cpu_count(), "runs": runs,
                      "median": med, "ratios": {"overlap_of_commit": round(med["overlap"] / med["commit_busy"], 3)
                                                if med["commit_busy"] else None}}, separators=(",", ":")))


if __name__ == "__main__":
    main()
