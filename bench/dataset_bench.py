"""Dataset commitment at scale: leaf hashing rate, sparse Merkle build, proof time and size, memory.

Usage: .venv/bin/python bench/dataset_bench.py [--records 10000000] [--dir /tmp/ailedger-bench-dataset]

Records are small JSONL lines (~60 bytes: an id, a short text, a tag list, a number), like a
text corpus manifest.  "Leaf hashing" covers reading, JSON parsing, RFC 8785 canonicalisation,
SHA-256 and spilling keys to partition files (phase 1, all cores); "build" is the sort, dedup and
bottom-up hashing of the sparse Merkle tree with its on-disk proof index (phase 2, all cores).
Reference measured in the same run (the limit, issue 21): SHA-256 with the SHA extensions on every core
over the same canonical bytes already in memory (no parsing, no I/O), bench/limits.py; single-core
hashlib.sha256 per CPU-second is printed too (the earlier reference).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from limits import sha256_many_per_s

from ailedger.encoding.canonical import canonical_json
from ailedger.provenance import smt
from ailedger.provenance.datasets import (
    DatasetIndex,
    build_index,
    normalise_candidate,
    record_key,
)


def line(i: int) -> str:
    return f'{{"id": {i}, "text": "record number {i} of the corpus", "tags": ["a", "b{i % 97}"]}}\n'


def make(path: Path, n: int) -> None:
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            f.seek(-200, 2)
            last = f.read().splitlines()[-1]
        if json.loads(last)["id"] == n - 1:
            return
    with open(path, "w") as f:
        step = 100_000
        f.writelines("".join(line(i) for i in range(a, min(n, a + step))) for a in range(0, n, step))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=10_000_000)
    ap.add_argument("--dir", default="/tmp/ailedger-bench-dataset")
    ap.add_argument("--proofs", type=int, default=2000)
    a = ap.parse_args()
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    src = d / f"records-{a.records}.jsonl"
    make(src, a.records)
    size = src.stat().st_size
    print(f"dataset: {src} {a.records} records, {size / 2**20:.0f} MiB, {os.cpu_count()} cores")

    ix_dir = d / "index"
    if ix_dir.exists():
        shutil.rmtree(ix_dir)
    info = build_index([str(src)], ix_dir)
    hash_rate = info["records_in"] / info["seconds_hash"]
    cores = os.cpu_count() or 1
    # load-independent: records per CPU-second of all processes, times the cores an idle machine has
    cpu_rate = info["records_in"] / info["cpu_seconds_hash"]
    print(f"load average during the run: {os.getloadavg()}")
    print(f"leaf hashing: {info['records_in']} records in {info['seconds_hash']:.2f}s = {hash_rate / 1e6:.2f} M "
          f"records/s wall ({cpu_rate / 1e6:.2f} M per CPU-second, x{cores} cores = "
          f"{cpu_rate * cores / 1e6:.2f} M/s on an idle machine; {info['units']} units, {info['workers']} processes); build {info['seconds_build']:.2f}s; "
          f"P={info['P']} D={info['D']} root {info['root'][:16]}...")

    rss_after_build = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    # references: SHA-256 of the same canonical bytes already in memory (no parsing, no I/O) -- the limit,
    # SHA extensions on every core (bench/limits.py); and bare hashlib on one core, as before, per CPU-second
    sample = [canonical_json(json.loads(line(i))) for i in range(400_000)]
    limit_rate, limit_impl = sha256_many_per_s(sample)
    t0, c0 = time.perf_counter(), time.process_time()
    for s in sample[:200_000]:
        hashlib.sha256(s).digest()
    ref_rate = 200_000 / (time.perf_counter() - t0)
    ref_cpu_rate = 200_000 / max(time.process_time() - c0, 1e-9)
    del sample
    print(f"limit: SHA-256 ({limit_impl}) of the same canonical bytes on {cores} cores: {limit_rate / 1e6:.2f} M "
          f"records/s -> leaf hashing is {hash_rate / limit_rate:.2f} of it")

    ix = DatasetIndex(ix_dir)
    rng = random.Random(5)
    members = [line(rng.randrange(a.records)).encode() for _ in range(a.proofs)]
    absent = [line(a.records + rng.randrange(10**9)).encode() for _ in range(a.proofs)]
    times: dict[str, list[float]] = {"member": [], "absent": []}
    sizes: dict[str, list[int]] = {"member": [], "absent": []}
    vtimes = []
    for kind, cands in (("member", members), ("absent", absent)):
        for c in cands:
            t = time.perf_counter()
            key = record_key(normalise_candidate(c, "json"))
            p = ix.prove(key)
            enc = smt.encode_proof(p)
            times[kind].append(time.perf_counter() - t)
            sizes[kind].append(len(enc))
            t = time.perf_counter()
            got = smt.verify_proof(ix.root, key, smt.decode_proof(enc))
            vtimes.append(time.perf_counter() - t)
            assert got == (kind == "member"), kind
    ix.close()

    def ms(xs: list[float], q: float) -> float:
        return round(sorted(xs)[int(q * (len(xs) - 1))] * 1000, 3)

    # a whole proof file (entry + C2SP tlog-proof + SMT proof) from a small ledger, for its size
    file_bytes = None
    try:
        from ailedger.provenance import commit_dataset, prove_dataset
        from ailedger.tlog.ledger import Ledger

        tmp = Path(tempfile.mkdtemp())
        small = tmp / "s.jsonl"
        small.write_text("".join(line(i) for i in range(10_000)))
        lg = Ledger.init(tmp / "l", origin="bench.example/ledger")
        alice = lg.identities.create("alice")
        for _ in range(1000):  # a log with some history, so the inclusion proof has ~10 hashes
            lg.append_record("bench.filler", {"x": _}, alice)
        commit_dataset(lg, [str(small)], "s", alice, workers=1)
        data, _ = prove_dataset(lg, "s", line(5).encode())
        file_bytes = len(data)
        lg.close()
        shutil.rmtree(tmp)
    except Exception as e:  # noqa: BLE001 - the figure is optional
        print(f"(proof file size not measured: {e})")

    self_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out = {
        "bench": "dataset",
        "records": info["records_in"],
        "unique": info["records"],
        "bytes": size,
        "cores": os.cpu_count(),
        "leaf_hashing_records_per_s": round(hash_rate),
        "leaf_hashing_records_per_cpu_s": round(cpu_rate),
        "leaf_hashing_projected_idle_records_per_s": round(cpu_rate * cores),
        "limit_sha256_all_cores_records_per_s": round(limit_rate),
        "limit_sha256_impl": limit_impl,
        "leaf_hashing_vs_limit": round(hash_rate / limit_rate, 3),
        "reference_bare_sha256_one_core_records_per_s": round(ref_rate),
        "reference_bare_sha256_records_per_cpu_s": round(ref_cpu_rate),
        "leaf_hashing_cpu_cost_vs_bare_sha256": round(ref_cpu_rate / cpu_rate, 2),
        "cpu_seconds_hash": round(info["cpu_seconds_hash"], 2),
        "cpu_seconds_build": round(info["cpu_seconds_build"], 2),
        "loadavg_end": os.getloadavg(),
        "seconds_hash": round(info["seconds_hash"], 2),
        "seconds_build": round(info["seconds_build"], 2),
        "P": info["P"],
        "D": info["D"],
        "prove_ms": {k: {"median": ms(v, 0.5), "p99": ms(v, 0.99), "max": ms(v, 1.0)} for k, v in times.items()},
        "verify_ms_median": ms(vtimes, 0.5),
        "smt_proof_bytes": {k: {"mean": round(statistics.mean(v)), "max": max(v)} for k, v in sizes.items()},
        "proof_file_bytes_10k_records_1k_log": file_bytes,
        "peak_rss_mib": {"main_after_build": round(rss_after_build, 1), "largest_worker": round(rss_workers, 1),
                         "main_after_proofs_incl_mmap_pages": round(self_rss, 1)},
        "index_bytes": sum(f.stat().st_size for f in ix_dir.iterdir()),
    }
    print(f"proofs: member median {out['prove_ms']['member']['median']} ms (p99 {out['prove_ms']['member']['p99']}),"
          f" absent median {out['prove_ms']['absent']['median']} ms; size mean {out['smt_proof_bytes']['member']['mean']}"
          f" / max {max(out['smt_proof_bytes']['member']['max'], out['smt_proof_bytes']['absent']['max'])} bytes; "
          f"peak RSS main {out['peak_rss_mib']['main_after_build']} MiB after the build, largest worker "
          f"{out['peak_rss_mib']['largest_worker']} MiB")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
