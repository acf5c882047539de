"""Dataset commitment on Dask workers (`dataset commit --engine dask`): records/s per worker core against
the machine's SHA-256 limit for the same record sizes, 1 vs 2 workers, peak RSS per worker, a projection
to 10 TB.

Usage: .venv/bin/python bench/dataset_dask_bench.py [--records 1000000] [--dir /tmp/ailedger-bench-dask] [--s3]

Records are JSONL lines of ~200 bytes.  Each run starts a LocalCluster of W worker processes (one thread
each) and commits the file with DaskEngine.build_index: phase 1 (read, parse, RFC 8785, SHA-256, spill
to partitions) as one task per 8 MiB shard, phase 2 (sort, dedup, subtree hashing) as one task per
partition.  The root is checked against a single-process build of the same file in the same run.
Reference (bench/limits.py, same run): SHA-256 with the SHA extensions on ONE core over the same
canonical records already in memory (no parsing, no I/O): the most a core can hash of these records.

Proofs from the sharded index: each proof opens the index afresh (as `dataset prove` does) and the
shards it opened are counted; the reference is the whole index, which the single-file layout mapped.
With --s3 the same file is put in a local SeaweedFS (tests/seaweed.py) and committed from
s3://bench/records.jsonl by 2 Dask workers reading ranged GETs; reference: the 2-worker run on the
local file (same root required).
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
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from limits import sha256_many_per_s

from ailedger.encoding.canonical import canonical_json
from ailedger.provenance.datasets import DatasetIndex, build_index, record_key
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


def _process_cpu() -> float:
    """This process's user+system CPU seconds."""
    t = os.times()
    return t.user + t.system


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


