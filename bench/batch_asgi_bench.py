"""``POST /v1/entries/batch`` through the server's whole ASGI app, in process, without sockets: the Guard, Starlette's
routing, the handler (the whole-body C pass, or the parsed path), ``submit_async``'s threads, the group commit and
the answer's bytes -- what ``ailedger serve`` runs for a pre-batched append, minus uvicorn's socket reads.

    PYTHONPATH=src .venv/bin/python bench/batch_asgi_bench.py [--entries 6000] [--bodies FILE] [--sodium LIB]
        [--store sqlite|postgres] [--concurrency 2]

Bodies of 1000 canonical ``bench.event`` entries (``--bodies``: the file ``bench/batch_path_bench.py`` writes, so
two trees can be compared on identical input), sent in 64 KiB pieces, ``--concurrency`` requests in flight.
``--sodium LIB``: a stub libsodium for the timed part (see batch_path_bench.py): under ``valgrind --tool=callgrind``
only our own work is counted; run with two ``--entries`` (the first bodies of the same file) and subtract.
Last line: one JSON object (CPU-us per entry of the whole process).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid

import orjson

from ailedger.encoding import _speedups
from ailedger.http.app import ServeConfig, create_app, tune_gc
from ailedger.tlog.ledger import Ledger


async def post(app: object, path: str, body: bytes, chunk: int = 65536) -> tuple[int, bytes]:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2)}
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]
    k = 0
    out: dict = {"body": b""}

    async def receive() -> dict:
        nonlocal k
        if k < len(parts):
            k += 1
            return {"type": "http.request", "body": parts[k - 1], "more_body": k < len(parts)}
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(msg: dict) -> None:
        if msg["type"] == "http.response.start":
            out["status"] = msg["status"]
        else:
            out["body"] += msg.get("body", b"")

    await app(scope, receive, send)  # type: ignore[operator]
    return out["status"], out["body"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=6000)
    ap.add_argument("--bodies", help="signed batch bodies (bench/batch_path_bench.py --bodies); written when missing")
    ap.add_argument("--sodium", help="a library to load in place of libsodium for the timed part")
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres password=root")
    ap.add_argument("--concurrency", type=int, default=2)
    args = ap.parse_args()
    from batch_path_bench import load_bodies  # the same directory

    bodies, reg = load_bodies(args.bodies, args.entries)
    bodies = bodies[: args.entries // 1000]
    d = tempfile.mkdtemp()
    store = ({"store": "postgres", "dsn": args.pg_dsn, "schema": "bab_" + uuid.uuid4().hex[:12]}
             if args.store == "postgres" else None)
    led = Ledger.init(os.path.join(d, "led"), origin="batchasgi.example/log", store=store)
    app = create_app(led, ServeConfig(open_registration=True, rate=1e9, burst=1e9, time_window=1e9, metrics=False,
                                      web=False))
    tune_gc()

    async def run() -> tuple[int, float]:
        status, _ = await post(app, "/v1/identities", orjson.dumps(reg, option=orjson.OPT_SORT_KEYS))
        assert status in (200, 201), status
        if args.sodium:
            _speedups._sodium_load(args.sodium)
        queue = list(bodies)
        n = 0

        async def client() -> None:
            nonlocal n
            while queue:
                status, answer = await post(app, "/v1/entries/batch", queue.pop(0))
                assert status == 201, answer[:300]
                n += len(orjson.loads(answer)["results"])

        t = time.process_time()
        await asyncio.gather(*[client() for _ in range(args.concurrency)])
        return n, time.process_time() - t

    try:
        n, cpu = asyncio.run(run())
        size = led.log.size
    finally:
        led.close()
    assert size == n + 1, (size, n)
    print(json.dumps({"bench": "batch_asgi", "store": args.store, "entries": n, "stub_sodium": bool(args.sodium),
                      "cpu_us_per_entry": round(cpu / n * 1e6, 2), "loadavg": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
