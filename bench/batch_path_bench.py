"""The server's work for a pre-batched append, in process, without HTTP: parse the body, check and prepare the
entries (``Ingestor.prepare``: the C pass over a canonical batch), append them through the group committer, make
the answer -- the path of ``POST /v1/entries:batch`` -- in batches of 1000 ``bench.event`` entries.

    PYTHONPATH=src .venv/bin/python bench/batch_path_bench.py [--entries 6000] [--store sqlite|postgres]
        [--bodies FILE] [--sodium LIB]

Figures: CPU-us per entry of that path, and the reference measured in the same run on the same entries:
libsodium's CPU-us per verification (``_speedups.verify_entries``, one thread), so ``ratio`` is the path's cost
in verifications (the part of it that is not the signature check is ``ratio - 1``).
``--bodies FILE``: reuse (or write) the signed batch bodies, so two trees can be compared on identical input.
``--ab``: also time the same path with the C pass over the batch turned off (``Ingestor`` then checks with
``fast_parse_entries`` and makes the leaf hashes and index terms as before it), interleaved in the same process on
fresh entries (pairs of 1000-entry batches, the order alternated), and print both medians and their ratio.
``--ab-body``: the same, comparing the two paths of ``POST /v1/entries/batch`` as the server takes them (the
event loop, ``submit_async``'s worker threads): the C pass over the whole body (``Ingestor.submit_body_async``:
split, check and answer without a Python value per entry) against the parsed path (``parse_canonical`` of the
body, ``submit_async`` of its entries, the answer's dicts through orjson).
``--sodium LIB``: a library to load in place of libsodium for the timed path (a stub whose
``crypto_sign_ed25519_verify_detached`` returns 0: under ``valgrind --tool=callgrind`` only our own work is
counted; run with two ``--entries`` and subtract). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import statistics
import sys
import tempfile
import time
import uuid

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding import _speedups
from ailedger.encoding.canonical import parse_canonical
from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry, fast_parse_rows
from ailedger.tlog import ingest
from ailedger.tlog.ingest import Ingestor, IngestPolicy
from ailedger.tlog.ledger import Ledger, utc_now


def make_bodies(n: int) -> tuple[list[bytes], dict]:
    key = Ed25519PrivateKey.generate()
    did = did_from_public_key(key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
    now = utc_now()
    bodies = []
    for b in range(n // 1000):
        es = [build_entry("bench.event", {"b": b, "i": i, "subjects": [f"sha256:{(b * 1000 + i):064x}"]}, did, now,
                          key.sign).to_dict() for i in range(1000)]
        bodies.append(orjson.dumps({"entries": es}, option=orjson.OPT_SORT_KEYS))
    reg = build_entry("identity.register", {"name": "bench", "did": did, "subjects": [did]}, did, now, key.sign)
    return bodies, reg.to_dict()


def _off(leaves: object, objs: object = None) -> None:
    return None  # fast_parse_rows as without the C pass: Ingestor takes fast_parse_entries


async def _body_ab(ing: Ingestor, bodies: list[bytes], ab: dict[str, list[float]]) -> None:
    """Pairs of bodies, one through each path of POST /v1/entries/batch, the order alternated (ABBA)."""
    for k in range(0, len(bodies), 2):
        first = (k // 2) % 2 == 0
        for j, body in enumerate(bodies[k : k + 2]):
            mode = "c" if (j == 0) == first else "python"
            t1 = time.process_time()
            if mode == "c":
                res = await ing.submit_body_async(body)
                assert res is not None
                _speedups.answer_batch(res)
            else:
                doc = parse_canonical(body)
                res = await ing.submit_async(doc["entries"], batch=True, canonical=True)
                new = sum(1 for r in res if not r.duplicate)
                orjson.dumps({"results": [{"index": r.index, "leaf_hash": r.leaf_hash.hex(), "duplicate": r.duplicate}
                                          for r in res], "appended": new, "duplicates": len(res) - new})
            ab[mode].append((time.process_time() - t1) / len(res) * 1e6)


def load_bodies(path: str | None, entries: int) -> tuple[list[bytes], dict]:
    """The signed batch bodies of a run: read from `path` when it exists (the same bytes for every tree an A/B or
    callgrind comparison runs), else made by make_bodies and written there when a path is given."""
    if path and os.path.exists(path):
        with open(path, "rb") as f:
            return pickle.load(f)
    bodies, reg = make_bodies(entries)
    if path:
        with open(path, "wb") as f:
            pickle.dump((bodies, reg), f)
    return bodies, reg


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=6000)
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--pg-dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres password=root")
    ap.add_argument("--bodies", help="a file of signed batch bodies to reuse (written when missing)")
    ap.add_argument("--sodium", help="a library to load in place of libsodium for the timed path")
    ap.add_argument("--ab", action="store_true", help="compare with the C pass turned off, same process")
    ap.add_argument("--ab-body", action="store_true", help="compare the whole-body C pass with the parsed path")
    args = ap.parse_args()
    bodies, reg = load_bodies(args.bodies, args.entries)
    if (args.ab or args.ab_body) and len(bodies) % 4:
        ap.error("--ab needs --entries a multiple of 4000")
    n = sum(len(orjson.loads(b)["entries"]) for b in bodies)
    # the reference, same run, same entries: libsodium's CPU per verification
    leaves = [orjson.dumps(e, option=orjson.OPT_SORT_KEYS) for e in orjson.loads(bodies[0])["entries"]]
    t = time.process_time()
    verdicts = _speedups.verify_entries(leaves)
    ref_us = (time.process_time() - t) / len(leaves) * 1e6
    assert verdicts == b"\x01" * len(leaves)
    d = tempfile.mkdtemp()
    store = ({"store": "postgres", "dsn": args.pg_dsn, "schema": "bpb_" + uuid.uuid4().hex[:12]}
             if args.store == "postgres" else None)
    led = Ledger.init(os.path.join(d, "led"), origin="batchpath.example/log", store=store)
    try:
        ing = Ingestor(led, policy=IngestPolicy(burst=1e9, rate=1e9, time_window=1e9))
        ing.submit([reg], registration=True)
        if args.sodium:
            _speedups._sodium_load(args.sodium)
        ab: dict[str, list[float]] = {"c": [], "python": []}
        real = fast_parse_rows
        t = time.process_time()
        if args.ab_body:
            asyncio.run(_body_ab(ing, bodies, ab))
        for k in range(0, len(bodies) if not args.ab_body else 0, 2):
            mode = "c" if not args.ab or (k // 2) % 2 == (k // 4) % 2 else "python"
            ingest.fast_parse_rows = real if mode == "c" else _off
            t1 = time.process_time()
            for body in bodies[k : k + 2]:
                doc = parse_canonical(body)
                res = ing.submit(doc["entries"], batch=True, canonical=True)
                orjson.dumps({"results": [{"index": r.index, "duplicate": r.duplicate} for r in res]})
            ab[mode].append((time.process_time() - t1) / len(bodies[k : k + 2]) / 1000 * 1e6)
        us = (time.process_time() - t) / n * 1e6
        ingest.fast_parse_rows = real
        size = led.log.size
    finally:
        led.close()
    assert size == n + 1, size
    out = {"bench": "batch_path", "store": args.store, "entries": n, "stub_sodium": bool(args.sodium),
           "cpu_us_per_entry": round(us, 2), "sodium_cpu_us_per_verify": round(ref_us, 2),
           "ratio_path_vs_verify": round(us / ref_us, 3), "loadavg": os.getloadavg()[0]}
    if args.ab or args.ab_body:
        c, py = statistics.median(ab["c"]), statistics.median(ab["python"])
        out.update({"ab_c_cpu_us_per_entry": round(c, 2), "ab_python_cpu_us_per_entry": round(py, 2),
                    "ab_ratio_c_vs_python": round(c / py, 3), "ab_pairs": len(ab["c"])})
        if args.ab_body:
            out["ab"] = "whole-body C pass vs parsed body"
        print(f"{args.store}: C pass {c:.2f}, Python pass {py:.2f} CPU-us per entry (medians of {len(ab['c'])} "
              f"interleaved pairs): ratio {c / py:.3f}", file=sys.stderr)
    print(f"{args.store}: {us:.2f} CPU-us per entry; libsodium {ref_us:.2f} CPU-us per verify (same run): "
          f"ratio {us / ref_us:.3f}", file=sys.stderr)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
