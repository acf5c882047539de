"""The ingest front's C loop alone (src/ailedger/tlog/_front.c, issue 21, lane answerpath): 50 closed-loop
writers (bench/singles_client.c) against ``_front`` with a Python responder that takes a group (``take``:
up to ``--group`` requests, the window while some connection is still on its way) and answers it at once, gathered as IngestFront._run does (``take`` of a first request, then ``take_ready``
pieces until every open connection is in, at most a 2 ms window),
(``reply``), optionally after holding it ``--hold-us`` (a commit's stand-in, the GIL released). No checks, no
store: what is measured is the answer path (the loop woken, the answers written, the writers' next requests
read and handed to Python) and the loop's CPU.

    PYTHONPATH=src .venv/bin/python bench/front_echo_bench.py [--requests 40000] [--conns 50] [--group 25]
                                                                [--hold-us 0] [--rounds 3] [--port 18700]
                                                                [--body-bytes N] [--leaf-hash-hex 2]

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


def one_round(exe: Path, port: int, requests: int, conns: int, group: int, hold: float,
              bodies: list[bytes] | None = None, body_bytes: int | None = None, leaf_hash_hex: int = 2) -> dict:
    """One run of ``requests`` requests. The request bodies: ``bodies`` when given (``requests`` is then their
    number: bench/singles_floor_bench.py passes the real signed entries of http_bench's single-entry writers),
    else ``{"n":i}`` padded with spaces to ``body_bytes`` when given, else ``{"n":i}`` (6-10 bytes). The answer's
    ``leaf_hash`` has ``leaf_hash_hex`` characters (the ingest front's real answer: 64).

    ``server_cpu_us_per_request`` is this process's CPU over the run (the front's loop, the responder and the main
    thread's client bookkeeping: writing the entries file, parsing the results); ``server_threads_cpu_us_per_request``
    leaves the main thread out: the loop thread and the responder alone, what a server spends."""
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(4096)
    _front.start(lsock.fileno())
    stop = threading.Event()
    fake_hash = b"0" * leaf_hash_hex
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
            _front.reply([(tok, 201, b'{"index":%d,"leaf_hash":"%s","duplicate":false}' % (n + i, fake_hash))
                          for i, (tok, _) in enumerate(got)])
            n += len(got)
            served[0] = n
            served[1] += 1

    th = threading.Thread(target=responder, daemon=True)
    th.start()
    if bodies is not None:
        entries = list(bodies)
        requests = len(entries)
    elif body_bytes is not None:
        entries = [(b'{"n":%d}' % i).ljust(body_bytes) for i in range(requests)]
    else:
        entries = [b'{"n":%d}' % i for i in range(requests)]
    try:
        c0, m0 = time.process_time(), time.thread_time()
        r = singles_client.run(exe, f"http://127.0.0.1:{port}/v1/entries", entries, conns)
        cpu = time.process_time() - c0  # includes the waits around the client's start (small against the run)
        threads_cpu = cpu - (time.thread_time() - m0)  # without the main thread (the client's bookkeeping)
        st = _front.stats()
    finally:
        stop.set()
        th.join(5)
        _front.stop()
        lsock.close()
    return {"loadavg": round(os.getloadavg()[0], 2), "requests_per_s": round(requests / r["seconds"]),
            "server_cpu_us_per_request": round(cpu / requests * 1e6, 2),
            "server_threads_cpu_us_per_request": round(threads_cpu / requests * 1e6, 2),
            "body_bytes_mean": round(sum(map(len, entries)) / max(1, len(entries)), 1),
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
    ap.add_argument("--body-bytes", type=int, default=None,
                    help="pad each request body with spaces to this many bytes (default: {\"n\":i}, 6-10 bytes; "
                         "a signed single entry of http_bench is about 450)")
    ap.add_argument("--leaf-hash-hex", type=int, default=2,
                    help="characters of the answer's leaf_hash (default 2; the ingest front's real answer has 64)")
    a = ap.parse_args()
    if a.body_bytes is not None and a.body_bytes < 12:
        ap.error("--body-bytes must be at least 12 (the {\"n\":i} body itself)")
    if a.leaf_hash_hex < 0:
        ap.error("--leaf-hash-hex must not be negative")
    exe, why = singles_client.build()
    if exe is None:
        raise SystemExit(why)
    runs = []
    for i in range(a.rounds):
        r = one_round(exe, a.port, a.requests, a.conns, a.group, a.hold_us / 1e6, body_bytes=a.body_bytes,
                      leaf_hash_hex=a.leaf_hash_hex)
        runs.append(r)
        print(f"round {i + 1}: {r['requests_per_s']} requests/s, server {r['server_cpu_us_per_request']} CPU-us/request, "
              f"client {r['client_cpu_us_per_request']}, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
              f"{r['requests_per_group']} per group in {r['pieces_per_group']} pieces "
              f"(load {r['loadavg']})", flush=True)
    keys = ("requests_per_s", "server_cpu_us_per_request", "server_threads_cpu_us_per_request",
            "client_cpu_us_per_request", "p50_ms", "p99_ms")
    med = {k: statistics.median(r[k] for r in runs if r[k] is not None) for k in keys}
    print(json.dumps({"bench": "front_echo", "args": vars(a), "cpus": os.cpu_count(), "runs": runs, "median": med,
                      "references": {"note": "A/B: run once with each tree's src on PYTHONPATH"},
                      "ratios": {"client_cpu_share": round(med["client_cpu_us_per_request"] /
                                                           (med["server_cpu_us_per_request"] +
                                                            med["client_cpu_us_per_request"]), 3)}},
                     separators=(",", ":")))


if __name__ == "__main__":
    main()
