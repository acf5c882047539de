"""What this machine allows the inference SDK's durable mode: its ceiling against fast mode, measured.

    PYTHONPATH=src .venv/bin/python bench/durable_floor_bench.py [--rounds 3] [--per-thread 400]

Issue 21 asks durable mode with 8 threads for 0.8 of fast mode's throughput (same 8 threads, same run). A
durable call returns only once its record is on the device, so every durable call waits for a device write
(0.07-0.1 ms here for a lone 4 KiB durable write). A thread of CPython 3.11 that waits either keeps the GIL
while it waits (then every other thread stops too: one device write per call, one call at a time) or gives
the GIL up and takes it back at least once per call. Each round measures, with the same 8 threads, same
ledger, alternated:

  fast          the SDK in fast mode (the reference: its non-durable throughput; the clock stops once
                every record is logged);
  durable       the SDK in durable mode as it is (journal group commit);
  encode_only   durable mode with the journal's wait taken out: each call builds its journal record (the
                commitments, the payload encrypted) and hands it to the writer at once. No device, no wait:
                the durable call's own work;
  release_once  encode_only, and the call gives the GIL up and takes it back once (``os.read(fd, 0)`` on a
                pipe: a system call that releases the GIL and returns at once). No wait at all: an upper
                bound of every design that releases the GIL while its call waits (a real wait also sleeps);
  woken_once    encode_only, and the call sleeps once until another thread wakes it (a C condition
                variable; the waker is a C thread standing in for a device that is done at once): the least
                a real wait costs (bench/wake_floor.c, built here with cc; skipped without a compiler);
  hold_gil      encode_only, and the call writes one 4 KiB block ``O_DIRECT | O_DSYNC`` (``O_DSYNC`` where
                O_DIRECT is refused) through ctypes.PyDLL, which keeps the GIL: an upper bound of every
                design that keeps the GIL while it waits (no other call can join its write).

The ceiling grants a durable call no more work than a fast call (generous: its record is built and its payload
encrypted in the caller, encode_only) plus the cheaper of the two ways to wait, each taken as what it adds to
a call of encode_only, the device's own time left out:

    ceiling = t_fast / (t_fast + min(t_release_once - t_encode_only, t_hold_gil - t_encode_only))

with t = 1 / (calls/s of the 8 threads). No durable design beats it: each of its calls waits for the device
in one of those two ways. Machine
facts printed with it (bench/wake_floor.c): a condition-variable round trip between two threads on two CPUs
and on one CPU, and a 1 us nanosleep, wall and CPU per call.

Prints human lines, then one JSON object as the last line.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import json
import mmap
import os
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import inference_bench as ib
import singles_client

from ailedger.inference import InferenceTrail
from ailedger.tlog.ledger import Ledger

SOURCE = HERE / "wake_floor.c"
THREADS = 8
TARGET = 0.8


def build(cache_dir: Path | None = None) -> tuple[Path | None, str]:
    """(path of bench/wake_floor.c built as a shared library, "") or (None, why not)."""
    return singles_client.build_c(SOURCE, cache_dir, shared=True)


def machine_facts(lib: ctypes.CDLL) -> dict[str, Any]:
    """Wake-up costs of this machine (C, no Python in the loop): per round trip / per call, in us."""
    out = (ctypes.c_double * 2)()
    facts: dict[str, Any] = {}
    for name, same in (("condvar_round_trip_two_cpus", 0), ("condvar_round_trip_one_cpu", 1)):
        if same == 0 and (os.cpu_count() or 1) < 2:
            continue
        if lib.pingpong(20000, same, out) == 0:
            facts[name] = {"wall_us": round(out[0] * 1e6, 2), "cpu_us": round(out[1] * 1e6, 2)}
    lib.nap(5000, out)
    facts["nanosleep_1us"] = {"wall_us": round(out[0] * 1e6, 2), "cpu_us": round(out[1] * 1e6, 2)}
    return facts


class _Direct:
    """One 4 KiB block written O_DIRECT|O_DSYNC (else O_DSYNC) per call with the GIL held (ctypes.PyDLL)."""

    def __init__(self, d: Path) -> None:
        self.path = d / f".hold-gil-probe-{os.getpid()}"
        self.size = 8 << 20
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, bytes(self.size))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_DSYNC | getattr(os, "O_DIRECT", 0))
            self.direct = True
        except OSError:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_DSYNC)
            self.direct = False
        self.buf = mmap.mmap(-1, 4096)  # page-aligned, as O_DIRECT needs
        self.buf.write(os.urandom(4096))
        self.addr = ctypes.addressof(ctypes.c_char.from_buffer(self.buf))
        libc = ctypes.PyDLL(ctypes.util.find_library("c") or "libc.so.6")  # PyDLL: the GIL stays held
        self.pwrite = libc.pwrite
        self.pwrite.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_long]
        self.pwrite.restype = ctypes.c_ssize_t
        self.n = 0

    def write(self) -> None:
        off = (self.n * 4096) % self.size
        self.n += 1
        if self.pwrite(self.fd, self.addr, 4096, off) != 4096:
            raise OSError(ctypes.get_errno(), "pwrite of the hold_gil probe failed")

    def close(self) -> None:
        os.close(self.fd)
        with contextlib.suppress(BufferError):  # a ctypes view may still pin the map; the process ends soon
            self.buf.close()
        self.path.unlink(missing_ok=True)


def floor_run(led: Ledger, per_thread: int, wait: Callable[[], Any] | None) -> dict[str, Any]:
    """8 closed-loop callers (ib.durable) on a durable trail whose journal wait is replaced: the record built as
    in durable mode, handed to the writer at once, after ``wait()`` (None: no wait)."""
    def prepare(trail: InferenceTrail) -> None:
        journalled = trail._journalled

        def commit(rec: bytes, item: Any) -> None:
            if wait is not None:
                wait()
            journalled([item], 1)
        trail._journal.commit = commit  # type: ignore[union-attr,method-assign]

    r = ib.durable(led, THREADS, per_thread, prepare=prepare)
    return {k: r[k] for k in ("records_per_s", "cpu_us_per_record", "calls", "logged")}


def ceiling(fast: float, encode_only: float, release_once: float, hold_gil: float) -> dict[str, Any]:
    """The ceiling of durable / fast (rates in calls/s of the same 8 threads). A durable call is granted a fast
    call's work (the most generous: its own record building is more, encode_only) plus the cheapest of the two
    ways to wait, each measured as what it adds to a call of encode_only (wall us per call of the 8-thread run,
    the device's own time left out): ceiling = fast's us per call / (that + the cheaper wait)."""
    per_fast = 1e6 / fast
    waits = {"release_once": 1e6 / release_once - 1e6 / encode_only, "hold_gil": 1e6 / hold_gil - 1e6 / encode_only}
    by = min(waits, key=lambda k: waits[k])
    c = per_fast / (per_fast + max(0.0, waits[by]))
    return {"ceiling_vs_fast": round(c, 4), "by": by, "wait_us_per_call": {k: round(v, 2) for k, v in waits.items()},
            "target": TARGET, "below_target": c < TARGET}


def one_round(led: Ledger, per_thread: int, lib: ctypes.CDLL | None, direct: _Direct) -> dict[str, Any]:
    r, w = os.pipe()
    try:
        fast = ib.durable(led, THREADS, per_thread * 8, mode="fast")
        out: dict[str, Any] = {"fast": {k: fast[k] for k in ("records_per_s", "cpu_us_per_record", "calls")}}
        dur = ib.durable(led, THREADS, per_thread)
        out["durable"] = {k: dur[k] for k in ("records_per_s", "cpu_us_per_record", "calls", "p50_ms", "p99_ms")}
        out["encode_only"] = floor_run(led, per_thread * 4, None)
        out["release_once"] = floor_run(led, per_thread * 4, lambda: os.read(r, 0))
        if lib is not None:
            out["woken_once"] = floor_run(led, per_thread, lib.wait_woken)
        out["hold_gil"] = floor_run(led, max(25, per_thread // 4), direct.write)
    finally:
        os.close(r)
        os.close(w)
    f = out["fast"]["records_per_s"]
    out["ratios_vs_fast"] = {k: round(v["records_per_s"] / f, 4) for k, v in out.items() if k != "fast"}
    out.update(ceiling(f, out["encode_only"]["records_per_s"], out["release_once"]["records_per_s"],
                       out["hold_gil"]["records_per_s"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    ap.add_argument("--per-thread", type=int, default=400, help="durable calls per thread per round (default 400)")
    a = ap.parse_args()
    if a.rounds < 1 or a.per_thread < 10:
        ap.error("--rounds must be >= 1 and --per-thread >= 10")
    root = Path(tempfile.mkdtemp(prefix="durable-floor-"))
    try:
        led = ib.make_ledger(root)
        path, why = build()
        lib = None
        facts: dict[str, Any] = {}
        if path is None:
            print(f"note: woken_once and the machine facts are skipped: {why}")
        else:
            lib = ctypes.CDLL(str(path))
            lib.pingpong.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
            lib.nap.argtypes = [ctypes.c_int, ctypes.POINTER(ctypes.c_double)]
            facts = machine_facts(lib)
            for k, v in facts.items():
                print(f"machine: {k}: {v['wall_us']} us wall, {v['cpu_us']} CPU-us")
        direct = _Direct(led.path)
        runs = []
        try:
            ib.durable(led, THREADS, 100, mode="fast")  # warm-up (imports, caches, the ledger's first batches)
            floor_run(led, 100, None)
            for i in range(a.rounds):
                r = one_round(led, a.per_thread, lib, direct)
                runs.append(r)
                print(f"round {i + 1} (load {os.getloadavg()[0]:.1f}): fast {r['fast']['records_per_s']} rec/s "
                      f"({r['fast']['cpu_us_per_record']} CPU-us); " + "; ".join(
                          f"{k} {r[k]['records_per_s']} ({r['ratios_vs_fast'][k]}, {r[k]['cpu_us_per_record']} CPU-us)"
                          for k in r["ratios_vs_fast"]) + f" -> a wait adds {r['wait_us_per_call'][r['by']]} us per call ({r['by']}): ceiling "
                          f"{r['ceiling_vs_fast']}", flush=True)
        finally:
            direct.close()
        med = {k: round(statistics.median(r["ratios_vs_fast"][k] for r in runs), 4) for k in runs[0]["ratios_vs_fast"]}
        ceil = [r["ceiling_vs_fast"] for r in runs]
        print(f"durable / fast: {med['durable']} (median); the machine's ceiling for any durable design: "
              f"{min(ceil)}-{max(ceil)} (target {TARGET})")
        print(json.dumps({"bench": "durable-floor", "threads": THREADS, "cpus": os.cpu_count(), "direct": direct.direct,
                          "machine": facts, "runs": runs, "median_ratios_vs_fast": med,
                          "references": {"fast": [r["fast"]["records_per_s"] for r in runs]},
                          "ceiling_vs_fast": ceil, "target": TARGET,
                          "ceiling_below_target": all(c < TARGET for c in ceil)}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
