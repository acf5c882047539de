"""Model directory hashing: ailedger's manifest engine vs this machine's limit and vs model-signing 1.1.

Usage: .venv/bin/python bench/model_hash_bench.py [--gib 2] [--dir /tmp/ailedger-bench-model] [--rounds 3]
       .venv/bin/python bench/model_hash_bench.py --dask [--gib 1] [--shards 8] [--rounds 3]

``--dask``: a sharded checkpoint (``--shards`` safetensors files) hashed on this host, on a Dask
LocalCluster of 1 and of 2 worker processes, against the SHA-256 limit (CPU-seconds and wall); then a
new version after a README edit and one rewritten shard, registered with the hash cache (only those
two files read) against a full re-hash, on this host and on Dask.

The model is a safetensors file of ~GIB (many tensors, like a real checkpoint) plus config files.
All runs read from the page cache (the files are read once first), interleaved round by round so
that load from other processes on this shared machine hits every contender alike; the best round
of each is reported.

limit = min(raw SHA-256 throughput with one thread per core on in-memory 4 MiB buffers,
            read bandwidth of the same files with one preadv thread per core and no hashing)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import struct
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from ailedger.provenance.hashing import HashStats, cpu_workers, hash_model_dir, scan_dir

MIB = 1 << 20


def make_model(d: Path, gib: float) -> None:
    import numpy as np

    d.mkdir(parents=True, exist_ok=True)
    target = int(gib * (1 << 30))
    st = d / "model.safetensors"
    if st.exists() and abs(st.stat().st_size - target) < 64 * MIB:
        return
    rng = np.random.default_rng(1)
    header, off, sizes = {}, 0, []
    i = 0
    while off < target - 40 * MIB:
        n = int(rng.integers(4 * MIB, 40 * MIB)) // 2 * 2
        header[f"layers.{i}.weight"] = {"dtype": "BF16", "shape": [n // 2], "data_offsets": [off, off + n]}
        header[f"layers.{i}.bias"] = {"dtype": "BF16", "shape": [1024], "data_offsets": [off + n, off + n + 2048]}
        sizes += [n, 2048]
        off += n + 2048
        i += 1
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(st, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        left = off
        while left:
            n = min(left, 64 * MIB)
            f.write(rng.bytes(n))
            left -= n
    (d / "config.json").write_text(json.dumps({"hidden_size": 4096, "layers": i}))
    (d / "tokenizer.json").write_bytes(rng.bytes(2 * MIB))
    (d / "generation_config.json").write_text("{}")


def warm(files: list[str]) -> None:
    buf = bytearray(8 * MIB)
    for p in files:
        with open(p, "rb", buffering=0) as f:
            while f.readinto(buf):
                pass


class RssSampler:
    """Peak anonymous and file-backed resident memory of this process (sampled every 20 ms):
    file-backed pages are page cache mapped for hashing, reclaimable, not memory the hasher holds."""

    def __init__(self) -> None:
        import threading

        self.anon = self.file = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            try:
                txt = Path("/proc/self/status").read_text()
            except OSError:
                return
            for ln in txt.splitlines():
                if ln.startswith("RssAnon:"):
                    self.anon = max(self.anon, int(ln.split()[1]))
                elif ln.startswith("RssFile:"):
                    self.file = max(self.file, int(ln.split()[1]))

    def stop(self) -> None:
        self._stop.set()
        self._t.join()


def cpu_now() -> float:
    t = os.times()
    return t.user + t.system


def raw_cpu_rate(seconds: float = 1.0) -> float:
    """Bytes of SHA-256 per CPU-second (one thread, in memory): load-independent-ish."""
    block = os.urandom(4 * MIB)
    n, c0, t0 = 0, cpu_now(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        hashlib.sha256(block).digest()
        n += len(block)
    return n / max(cpu_now() - c0, 1e-9)


def raw_hash_rate(workers: int, seconds: float = 2.0) -> float:
    block = os.urandom(4 * MIB)

    def run(_: int) -> int:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            hashlib.sha256(block).digest()
            n += len(block)
        return n

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(run, range(workers)))
    return total / (time.perf_counter() - t0)


def read_rate(files: list[str], workers: int) -> float:
    jobs = []
    for p in files:
        size = os.path.getsize(p)
        jobs += [(p, off, min(4 * MIB, size - off)) for off in range(0, size, 4 * MIB)]
    import threading

    tls = threading.local()

    def rd(j: tuple[str, int, int]) -> int:
        buf = getattr(tls, "b", None)
        if buf is None:
            buf = tls.b = memoryview(bytearray(4 * MIB))
        fd = os.open(j[0], os.O_RDONLY)
        try:
            return os.preadv(fd, [buf[:j[2]]], j[1])
        finally:
            os.close(fd)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        total = sum(pool.map(rd, jobs))
    return total / (time.perf_counter() - t0)


def ours(d: Path, workers: int) -> tuple[float, str, HashStats, float]:
    st = HashStats()
    c0 = cpu_now()
    m = hash_model_dir(d, workers=workers, stats=st)
    return st.bytes_hashed / st.seconds, m.root.hex(), st, st.bytes_hashed / max(cpu_now() - c0, 1e-9)


def model_signing_rate(d: Path, method: str) -> tuple[float, float]:
    from model_signing import hashing

    cfg = hashing.Config()
    if method == "files":
        cfg.use_file_serialization(hashing_algorithm="sha256")
    else:
        cfg.use_shard_serialization(hashing_algorithm="sha256")
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
    t0, c0 = time.perf_counter(), cpu_now()
    cfg.hash(d)
    return total / (time.perf_counter() - t0), total / max(cpu_now() - c0, 1e-9)


def make_sharded(d: Path, gib: float, shards: int) -> None:
    """A checkpoint of ``shards`` safetensors files (~gib in all), its config and README."""
    import numpy as np

    d.mkdir(parents=True, exist_ok=True)
    per = int(gib * (1 << 30)) // shards
    rng = np.random.default_rng(2)
    for s in range(shards):
        p = d / f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        if p.exists() and abs(p.stat().st_size - per) < 8 * MIB:
            continue
        write_shard(p, per, rng, s)
    (d / "config.json").write_text(json.dumps({"hidden_size": 4096, "shards": shards}))
    (d / "README.md").write_text("# bench model\n")


def write_shard(p: Path, size: int, rng: Any, s: int) -> None:
    header, off, i = {}, 0, 0
    while off < size - 16 * MIB:
        n = int(rng.integers(2 * MIB, 16 * MIB)) // 2 * 2
        header[f"layers.{s}.{i}.weight"] = {"dtype": "BF16", "shape": [n // 2], "data_offsets": [off, off + n]}
        off += n
        i += 1
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    tmp = p.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        left = off
        while left:
            n = min(left, 64 * MIB)
            f.write(rng.bytes(n))
            left -= n
    os.replace(tmp, p)


def rewrite_shard(p: Path, rng: Any) -> None:
    """A new version of one shard: same header and size, new tensor bytes, a new file put in its place."""
    with open(p, "rb") as f:
        head = f.read(8)
        header = f.read(int.from_bytes(head, "little"))
    data = os.path.getsize(p) - 8 - len(header)
    tmp = p.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(head + header)
        while data:
            n = min(data, 64 * MIB)
            f.write(rng.bytes(n))
            data -= n
    os.replace(tmp, p)


def _vm_hwm_kib() -> int:
    """Peak resident memory of the calling process (run on each Dask worker)."""
    for ln in Path("/proc/self/status").read_text().splitlines():
        if ln.startswith("VmHWM:"):
            return int(ln.split()[1])
    return 0


def _proc_cpu(pid: int) -> float:
    """utime + stime of one process, from /proc (seconds)."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def dask_main(a: argparse.Namespace) -> None:
    import shutil
    import tempfile

    import distributed
    import numpy as np

    from ailedger.provenance.distributed import DaskEngine
    from ailedger.provenance.hashing import RACY_NS, HashCache
    from ailedger.provenance.model_distributed import DaskModelHasher

    d = Path(a.dir + "-sharded")
    make_sharded(d, a.gib, a.shards)
    files = [f.path for f in scan_dir(d)]
    total = sum(os.path.getsize(p) for p in files)
    cores = cpu_workers()
    print(f"model: {d} {total / (1 << 30):.2f} GiB in {len(files)} files ({a.shards} shards); {cores} cores; "
          f"load average {os.getloadavg()}")
    warm(files)
    clusters = {n: distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                            dashboard_address=":0", host="127.0.0.1", silence_logs=40)
                for n in (1, 2)}
    engines = {n: DaskEngine(c.scheduler_address).__enter__() for n, c in clusters.items()}
    pids = {n: list(e.client.run(os.getpid).values()) for n, e in engines.items()}
    ref_root = hash_model_dir(d).root.hex()

    def run_dask(n: int) -> tuple[float, float, float]:
        """(bytes per wall second, bytes per CPU-second of the workers and this process (scheduler and
        client included), bytes per CPU-second inside the hashing tasks)."""
        h = DaskModelHasher(engines[n], task_bytes=a.task_mib * MIB)
        c0 = cpu_now() + sum(_proc_cpu(p) for p in pids[n])
        t0 = time.perf_counter()
        m = h.hash_model_dir(d)
        wall = time.perf_counter() - t0
        cpu = cpu_now() + sum(_proc_cpu(p) for p in pids[n]) - c0
        if m.root.hex() != ref_root:
            raise SystemExit(f"dask root {m.root.hex()} != single-host {ref_root}")
        return total / wall, total / max(cpu, 1e-9), total / max(h.last["cpu_seconds"], 1e-9)

    def raw_thread_cpu_rate(seconds: float = 1.0) -> float:
        """Bytes of SHA-256 per CPU-second of this thread alone (the schedulers of the LocalClusters run
        in this process: its process CPU is not the reference's)."""
        block = os.urandom(4 * MIB)
        n, c0, t0 = 0, time.thread_time(), time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            hashlib.sha256(block).digest()
            n += len(block)
        return n / max(time.thread_time() - c0, 1e-9)

    best: dict[str, float] = {}
    per_round: dict[str, list[float]] = {"dask2_vs_single": [], "dask2_vs_dask1": [], "dask2_vs_limit": []}
    for r in range(a.rounds):
        row = {"raw_sha256_1thread": raw_hash_rate(1), "raw_sha256_all_cores": raw_hash_rate(cores),
               "raw_sha256_per_cpu_s": raw_thread_cpu_rate()}
        rate, root, _, cpu_rate = ours(d, cores)
        if root != ref_root:
            raise SystemExit("single-host root moved between runs")
        row["single_host"], row["single_host_per_cpu_s"] = rate, cpu_rate
        row["dask_1_worker"], row["dask_1_worker_per_cpu_s"], row["dask_1_worker_per_task_cpu_s"] = run_dask(1)
        row["dask_2_workers"], row["dask_2_workers_per_cpu_s"], row["dask_2_workers_per_task_cpu_s"] = run_dask(2)
        per_round["dask2_vs_single"].append(row["dask_2_workers"] / row["single_host"])
        per_round["dask2_vs_dask1"].append(row["dask_2_workers"] / row["dask_1_worker"])
        per_round["dask2_vs_limit"].append(row["dask_2_workers"] / row["raw_sha256_all_cores"])
        print(f"round {r + 1}: " + ", ".join(f"{k} {v / MIB:.0f} MiB/s" for k, v in row.items()))
        for k, v in row.items():
            best[k] = max(best.get(k, 0.0), v)
    peak_rss = {n: sorted(round(v / 1024, 1) for v in e.client.run(_vm_hwm_kib).values()) for n, e in engines.items()}
    print(f"peak RSS per worker (VmHWM, MiB): 1-worker cluster {peak_rss[1]}, 2-worker cluster {peak_rss[2]}")
    # incremental: v1 registered with the cache, then README edited and one shard rewritten
    work = Path(tempfile.mkdtemp(prefix="ailedger-bench-incr-", dir=str(d.parent)))
    inc: dict[str, Any] = {}
    try:
        v = work / "model"
        shutil.copytree(d, v)
        warm([f.path for f in scan_dir(v)])
        for engine in ("local", "dask_2"):
            cache = HashCache(work / f"cache-{engine}.sqlite")
            hasher = hash_model_dir if engine == "local" else DaskModelHasher(engines[2], task_bytes=a.task_mib * MIB).hash_model_dir
            hasher(v, cache=cache)  # version 1, fills the cache
            time.sleep(2 * RACY_NS / 1e9)
            fulls, incs = [], []
            for r in range(a.rounds):
                (v / "README.md").write_text(f"# bench model\n\nrevision {engine} {r}\n")
                shard = v / f"model-{a.shards:05d}-of-{a.shards:05d}.safetensors"
                rewrite_shard(shard, np.random.default_rng(100 + r))
                warm([str(shard)])
                time.sleep(2 * RACY_NS / 1e9)
                st_i = HashStats()
                t0 = time.perf_counter()
                mi = hasher(v, cache=cache, stats=st_i)
                t_inc = time.perf_counter() - t0
                st_f = HashStats()
                t0 = time.perf_counter()
                mf = hasher(v, stats=st_f)  # no cache: every byte
                t_full = time.perf_counter() - t0
                if mi.root != mf.root:
                    raise SystemExit("incremental root differs from the full re-hash")
                if sorted(st_i.hashed_paths) != sorted(["README.md", shard.name]):
                    raise SystemExit(f"incremental re-hashed {st_i.hashed_paths}")
                fulls.append(t_full)
                incs.append(t_inc)
            cache.close()
            inc[engine] = {"full_s": round(min(fulls), 3), "incremental_s": round(min(incs), 3),
                           "speedup": round(min(fulls) / min(incs), 2),
                           "bytes_rehashed": st_i.bytes_hashed, "files_rehashed": st_i.files_hashed,
                           "bytes_fraction": round(st_i.bytes_hashed / st_i.bytes_total, 4),
                           "expected_speedup_bytes": round(st_i.bytes_total / st_i.bytes_hashed, 2)}
            print(f"incremental ({engine}): re-hashed {st_i.files_hashed} files ({st_i.bytes_hashed / MIB:.0f} MiB of "
                  f"{st_i.bytes_total / MIB:.0f}) in {min(incs):.3f}s vs full {min(fulls):.3f}s: "
                  f"{min(fulls) / min(incs):.1f}x faster")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        for e in engines.values():
            e.__exit__(None, None, None)
        for c in clusters.values():
            c.close()
    raw_cpu = best["raw_sha256_per_cpu_s"]
    limit = best["raw_sha256_all_cores"]
    out = {
        "bench": "model_hash_dask",
        "bytes": total, "files": len(files), "shards": a.shards, "cores": cores, "task_mib": a.task_mib,
        "mib_per_s": {k: round(v / MIB, 1) for k, v in best.items()},
        "limit_mib_per_s": round(limit / MIB, 1),
        "ratio_dask2_to_limit": round(best["dask_2_workers"] / limit, 3),
        "ratio_single_host_to_limit": round(best["single_host"] / limit, 3),
        "ratio_dask2_to_single_host": round(best["dask_2_workers"] / best["single_host"], 3),
        "scaling_dask_2_vs_1": round(best["dask_2_workers"] / best["dask_1_worker"], 3),
        "cpu_efficiency_dask_1": round(best["dask_1_worker_per_cpu_s"] / raw_cpu, 3),
        "cpu_efficiency_dask_2": round(best["dask_2_workers_per_cpu_s"] / raw_cpu, 3),
        "cpu_efficiency_single_host": round(best["single_host_per_cpu_s"] / raw_cpu, 3),
        "task_cpu_efficiency_dask_2": round(best["dask_2_workers_per_task_cpu_s"] / raw_cpu, 3),
        "per_round_wall_ratios": {k: [round(x, 3) for x in v] for k, v in per_round.items()},
        "median_wall_ratios": {k: round(sorted(v)[len(v) // 2], 3) for k, v in per_round.items()},
        "peak_rss_mib_per_worker": {str(k): v for k, v in peak_rss.items()},
        "incremental": inc,
        "loadavg_end": os.getloadavg(),
        "manifest_root": ref_root,
    }
    print(f"dask 2 workers {out['mib_per_s']['dask_2_workers']} MiB/s = {out['ratio_dask2_to_limit']:.0%} of the "
          f"{cores}-core SHA-256 limit {out['limit_mib_per_s']} MiB/s, {out['ratio_dask2_to_single_host']:.2f}x single "
          f"host; 2 vs 1 workers {out['scaling_dask_2_vs_1']:.2f}x; per CPU-second: dask "
          f"{out['cpu_efficiency_dask_2']:.0%} (inside the tasks {out['task_cpu_efficiency_dask_2']:.0%}) / single host "
          f"{out['cpu_efficiency_single_host']:.0%} of bare SHA-256; "
          f"load average {os.getloadavg()}")
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gib", type=float, default=None, help="model size (default 2, with --dask 1)")
    ap.add_argument("--dir", default="/tmp/ailedger-bench-model")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=6, help="back-to-back ailedger / model-signing pairs")
    ap.add_argument("--dask", action="store_true", help="Dask 1 vs 2 workers vs single host, and incremental re-hash")
    ap.add_argument("--shards", type=int, default=8, help="with --dask: safetensors shards")
    ap.add_argument("--task-mib", type=int, default=64, help="with --dask: MiB of chunks per Dask task")
    a = ap.parse_args()
    if a.dask:
        a.gib = a.gib or 1.0
        dask_main(a)
        return
    a.gib = a.gib or 2.0
    d = Path(a.dir)
    make_model(d, a.gib)
    files = [f.path for f in scan_dir(d)]
    total = sum(os.path.getsize(p) for p in files)
    workers = cpu_workers()
    print(f"model: {d} {total / (1 << 30):.2f} GiB in {len(files)} files; {workers} cores")
    warm(files)
    best: dict[str, float] = {}
    sampler = RssSampler()
    root = ""
    stats = None
    for r in range(a.rounds):
        row = {
            "raw_sha256_1thread": raw_hash_rate(1),
            "raw_sha256_all_cores": raw_hash_rate(workers),
            "read_all_cores": read_rate(files, workers),
        }
        row["raw_sha256_per_cpu_s"] = raw_cpu_rate()
        rate, root, stats, cpu_rate = ours(d, workers)
        row["ailedger"] = rate
        row["ailedger_per_cpu_s"] = cpu_rate
        row["model_signing_files"], row["model_signing_files_per_cpu_s"] = model_signing_rate(d, "files")
        row["model_signing_shards"], row["model_signing_shards_per_cpu_s"] = model_signing_rate(d, "shards")
        print(f"round {r + 1}: " + ", ".join(f"{k} {v / MIB:.0f} MiB/s" for k, v in row.items()))
        for k, v in row.items():
            best[k] = max(best.get(k, 0.0), v)
    # back-to-back pairs: a burst of outside load hits both members of a pair alike
    pair_ratios, pair_limit = [], []
    for _ in range(a.pairs):
        r_raw = raw_hash_rate(workers, seconds=1.0)
        r_ours = ours(d, workers)[0]
        r_ms = model_signing_rate(d, "files")[0]
        pair_ratios.append(r_ours / r_ms)
        pair_limit.append(r_ours / r_raw)
    pair_ratios.sort()
    pair_limit.sort()
    limit = min(best["raw_sha256_all_cores"], best["read_all_cores"])
    sampler.stop()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_eff = best["ailedger_per_cpu_s"] / best["raw_sha256_per_cpu_s"]
    out = {
        "bench": "model_hash",
        "bytes": total,
        "files": len(files),
        "cores": workers,
        "algorithm": "sha256",
        "chunk_size": 4 * MIB,
        "mib_per_s": {k: round(v / MIB, 1) for k, v in best.items()},
        "limit_mib_per_s": round(limit / MIB, 1),
        "ratio_to_limit": round(best["ailedger"] / limit, 3),
        "speedup_vs_model_signing_files": round(best["ailedger"] / best["model_signing_files"], 2),
        "speedup_vs_model_signing_shards": round(best["ailedger"] / best["model_signing_shards"], 2),
        "pairs_speedup_vs_model_signing_files": [round(x, 2) for x in pair_ratios],
        "pairs_speedup_median": round(pair_ratios[len(pair_ratios) // 2], 2) if pair_ratios else None,
        "pairs_ratio_to_limit": [round(x, 2) for x in pair_limit],
        "pairs_ratio_to_limit_median": round(pair_limit[len(pair_limit) // 2], 2) if pair_limit else None,
        "cpu_efficiency_vs_raw_sha256": round(cpu_eff, 3),
        "projected_idle_ratio_to_limit": round(cpu_eff, 3),
        "loadavg_end": os.getloadavg(),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "peak_rss_anon_mib": round(sampler.anon / 1024, 1),
        "peak_rss_file_mib": round(sampler.file / 1024, 1),
        "manifest_root": root,
        "hash_stats": stats.to_dict() if stats else None,
    }
    print(f"ailedger {out['mib_per_s']['ailedger']} MiB/s = {out['ratio_to_limit']:.0%} of the limit "
          f"{out['limit_mib_per_s']} MiB/s; {out['speedup_vs_model_signing_files']}x model-signing (files), "
          f"{out['speedup_vs_model_signing_shards']}x model-signing (shards); peak RSS {out['peak_rss_mib']} MiB "
          f"(anonymous {out['peak_rss_anon_mib']} MiB, file-backed {out['peak_rss_file_mib']} MiB)")
    print(f"back-to-back pairs: speed-up vs model-signing (files) {out['pairs_speedup_vs_model_signing_files']} "
          f"(median {out['pairs_speedup_median']}); ratio to the 2-thread raw SHA-256 measured just before "
          f"{out['pairs_ratio_to_limit']} (median {out['pairs_ratio_to_limit_median']})")
    print(f"CPU efficiency: {out['cpu_efficiency_vs_raw_sha256']:.0%} of bare SHA-256 per CPU-second "
          f"(so with {workers} idle cores: that fraction of the limit); load average {os.getloadavg()}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
