"""Witness cosigning latency on loopback: real `ailedger witness serve` processes.

The log grows by one entry per round and asks each witness for a cosignature over its new
checkpoint (a consistency proof from the witness's last size, C2SP tlog-witness add-checkpoint).
Measured: one add-checkpoint round trip (p50/p99), and a whole collect_cosignatures call over
three witnesses (asked in parallel), which is what a log pays per checkpoint.

Reference measured in the same run, once per round between the round trips: the essential work of one
add-checkpoint done in process (open the note, verify the consistency proof, one cosignature, one
fdatasync): the floor of a round trip.
Prints human lines, then one JSON object as the last line.
Usage: .venv/bin/python bench/witness_bench.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ailedger.tlog.cosignature import verify_cosigned_checkpoint
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.witness import Witness, collect_cosignatures

_BOOT = ("import click; from ailedger.cli import witness, anchor; g = click.Group('ailedger');"
         " witness.register(g); anchor.register(g); g()")


def cli_argv() -> list[str]:
    if importlib.util.find_spec("ailedger.cli.main") is not None:
        return [sys.executable, "-c", "from ailedger.cli.main import main; main()"]
    return [sys.executable, "-c", _BOOT]


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, round(p / 100 * (len(xs) - 1))))]


class WitnessFloor:
    """The limit of one add-checkpoint: a witness's essential work done in process, no HTTP, no server --
    open the log's signed checkpoint, verify the consistency proof from the previous size, sign a
    cosignature, and one durable 4 KiB write (the witness keeps its new size). Timed once per round,
    between the real round trips, so that both see the same disk and CPU (fdatasync latency on a shared
    disk moves by 10x within minutes)."""

    def __init__(self, tmp: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.key = Ed25519PrivateKey.generate()
        self.path = tmp / "floor-state"
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        os.write(self.fd, b"x" * 4096)
        os.fsync(self.fd)
        self.samples: list[float] = []

    def once(self, lg: Ledger) -> None:
        from ailedger.tlog.checkpoint import open_checkpoint
        from ailedger.tlog.merkle import verify_consistency

        size = lg.size
        note = lg.store.latest_checkpoint()
        proof = lg.log.consistency_proof(size - 1, size)
        r_old, r_new = lg.log.root_at(size - 1), lg.log.root_at(size)
        t = time.perf_counter()
        cp = open_checkpoint(note, lg.verifier)
        verify_consistency(size - 1, cp.size, r_old, r_new, proof)
        sig = self.key.sign(note)
        os.pwrite(self.fd, sig * 64, 0)
        os.fdatasync(self.fd)
        self.samples.append(time.perf_counter() - t)

    def close(self) -> None:
        os.close(self.fd)


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
            floor_w = WitnessFloor(tmp)
            for r in range(args.rounds):
                lg.log.append_data([b"entry-%d" % r])
                replies: list = []
                t = time.perf_counter()
                note = collect_cosignatures(lg, urls, witness_vkeys=vkeys, on_reply=replies.append)
                whole.append(time.perf_counter() - t)
                assert all(x.ok for x in replies), [x.error for x in replies if not x.ok]
                single.extend(x.seconds for x in replies)
                floor_w.once(lg)
            verify_cosigned_checkpoint(note, lg.vkey, vkeys, 3)
            floor_w.close()
            floor = pct(floor_w.samples, 50)
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
    print(f"the floor of one round trip's essential work, in process, timed between the rounds (open the checkpoint "
          f"note, verify the consistency proof, one Ed25519 cosignature, one fdatasync): p50 {ms(floor)} ms -> "
          f"add-checkpoint p50 is {pct(single, 50) / floor:.1f}x it")
    print(json.dumps({
        "bench": "witness", "rounds": args.rounds, "witnesses": 3,
        "floor_ms": ms(floor), "ratio_add_checkpoint_p50_vs_floor": round(pct(single, 50) / floor, 2),
        "add_checkpoint_ms": {"p50": ms(pct(single, 50)), "p99": ms(pct(single, 99)),
                              "mean": ms(statistics.mean(single)), "n": len(single)},
        "collect_3_witnesses_ms": {"p50": ms(pct(whole, 50)), "p99": ms(pct(whole, 99)),
                                   "mean": ms(statistics.mean(whole)), "n": len(whole)},
    }))


if __name__ == "__main__":
    main()
