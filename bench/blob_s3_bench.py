"""Blob put/get through ailedger to S3 targets vs raw boto3 put/get of the same bytes to the same endpoint.

    .venv/bin/python bench/blob_s3_bench.py [--size-mib 128] [--rounds 2]

One real SeaweedFS (`weed server -s3`, tests/seaweed.py) on 127.0.0.1 with three buckets.
- ailedger: `BlobService.put` of a SIZE MiB file to s3://bkt-a, s3://bkt-b, s3://bkt-c (AES-256-GCM,
  UnixFS CIDs of plaintext and ciphertext, Reed-Solomon 2-of-3, one shard per bucket, a blob.put entry
  in a fresh ledger), then `BlobService.get` (fetch k shards, decode, decrypt, check every CID) to disk.
- reference, same run, same endpoint, same boto3 client settings: `put_object` of the same file as one
  object, and `get_object` of it streamed to disk (what a user would do without ailedger).
Figures are MiB/s of the file's (plaintext) bytes; best of --rounds. Ratio goal: >= 0.7.
ailedger moves n/k = 1.5x the bytes over the wire (erasure coding), in three parallel streams, so a
second reference is raw boto3 moving exactly those wire bytes: 3 parallel puts of shard-sized objects
and 2 parallel gets (what k-of-n costs with no encryption, hashing or coding): `*_wire_ratio`.
Human lines first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository: the test helpers (weed)
from tests.seaweed import SeaweedS3

MiB = 1 << 20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()

    from ailedger.blobs.service import BlobService
    from ailedger.tlog.ledger import Ledger

    tmp = Path(tempfile.mkdtemp(prefix="ailedger-s3bench-"))
    src = tmp / "in.bin"
    with open(src, "wb") as f:
        f.writelines(os.urandom(MiB) for _ in range(a.size_mib))
    size = src.stat().st_size
    out: dict[str, float] = {}
    with SeaweedS3(buckets=["bkt-a", "bkt-b", "bkt-c", "bkt-raw"], data_dir=tmp / "weed") as s3:
        os.environ.update(s3.env())
        from ailedger.blobs.s3 import s3_client

        raw = s3_client(s3.endpoint)  # the very client (and settings) ailedger's S3 targets use
        led = Ledger.init(tmp / "ledger", origin="bench.example/s3")
        me = led.new_identity("bench")[0]
        svc = BlobService(led, s3_endpoint=s3.endpoint)
        best = {"raw_put": 0.0, "raw_get": 0.0, "put": 0.0, "get": 0.0, "wire_put": 0.0, "wire_get": 0.0}
        shard = os.urandom(-(-size // 2) + 16)  # about one shard of 2-of-3

        def wput(i: int, r: int) -> None:
            raw.put_object(Bucket=["bkt-a", "bkt-b", "bkt-c"][i], Key=f"w{r}-{i}", Body=shard)

        def wget(i: int, r: int) -> None:
            body = raw.get_object(Bucket=["bkt-a", "bkt-b", "bkt-c"][i], Key=f"w{r}-{i}")["Body"]
            with open(tmp / f"w{i}.out", "wb") as f:
                while buf := body.read(MiB):
                    f.write(buf)
        for r in range(a.rounds):
            t0 = time.perf_counter()
            with open(src, "rb") as f:
                raw.put_object(Bucket="bkt-raw", Key=f"r{r}", Body=f, ContentLength=size)
            best["raw_put"] = max(best["raw_put"], size / MiB / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            body = raw.get_object(Bucket="bkt-raw", Key=f"r{r}")["Body"]
            with open(tmp / "raw.out", "wb") as f:
                while buf := body.read(MiB):
                    f.write(buf)
            best["raw_get"] = max(best["raw_get"], size / MiB / (time.perf_counter() - t0))

            with ThreadPoolExecutor(3) as ex:
                t0 = time.perf_counter()
                list(ex.map(wput, range(3), [r] * 3))
                best["wire_put"] = max(best["wire_put"], size / MiB / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                list(ex.map(wget, range(2), [r] * 2))
                best["wire_get"] = max(best["wire_get"], size / MiB / (time.perf_counter() - t0))

            t0 = time.perf_counter()
            res = svc.put(src, [f"s3://bkt-a/r{r}", f"s3://bkt-b/r{r}", f"s3://bkt-c/r{r}"], me)
            best["put"] = max(best["put"], size / MiB / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            svc.get(res.cid, tmp / "got.out", me)
            best["get"] = max(best["get"], size / MiB / (time.perf_counter() - t0))
            if (tmp / "got.out").stat().st_size != size:
                raise SystemExit("get returned the wrong size")
            print(f"round {r}: k={res.k} n={res.n} cid {res.cid[:20]}...", flush=True)
        led.close()
    out = {k: round(v, 1) for k, v in best.items()}
    out["put_ratio"] = round(best["put"] / best["raw_put"], 3)
    out["get_ratio"] = round(best["get"] / best["raw_get"], 3)
    out["put_wire_ratio"] = round(best["put"] / best["wire_put"], 3)
    out["get_wire_ratio"] = round(best["get"] / best["wire_get"], 3)
    print(f"object {a.size_mib} MiB, SeaweedFS on 127.0.0.1, 3 buckets, 2-of-3, AES-256-GCM, {os.cpu_count()} cores")
    print(f"put: ailedger {out['put']} MiB/s vs raw boto3 {out['raw_put']} MiB/s  ratio {out['put_ratio']}")
    print(f"get: ailedger {out['get']} MiB/s vs raw boto3 {out['raw_get']} MiB/s  ratio {out['get_ratio']}")
    print(f"raw boto3 of the same wire bytes (3 parallel shard puts / 2 gets): put {out['wire_put']} MiB/s "
          f"(ratio {out['put_wire_ratio']}), get {out['wire_get']} MiB/s (ratio {out['get_wire_ratio']})")
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"bench": "blob_s3", "size_mib": a.size_mib, "k": 2, "n": 3,
                      "put_mib_s": out["put"], "get_mib_s": out["get"], "raw_put_mib_s": out["raw_put"],
                      "raw_get_mib_s": out["raw_get"], "wire_put_mib_s": out["wire_put"],
                      "wire_get_mib_s": out["wire_get"], "put_wire_ratio": out["put_wire_ratio"],
                      "get_wire_ratio": out["get_wire_ratio"], "load_avg_1m": round(os.getloadavg()[0], 1),
                      "put_ratio": out["put_ratio"], "get_ratio": out["get_ratio"],
                      "goal_ratio": 0.7}))


if __name__ == "__main__":
    main()