def run_dask(path: str, out: Path, workers: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    with DaskEngine(workers=workers) as eng:
        base = eng.client.run(_peak_rss_mib)
        cpu0 = sum(eng.client.run(_process_cpu).values())
        r = eng.build_index([path], out, progress=False)
        rss = eng.client.run(_peak_rss_mib)
        cpu_all = sum(eng.client.run(_process_cpu).values()) - cpu0
    cpu = sum(s["cpu_seconds"] for s in r["shards"])
    # the workers' whole CPU time less the shard tasks' own: the partition builds plus Dask's own work
    # (an upper bound on the build's CPU; a worker restarted mid-run would make it unknown)
    build_cpu = max(0.0, cpu_all - cpu)
    return {"workers": workers, "root": r["root"], "records": r["records_in"], "seconds_hash": r["seconds_hash"],
            "seconds_build": r["seconds_build"], "shards": r["units"], "P": r["P"], "worker_cpu_seconds_hash": cpu,
            "records_per_s": r["records_in"] / r["seconds_hash"],
            "records_per_worker_cpu_s": r["records_in"] / cpu, "worker_cpu_seconds_all": cpu_all,
            "worker_cpu_seconds_build_and_dask": build_cpu,
            "peak_rss_mib_per_worker": sorted(round(v, 1) for v in rss.values()),
            "rss_mib_per_worker_at_start": sorted(round(v, 1) for v in base.values())}


def prove_figures(ix_dir: Path, n: int, samples: int = 300) -> dict:
    """Proofs from the sharded index: time (index opened each time) and what a proof opens."""
    import hashlib

    members = [record_key(canonical_json(json.loads(line(i)))) for i in range(0, n, max(1, n // samples))]
    absent = [hashlib.sha256(b"absent %d" % i).digest() for i in range(samples)]
    whole = sum(f.stat().st_size for f in ix_dir.rglob("*.bin"))
    fixed = sum((ix_dir / f).stat().st_size for f in ("top.bin", "counts.bin"))
    times, opened, mapped = [], [], []
    for k in members + absent:
        t = time.perf_counter()
        ix = DatasetIndex(ix_dir)
        ix.prove(k)
        times.append(time.perf_counter() - t)
        opened.append(len(ix.opened))
        mapped.append(fixed + sum((ix_dir / "shards" / f"{w}-{p:05d}.bin").stat().st_size
                                  for p in ix.opened for w in ("keys", "levels")))
        partitions = 1 << ix.P
        ix.close()
    times.sort()
    return {"proofs": len(times), "partitions": partitions, "prove_ms_mean": round(1000 * sum(times) / len(times), 3),
            "prove_ms_p99": round(1000 * times[int(len(times) * 0.99)], 3), "shards_opened_max": max(opened),
            "shards_opened_mean": round(sum(opened) / len(opened), 3), "bytes_mapped_per_proof_max": max(mapped),
            "index_bytes": whole, "ratio_mapped_vs_whole": round(max(mapped) / whole, 5)}


def run_s3(path: Path, d: Path, local_run: dict, root: str) -> dict:
    """The 2-worker run again with the file read from SeaweedFS's S3 gateway."""
    from tests.seaweed import SeaweedS3

    from ailedger.provenance.s3input import S3Path

    with SeaweedS3(buckets=["bench"], data_dir=d / "weed") as s3:
        os.environ.update({k: v for k, v in s3.env().items() if k != "AWS_ENDPOINT_URL"})
        t = time.perf_counter()
        s3.client().upload_file(str(path), "bench", "records.jsonl")
        up = time.perf_counter() - t
        print(f"uploaded {path.stat().st_size / 2**20:.0f} MiB to SeaweedFS in {up:.1f}s", flush=True)
        # reference: raw boto3 ranged GETs of the same bytes in 8 MiB ranges from this process, 2 threads
        from concurrent.futures import ThreadPoolExecutor

        c, size = s3.client(), path.stat().st_size

        def get(o: int) -> int:
            return len(c.get_object(Bucket="bench", Key="records.jsonl",
                                    Range=f"bytes={o}-{o + (8 << 20) - 1}")["Body"].read())

        t = time.perf_counter()
        with ThreadPoolExecutor(2) as ex:
            got = sum(ex.map(get, range(0, size, 8 << 20)))
        raw_s = time.perf_counter() - t
        assert got == size
        print(f"reference: raw boto3 ranged GETs of the same bytes (8 MiB, 2 threads): {size / raw_s / 2**20:.0f} MiB/s "
              f"({raw_s:.1f}s)", flush=True)
        r = run_dask(S3Path("s3://bench/records.jsonl", s3.endpoint), d / "dask-index-s3", 2)
    assert r["root"] == root, "the root from S3 differs from the local file's"
    return {**{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items() if k != "root"},
            "upload_seconds": round(up, 1), "reference_raw_get_mib_per_s": round(size / raw_s / 2**20, 1),
            "raw_get_seconds": round(raw_s, 2),
            "ratio_vs_local_file_wall": round(r["records_per_s"] / local_run["records_per_s"], 3),
            "ratio_vs_local_file_cpu": round(r["records_per_worker_cpu_s"] / local_run["records_per_worker_cpu_s"], 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--dir", default="/tmp/ailedger-bench-dask")
    ap.add_argument("--s3", action="store_true", help="also commit the file from a local SeaweedFS (S3)")
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
        r = run_dask(str(path), d / f"dask-index-{w}", w)
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
    pr = prove_figures(d / "dask-index-2", a.records)
    print(f"proofs from the sharded index ({pr['partitions']} partitions): {pr['prove_ms_mean']:.2f} ms mean, "
          f"{pr['prove_ms_p99']:.2f} ms p99 (index opened afresh each time); at most {pr['shards_opened_max']} "
          f"shard(s) opened per proof; {pr['bytes_mapped_per_proof_max'] / 2**20:.2f} MiB of index files mapped per "
          f"proof vs {pr['index_bytes'] / 2**20:.0f} MiB for the whole index (ratio "
          f"{pr['ratio_mapped_vs_whole']:.4f})", flush=True)
    s3 = run_s3(path, d, runs[2], local["root"]) if a.s3 else None
    if s3:
        print(f"dask, 2 workers, input on S3 (SeaweedFS, ranged GETs): {s3['records_per_s']:,.0f} records/s wall, "
              f"{s3['records_per_worker_cpu_s']:,.0f} records per worker CPU-second = "
              f"{s3['ratio_vs_local_file_wall']:.2f} of the local-file run's wall rate; root matches", flush=True)
    tb = 10 * 10**12
    n_tb = tb / avg
    core_s = n_tb / per_core
    day_workers = math.ceil(core_s / 86400)
    build_per_rec = runs[2]["worker_cpu_seconds_build_and_dask"] / runs[2]["records"]
    core_s_build = n_tb * build_per_rec
    day_workers_all = math.ceil((core_s + core_s_build) / 86400)
    print(f"projection, 10 TB of ~{avg:.0f}-byte records ({n_tb:.2e} records): {core_s / 3600:,.0f} core-hours of "
          f"hashing at the measured per-core rate = {day_workers} worker cores for one day, "
          f"{math.ceil(core_s / 3600)} for one hour (phase 1); the partition builds (sort + subtree hashing of "
          f"{n_tb * 32 / 1e12:.1f} TB of keys, with Dask's own work) at the measured {build_per_rec * 1e6:.2f} "
          f"worker CPU-us per record: {core_s_build / 3600:,.0f} core-hours more; both phases: {day_workers_all} "
          "worker cores for one day")
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
                               "build_cpu_us_per_record": round(build_per_rec * 1e6, 3),
                               "core_hours_build": round(core_s_build / 3600),
                               "worker_cores_for_1_day_both_phases": day_workers_all,
                               "worker_cores_for_1_hour": math.ceil(core_s / 3600)},
           "proofs": pr, "s3": s3, "roots_equal": True, "loadavg_end": list(load)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
