"""Blob put/get through ailedger to S3 targets vs raw boto3 put/get of the same bytes to the same endpoint.

    .venv/bin/python bench/blob_s3_bench.py [--size-mib 128] [--rounds 3] [--targets 3]

One real SeaweedFS (`weed server -s3`, tests/seaweed.py) on 127.0.0.1 with --targets buckets (+ one for raw).
- ailedger: `BlobService.put` of a SIZE MiB file to s3://bkt-0 ... s3://bkt-{T-1} (AES-256-GCM, UnixFS CIDs of
  plaintext and ciphertext, Reed-Solomon k-of-n with the default k for n = T (3 -> 2-of-3, 5 -> 4-of-5), one
  shard per bucket, a blob.put entry in a fresh ledger), then `BlobService.get` (fetch k shards, check each
  SHA-256, decode, decrypt, check both CIDs and the plaintext commitment) to disk.
- reference, same run, same endpoint, same boto3 client: `put_object` of the same file as one object, and
  `get_object` of it streamed to disk (what a user would do without ailedger).
- second reference ("wire"): raw boto3 moving exactly the bytes ailedger moves (n/k times the file, coding
  overhead): n parallel puts of shard-sized objects, k parallel gets.

Two kinds of figures, best of --rounds each:
- wall: MiB/s of the file's bytes. On this 2-core machine shared with other work, wall time mostly says how
  much CPU the run was lent (the load average is printed).
- CPU: CPU-seconds the whole machine spent on the operation = this process (all its threads,
  time.process_time) + the SeaweedFS process (/proc/PID/stat), for the same file. The ratio
  raw CPU / ailedger CPU is the throughput ratio on a machine where both are CPU-bound.
Ratio goal: >= 0.7. Human lines first; the last line is one JSON object.

Bounds printed beside the CPU ratios (what this machine allows whatever ailedger does, with the formats kept):
- ``*_cpu_ratio_bound``: if ailedger's own work cost no more than the raw client's (SeaweedFS's CPU alone).
- ``get_cpu_ratio_bound_one_sha``: SeaweedFS's CPU for the get + the raw client's + one SHA-256 pass and one
  AES-GCM pass over the file (a checked get must at least hash the plaintext for its CID and decrypt it).
- ``put_cpu_ratio_bound_formats``: SeaweedFS's CPU for the put + the raw client's + the SHA-256 passes the
  record needs (plaintext CID, ciphertext CID, each shard's SHA-256 and its segment tree: 2 + 2 n/k passes)
  and one AES-GCM pass. SHA-256 and AES-GCM are timed here (process CPU, best of 3, the file in memory).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: the test helpers (weed)
from tests.seaweed import SeaweedS3

MiB = 1 << 20


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(fn: Callable[[], object], weed_pid: int) -> tuple[float, float, float]:
    """(wall s, this process's CPU s, SeaweedFS CPU s) of one call."""
    w0, c0, s0 = time.perf_counter(), time.process_time(), proc_cpu(weed_pid)
    fn()
    return time.perf_counter() - w0, time.process_time() - c0, proc_cpu(weed_pid) - s0


def primitive_cpu(data: bytes) -> tuple[float, float]:
    """(CPU s of one SHA-256 pass over ``data``, of one AES-256-GCM pass in 1 MiB segments), best of 3."""
    import hashlib

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    mv = memoryview(data)
    aead = AESGCM(os.urandom(32))

    def aes() -> None:
        for i in range(0, len(mv), MiB):
            aead.encrypt(bytes(12), mv[i : i + MiB], b"")

    def best(fn: Callable[[], object]) -> float:
        out = float("inf")
        for _ in range(3):
            c0 = time.process_time()
            fn()
            out = min(out, time.process_time() - c0)
        return out

    return best(lambda: hashlib.sha256(mv).digest()), best(aes)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--targets", type=int, default=3, help="buckets = shards n (k is the default for n)")
    a = ap.parse_args()

    from ailedger.blobs.erasure import default_k
    from ailedger.blobs.service import BlobService
    from ailedger.tlog.ledger import Ledger

    n = a.targets
    k = default_k(n)
    buckets = [f"bkt-{i}" for i in range(n)]
    tmp = Path(tempfile.mkdtemp(prefix="ailedger-s3bench-"))
    src = tmp / "in.bin"
    with open(src, "wb") as f:
        f.writelines(os.urandom(MiB) for _ in range(a.size_mib))
    size = src.stat().st_size
    mib = size / MiB
    load0 = os.getloadavg()[0]
    # per operation: best wall, best (self CPU, weed CPU) by total
    wall: dict[str, float] = {}
    cpu: dict[str, tuple[float, float]] = {}

    def keep(name: str, m: tuple[float, float, float]) -> None:
        w, c, s = m
        wall[name] = min(wall.get(name, float("inf")), w)
        if name not in cpu or c + s < sum(cpu[name]):
            cpu[name] = (c, s)

    sha_s, aes_s = primitive_cpu(src.read_bytes())
    with SeaweedS3(buckets=[*buckets, "bkt-raw"], data_dir=tmp / "weed") as s3:
        os.environ.update(s3.env())
        from ailedger.blobs.s3 import s3_client

        assert s3.proc is not None
        pid = s3.proc.pid
        raw = s3_client(s3.endpoint)  # the very client (and settings) ailedger's S3 targets use
        led = Ledger.init(tmp / "ledger", origin="bench.example/s3")
        me = led.new_identity("bench")[0]
        svc = BlobService(led, s3_endpoint=s3.endpoint)
        shard = os.urandom(-(-size // k) + 16 * (-(-size // MiB) // k + 1))  # about one shard of k-of-n

        def get_to(bucket: str, key: str, out: Path) -> None:
            body = raw.get_object(Bucket=bucket, Key=key)["Body"]
            with open(out, "wb") as f:
                while buf := body.read(MiB):
                    f.write(buf)

        with ThreadPoolExecutor(n) as ex:
            for r in range(a.rounds):
                def raw_put(r: int = r) -> None:
                    with open(src, "rb") as f:
                        raw.put_object(Bucket="bkt-raw", Key=f"r{r}", Body=f, ContentLength=size)

                keep("raw_put", measure(raw_put, pid))
                keep("raw_get", measure(lambda r=r: get_to("bkt-raw", f"r{r}", tmp / "raw.out"), pid))
                keep("wire_put", measure(lambda r=r: list(ex.map(
                    lambda i: raw.put_object(Bucket=buckets[i], Key=f"w{r}-{i}", Body=shard), range(n))), pid))
                keep("wire_get", measure(lambda r=r: list(ex.map(
                    lambda i: get_to(buckets[i], f"w{r}-{i}", tmp / f"w{i}.out"), range(k))), pid))
                res: list[object] = []
                keep("put", measure(lambda r=r, res=res: res.append(
                    svc.put(src, [f"s3://{b}/r{r}" for b in buckets], me)), pid))
                cid = res[0].cid  # type: ignore[attr-defined]
                keep("get", measure(lambda cid=cid: svc.get(cid, tmp / "got.out", me), pid))
                if (tmp / "got.out").read_bytes() != src.read_bytes():
                    raise SystemExit("get returned other bytes")
                print(f"round {r}: k={res[0].k} n={res[0].n} cid {cid[:20]}...", flush=True)  # type: ignore[attr-defined]
        led.close()
    shutil.rmtree(tmp, ignore_errors=True)

    out: dict[str, object] = {"bench": "blob_s3", "size_mib": a.size_mib, "k": k, "n": n, "rounds": a.rounds}
    for op in ("put", "get"):
        rate = {name: round(mib / wall[name], 1) for name in (op, f"raw_{op}", f"wire_{op}")}
        tot = {name: sum(cpu[name]) for name in (op, f"raw_{op}", f"wire_{op}")}
        out[f"{op}_mib_s"] = rate[op]
        out[f"raw_{op}_mib_s"] = rate[f"raw_{op}"]
        out[f"wire_{op}_mib_s"] = rate[f"wire_{op}"]
        out[f"{op}_ratio"] = round(rate[op] / rate[f"raw_{op}"], 3)
        out[f"{op}_wire_ratio"] = round(rate[op] / rate[f"wire_{op}"], 3)
        out[f"{op}_cpu_s"] = {"ailedger": round(cpu[op][0], 3), "seaweedfs": round(cpu[op][1], 3)}
        out[f"raw_{op}_cpu_s"] = {"client": round(cpu[f"raw_{op}"][0], 3), "seaweedfs": round(cpu[f"raw_{op}"][1], 3)}
        out[f"wire_{op}_cpu_s"] = {"client": round(cpu[f"wire_{op}"][0], 3),
                                   "seaweedfs": round(cpu[f"wire_{op}"][1], 3)}
        out[f"{op}_cpu_ratio"] = round(tot[f"raw_{op}"] / tot[op], 3)
        out[f"{op}_cpu_wire_ratio"] = round(tot[f"wire_{op}"] / tot[op], 3)
        # the part of the gap that is the store's own work on the n/k x bytes, whatever ailedger does
        out[f"{op}_cpu_ratio_bound"] = round(tot[f"raw_{op}"] / (cpu[op][1] + cpu[f"raw_{op}"][0]), 3)
        passes = 1 if op == "get" else 2 + 2 * n / k
        out[f"{op}_cpu_ratio_bound_{'one_sha' if op == 'get' else 'formats'}"] = round(
            tot[f"raw_{op}"] / (cpu[op][1] + cpu[f"raw_{op}"][0] + passes * sha_s + aes_s), 3)
        print(f"{op}: ailedger {rate[op]} MiB/s vs raw boto3 {rate[f'raw_{op}']} MiB/s: wall ratio {out[f'{op}_ratio']}; "
              f"CPU ailedger {cpu[op][0]:.2f} + SeaweedFS {cpu[op][1]:.2f} s vs raw {cpu[f'raw_{op}'][0]:.2f} + "
              f"{cpu[f'raw_{op}'][1]:.2f} s: CPU ratio {out[f'{op}_cpu_ratio']} (vs the same wire bytes "
              f"{out[f'{op}_cpu_wire_ratio']}; bound if ailedger's own work cost no more than the raw client's: "
              f"{out[f'{op}_cpu_ratio_bound']})")
    out["sha256_cpu_s"] = round(sha_s, 3)
    out["aes_gcm_cpu_s"] = round(aes_s, 3)
    print(f"bounds with the minimum checks (SHA-256 pass {sha_s:.3f} CPU-s, AES-GCM {aes_s:.3f}): get "
          f"{out['get_cpu_ratio_bound_one_sha']} (one SHA-256 pass), put {out['put_cpu_ratio_bound_formats']} "
          f"({2 + 2 * n / k:g} SHA-256 passes the record needs)")
    out["load_avg_1m"] = [round(load0, 1), round(os.getloadavg()[0], 1)]
    out["cores"] = os.cpu_count()
    out["goal_ratio"] = 0.7
    print(f"object {a.size_mib} MiB, SeaweedFS on 127.0.0.1, {n} buckets, {k}-of-{n}, AES-256-GCM, {os.cpu_count()} "
          f"cores, load average {load0:.1f} -> {os.getloadavg()[0]:.1f}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
