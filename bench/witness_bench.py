"""Witness cosigning latency on loopback: real `ailedger witness serve` processes.

The log grows by one entry per round and asks each witness for a cosignature over its new
checkpoint (a consistency proof from the witness's last size, C2SP tlog-witness add-checkpoint).
Measured: one add-checkpoint round trip (p50/p99), and a whole collect_cosignatures call over
three witnesses (asked in parallel), which is what a log pays per checkpoint.

Prints human lines, then one JSON object as the last line.
Usage: .venv/bin/python bench/witness_bench.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ailedger.core.cosignature import verify_cosigned_checkpoint
from ailedger.services.ledger import Ledger
from ailedger.services.witness import Witness, collect_cosignatures

_BOOT = ("import click; from ailedger.cli import witness, anchor; g = click.Group('ailedger');"
         " witness.register(g); anchor.register(g); g()")


def cli_argv() -> list[str]:
    if importlib.util.find_spec("ailedger.cli.main") is not None:
        return [sys.executable, "-c", "from ailedger.cli.main import main; main()"]
    return [sys.executable, "-c", _BOOT]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1)))))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=300)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        lg = Ledger.init(tmp / "ledger", origin="bench.example/witnessed")
        lg.log.append_data([b"seed-%d" % i for i in range(1000)])
        procs, urls, vkeys = [], [], []
        try:
            for i in range(3):
                w = Witness.init(tmp / f"w{i}", name=f"bench.example/w{i}")
                w.add_log(lg.vkey)
                vkeys.append(w.vkey)
                w.close()
                p = subprocess.Popen([*cli_argv(), "witness", "serve", "--witness", str(tmp / f"w{i}"), "--port", "0"],
                                     stdout=subprocess.PIPE, text=True)
                procs.append(p)
                urls.append(p.stdout.readline().split(" on ")[1].split()[0])
            single: list[float] = []
            whole: list[float] = []
            for r in range(args.rounds):
                lg.log.append_data([b"entry-%d" % r])
                replies: list = []
                t = time.perf_counter()
                note = collect_cosignatures(lg, urls, on_reply=replies.append)
                whole.append(time.perf_counter() - t)
                assert all(x.ok for x in replies), [x.error for x in replies if not x.ok]
                single.extend(x.seconds for x in replies)
            verify_cosigned_checkpoint(note, lg.vkey, vkeys, 3)
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)
            lg.close()
    ms = lambda x: round(x * 1000, 2)
    print(f"{args.rounds} checkpoints, 3 witness processes on 127.0.0.1, log of {1000 + args.rounds} entries")
    print(f"one add-checkpoint round trip (proof check + Ed25519 cosignature + fsync'd SQLite update): "
          f"p50 {ms(pct(single, 50))} ms, p99 {ms(pct(single, 99))} ms (n={len(single)})")
    print(f"collect_cosignatures over 3 witnesses (in parallel; incl. signing the checkpoint and the fsync'd client state): "
          f"p50 {ms(pct(whole, 50))} ms, p99 {ms(pct(whole, 99))} ms")
    print(json.dumps({
        "bench": "witness", "rounds": args.rounds, "witnesses": 3,
        "add_checkpoint_ms": {"p50": ms(pct(single, 50)), "p99": ms(pct(single, 99)),
                              "mean": ms(statistics.mean(single)), "n": len(single)},
        "collect_3_witnesses_ms": {"p50": ms(pct(whole, 50)), "p99": ms(pct(whole, 99)),
                                   "mean": ms(statistics.mean(whole)), "n": len(whole)},
    }))


if __name__ == "__main__":
    main()
