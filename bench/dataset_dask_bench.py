"""Dataset commitment on Dask workers (`dataset commit --engine dask`): records/s per worker core against
the machine's SHA-256 limit for the same record sizes, 1 vs 2 workers, peak RSS per worker, a projection
to 10 TB.

Usage: .venv/bin/python bench/dataset_dask_bench.py [--records 1000000] [--dir /tmp/ailedger-bench-dask]

Records are JSONL lines of ~200 bytes.  Each run starts a LocalCluster of W worker processes (one thread
each) and commits the file with DaskEngine.build_index: phase 1 (read, parse, RFC 8785, SHA-256, spill
to partitions) as one task per 8 MiB shard, phase 2 (sort, dedup, subtree hashing) as one task per
partition.  The root is checked against a single-process build of the same file in the same run.
Reference (bench/limits.py, same run): SHA-256 with the SHA extensions on ONE core over the same
canonical records already in memory (no parsing, no I/O): the most a core can hash of these records.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from limits import sha256_many_per_s

from ailedger.encoding.canonical import canonical_json
from ailedger.provenance.datasets import build_index
from ailedger.provenance.distributed import DaskEngine

PAD = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore "


def line(i: int) -> str:
    return json.dumps({"id": i, "text": f"record {i} " + PAD[: 60 + i % 40], "lang": "en",
                       "tags": ["a", f"b{i % 97}"], "source": f"shard-{i % 1000:04d}"}) + "\n"


def make(path: Path, n: int) -> None:
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            f.seek(-400, 2)
            if json.loads(f.read().splitlines()[-1])["id"] == n - 1:
                return
    with open(path, "w") as f:
        f.writelines("".join(line(i) for i in range(a, min(n, a + 100_000))) for a in range(0, n, 100_000))


def _peak_rss_mib() -> float:
    """This process's own peak RSS (VmHWM: ru_maxrss would carry the forking parent's peak over exec)."""
    with open("/proc/self/status") as fh:
        for ln in fh:
            if ln.startswith("VmHWM:"):
                return int(ln.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sha256_cpu_per_s(items: list[bytes], rounds: int = 5) -> float:
    """Records per CPU-second (this thread's CPU time, so other jobs on the machine do not count) that
    SHA-256 with the SHA extensions hashes of ``items`` already in memory: the per-core limit."""
    from ailedger.encoding.fasthash import sha256_many

    sha256_many(items[:1000])
    c = time.thread_time()
    for _ in range(rounds):
        sha256_many(items)
    return len(items) * rounds / (time.thread_time() - c)


def run_dask(path: Path, out: Path, workers: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    with DaskEngine(workers=workers) as eng:
        base = eng.client.run(_peak_rss_mib)
        r = eng.build_index([str(path)], out, progress=False)
        rss = eng.client.run(_peak_rss_mib)
    cpu = sum(s["cpu_seconds"] for s in r["shards"])
    return {"workers": workers, "root": r["root"], "records": r["records_in"], "seconds_hash": r["seconds_hash"],
            "seconds_build": r["seconds_build"], "shards": r["units"], "P": r["P"], "worker_cpu_seconds_hash": cpu,
            "records_per_s": r["records_in"] / r["seconds_hash"],
            "records_per_worker_cpu_s": r["records_in"] / cpu,
            "peak_rss_mib_per_worker": sorted(round(v, 1) for v in rss.values()),
            "rss_mib_per_worker_at_start": sorted(round(v, 1) for v in base.values())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--dir", default="/tmp/ailedger-bench-dask")
    a = ap.parse_args()
    d = Path(a.dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"records-{a.records}.jsonl"
    make(path, a.records)
    size = path.stat().st_size
    avg = size / a.records
    print(f"{a.records} records, {size / 2**20:.0f} MiB, {avg:.0f} bytes a line", flush=True)

    sample = [canonical_json(json.loads(line(i))) for i in range(0, a.records, max(1, a.records // 200_000))]
    ref_wall, impl = sha256_many_per_s(sample, procs=1)
    ref = sha256_cpu_per_s(sample)
    print(f"reference: SHA-256 ({impl}) of the same canonical records on one core: {ref:,.0f} records per CPU-second "
          f"({ref_wall:,.0f}/s wall)", flush=True)

    t = time.perf_counter()
    local = build_index([str(path)], d / "local-index", workers=1)
    print(f"single process (local pool, 1 worker): {local['records_in'] / local['seconds_hash']:,.0f} records/s "
          f"hash, root {local['root'][:16]}... ({time.perf_counter() - t:.1f}s)", flush=True)

    runs = {}
    for w in (1, 2):
        r = run_dask(path, d / f"dask-index-{w}", w)
        assert r["root"] == local["root"], "the Dask root differs from the single-process root"
        runs[w] = r
        print(f"dask, {w} worker(s): {r['records_per_s']:,.0f} records/s wall (hash phase {r['seconds_hash']:.2f}s, "
              f"{r['shards']} shards), {r['records_per_worker_cpu_s']:,.0f} records per worker CPU-second "
              f"= {r['records_per_worker_cpu_s'] / ref:.3f} of the SHA-256 limit; build {r['seconds_build']:.2f}s; "
              f"peak RSS per worker {r['peak_rss_mib_per_worker']} MiB; root matches", flush=True)
    per_core = runs[2]["records_per_worker_cpu_s"]
    scaling = runs[2]["records_per_s"] / runs[1]["records_per_s"]
    load = os.getloadavg()
    scaling_cpu = 2 * per_core / runs[1]["records_per_worker_cpu_s"]
    print(f"scaling 1 -> 2 workers: {scaling:.2f}x wall (2 cores shared with other jobs: load {load[0]:.1f}); "
          f"{scaling_cpu:.2f}x in records per worker CPU-second x workers")
    tb = 10 * 10**12
    n_tb = tb / avg
    core_s = n_tb / per_core
    day_workers = math.ceil(core_s / 86400)
    print(f"projection, 10 TB of ~{avg:.0f}-byte records ({n_tb:.2e} records): {core_s / 3600:,.0f} core-hours of "
          f"hashing at the measured per-core rate = {day_workers} worker cores for one day, "
          f"{math.ceil(core_s / 3600)} for one hour (phase 1; the keys then fill {n_tb * 32 / 1e12:.1f} TB for the "
          "partition builds)")
    out = {"bench": "dataset_dask", "records": a.records, "bytes": size, "avg_record_bytes": round(avg, 1),
           "reference_sha256_one_core_records_per_cpu_s": round(ref), "reference_impl": impl,
           "reference_sha256_one_core_records_per_s_wall": round(ref_wall),
           "local_pool_1_worker_records_per_s": round(local["records_in"] / local["seconds_hash"]),
           "dask": {str(w): {k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "root"}
                    for w, r in runs.items()},
           "records_per_worker_core_s": round(per_core),
           "ratio_per_core_vs_sha256_limit": round(per_core / ref, 3),
           "ratio_dask_1_worker_vs_local_1_worker": round(runs[1]["records_per_s"]
                                                          / (local["records_in"] / local["seconds_hash"]), 3),
           "scaling_2_vs_1_workers_wall": round(scaling, 3), "scaling_2_vs_1_workers_cpu": round(scaling_cpu, 3),
           "peak_rss_mib_largest_worker": max(max(r["peak_rss_mib_per_worker"]) for r in runs.values()),
           "projection_10tb": {"records": n_tb, "core_hours": round(core_s / 3600), "worker_cores_for_1_day": day_workers,
                               "worker_cores_for_1_hour": math.ceil(core_s / 3600)},
           "roots_equal": True, "loadavg_end": list(load)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
