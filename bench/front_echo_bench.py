"""The ingest front's C loop alone (src/ailedger/tlog/_front.c, issue 21, lane answerpath): 50 closed-loop
writers (bench/singles_client.c) against ``_front`` with a Python responder that takes a group (``take``:
up to ``--group`` requests, the window while some connection is still on its way) and answers it at once, gathered as IngestFront._run does (``take`` of a first request, then ``take_ready``
pieces until every open connection is in, at most a 2 ms window),
(``reply``), optionally after holding it ``--hold-us`` (a commit's stand-in, the GIL released). No checks, no
store: what is measured is the answer path (the loop woken, the answers written, the writers' next requests
read and handed to Python) and the loop's CPU.

    PYTHONPATH=src .venv/bin/python bench/front_echo_bench.py [--requests 40000] [--conns 50] [--group 25]
                                                                [--hold-us 0] [--rounds 3] [--port 18700]

Per round: requests/s, the server process's CPU-us per request (the loop thread and the responder; the client
is another process), the client's p50/p99 and CPU, and the front's counters. Last line: one JSON object."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import singles_client

from ailedger.tlog import _front


def one_round(exe: Path, port: int, requests: int, conns: int, group: int, hold: float) -> dict:
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4096)
    _front.start(lsock.fileno())
    stop = threading.Event()
    served = [0, 0, 0]  # requests, groups, pieces taken

    def responder() -> None:  # IngestFront._run's gathering: a first request, then piece by piece (take_ready)
        n = pieces = 0
        while not stop.is_set():
            got = _front.take(0.05, 0.0, group)
            if not got:
                continue
            pieces += 1
            deadline = time.monotonic() + 0.002
            while len(got) < group:
                left = deadline - time.monotonic()
                piece, all_in = _front.take_ready(max(left, 0.0), group - len(got))
                got += piece
                pieces += bool(piece)
                if all_in or left <= 0.0:
                    break
            served[2] = pieces
            if hold:
                time.sleep(hold)
            _front.reply([(tok, 201, b'{"index":%d,"leaf_hash":"00","duplicate":false}' % (n + i))
                          for i, (tok, _) in enumerate(got)])
            n += len(got)
            served[0] = n
            served[1] += 1

    th = threading.Thread(target=responder, daemon=True)
    th.start()
    entries = [b'{"n":%d}' % i for i in range(requests)]
    try:
        c0 = time.process_time()
        r = singles_client.run(exe, f"http://127.0.0.1:{port}/v1/entries", entries, conns)
        cpu = time.process_time() - c0  # includes the waits around the client's start (small against the run)
        st = _front.stats()
    finally:
        stop.set()
        th.join(5)
        _front.stop()
        lsock.close()
    return {"loadavg": round(os.getloadavg()[0], 2), "requests_per_s": round(requests / r["seconds"]),
            "server_cpu_us_per_request": round(cpu / requests * 1e6, 2),
            "client_cpu_us_per_request": r.get("cpu_us_per_request"), "p50_ms": r.get("p50_ms"),
            "p99_ms": r.get("p99_ms"), "statuses": r["statuses"], "groups": served[1],
            "requests_per_group": round(served[0] / max(served[1], 1), 1),
            "pieces_per_group": round(served[2] / max(served[1], 1), 2),
            "front": {k: st[k] for k in ("requests", "answered", "dropped_answers")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=40000)
    ap.add_argument("--conns", type=int, default=50)
    ap.add_argument("--group", type=int, default=25)
    ap.add_argument("--hold-us", type=float, default=0.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--port", type=int, default=18700)
    a = ap.parse_args()
    exe, why = singles_client.build()
    if exe is None:
        raise SystemExit(why)
    runs = []
    for i in range(a.rounds):
        r = one_round(exe, a.port, a.requests, a.conns, a.group, a.hold_us / 1e6)
        runs.append(r)
        print(f"round {i + 1}: {r['requests_per_s']} requests/s, server {r['server_cpu_us_per_request']} CPU-us/request, "
              f"client {r['client_cpu_us_per_request']}, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
              f"{r['requests_per_group']} per group in {r['pieces_per_group']} pieces "
              f"(load {r['loadavg']})", flush=True)
    keys = ("requests_per_s", "server_cpu_us_per_request", "client_cpu_us_per_request", "p50_ms", "p99_ms")
    med = {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in keys}
    print(json.dumps({"bench": "front_echo", "args": vars(a), "cpus": os.cpu_count(), "runs": runs, "median": med,
                      "references": {"note": "A/B: run once with each tree's src on PYTHONPATH"},
                      "ratios": {"client_cpu_share": round(med["client_cpu_us_per_request"] /
                                                           (med["server_cpu_us_per_request"] +
                                                            med["client_cpu_us_per_request"]), 3)}},
                     separators=(",", ":")))


if __name__ == "__main__":
    main()
