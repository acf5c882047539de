"""Blob storage figures: erasure coding, CIDs, and put/get over loopback storage nodes.

    .venv/bin/python bench/blob_bench.py [--size-mib 1024] [--coding-mib 64] [--cid-mib 256]

1. RS encode / decode throughput at 10-of-30 and 29-of-80 (ISA-L Cauchy via pyeclib, the default,
   and zfec), beside a plain memory copy of the
   same bytes in the same run. Decode is measured worst case (only parity shards survive) and
   best case (all data shards: a join).
2. CID computation (UnixFS unixfs-v1-2025 importer) against raw SHA-256 of the same bytes, on one core
   and (the limit, bench/limits.py) on every core.
3. put and get of one object over 30 `ailedger storage node serve` processes on 127.0.0.1
   (10-of-30), then get again with 20 nodes stopped -- the 10 holding the data shards among
   them, so only parity survives (worst case). Reference: reading the same file from local disk.

Human lines first; the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ailedger.blobs.unixfs import FileImporter

sys.path.insert(0, str(Path(__file__).resolve().parent))
from limits import sha256_bulk_mib_s  # the machine's limits (bench/limits.py)

from ailedger.blobs.client import NodeClient
from ailedger.blobs.erasure import ISAL, ZFEC, Coding, StripeDecoder, StripeEncoder

MiB = 1 << 20


def t() -> float:
    return time.perf_counter()


def bench_coding(data: bytes, k: int, n: int, algorithm: str) -> dict[str, float]:
    c = Coding.for_size(len(data), k, n, MiB, algorithm)
    enc, dec = StripeEncoder(c), StripeDecoder(c)
    mv = memoryview(data)
    shards: list[list[bytes]] = []
    t0 = t()
    for s in range(c.stripes):
        shards.append(enc.encode(mv[s * c.stripe:(s + 1) * c.stripe]))
    te = t() - t0
    parity = list(range(n - k, n))  # the last k shards: all parity when n >= 2k
    t0 = t()
    out = [dec.decode({i: shards[s][i] for i in parity}) for s in range(c.stripes)]
    td = t() - t0
    assert b"".join(out)[: len(data)] == data
    t0 = t()
    out = [dec.decode({i: shards[s][i] for i in range(k)}) for s in range(c.stripes)]
    tds = t() - t0
    assert b"".join(out)[: len(data)] == data
    size = len(data) / MiB
    return {"encode_mib_s": size / te, "decode_parity_only_mib_s": size / td,
            "decode_data_shards_mib_s": size / tds}


def bench_copy(data: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        t0 = t()
        b = bytearray(data)
        best = min(best, t() - t0)
        assert len(b) == len(data)
        del b
    return len(data) / MiB / best


def bench_cid(data: bytes) -> dict[str, float]:
    t0 = t()
    hashlib.sha256(data).digest()
    ts = t() - t0
    # the limit (issue 21): SHA-256 with the SHA extensions on every core, 256 KiB pieces (the CID's chunk)
    lim = sha256_bulk_mib_s(data, chunk=256 * 1024)
    mv = memoryview(data)
    t0 = t()
    imp = FileImporter("unixfs-v1-2025", keep_leaves=False)
    for i in range(0, len(data), 4 * MiB):
        imp.update(mv[i:i + 4 * MiB])
    imp.finish()
    tc = t() - t0
    size = len(data) / MiB
    return {"cid_mib_s": size / tc, "sha256_mib_s": size / ts, "cid_vs_sha256": ts / tc,
            "sha256_all_cores_mib_s": lim, "cid_vs_sha256_all_cores": size / tc / lim}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nodes(root: Path, count: int, allow: str) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    """``count`` storage nodes taking writes from the did:key ``allow`` (a node refuses to start without
    a named writer)."""
    urls, procs = [], []
    for i in range(count):
        port = free_port()
        procs.append(subprocess.Popen([sys.executable, "-m", "ailedger.cli.main", "storage", "node", "serve",
                                       "--dir", str(root / f"node{i}"), "--port", str(port), "--allow", allow],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        urls.append(f"http://127.0.0.1:{port}")
    for u in urls:
        for _ in range(400):
            try:
                NodeClient(u, 1).health()
                break
            except Exception:  # noqa: BLE001 - still starting
                time.sleep(0.05)
    return urls, procs


def stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def bench_e2e(size: int, workdir: Path) -> dict[str, float | int | str]:
    from ailedger.blobs.service import BlobService
    from ailedger.tlog.ledger import Ledger

    src = workdir / "object.bin"
    with open(src, "wb") as f:
        left = size
        while left:
            n = min(left, 16 * MiB)
            f.write(os.urandom(n))
            left -= n
    os.sync()
    t0 = t()
    with open(src, "rb") as f:
        while f.read(16 * MiB):
            pass
    t_read = t() - t0
    t_direct = read_direct(src)
    led = Ledger.init(workdir / "ledger", origin="bench.example/blobs")
    alice, _ = led.new_identity("alice")
    urls, procs = start_nodes(workdir / "nodes", 30, alice.did)
    try:
        svc = BlobService(led, spool=workdir / "spool", timeout=60)
        t0 = t()
        r = svc.put(src, urls, alice, k=10, n=30)
        t_put = t() - t0
        print(f"put {size / MiB:.0f} MiB over 30 nodes: {t_put:.1f} s  ({r.cid})")
        out = workdir / "out.bin"
        t0 = t()
        svc.get(r.cid, out, alice)
        t_get = t() - t0
        same = filecmp(out, src)
        out.unlink()
        print(f"get: {t_get:.1f} s, identical={same}")
        # stop 20 nodes: the 10 holding data shards 0..9 and 10 holding parity
        by_url = dict(zip(urls, procs))
        victims = [r.placement[i] for i in range(20)]
        for u in victims:
            stop(by_url[u])
        t0 = t()
        g = svc.get(r.cid, out, alice)
        t_get20 = t() - t0
        same20 = filecmp(out, src)
        out.unlink()
        print(f"get with 20 of 30 nodes stopped (only parity left, used {g.shards_used}): {t_get20:.1f} s, "
              f"identical={same20}")
    finally:
        for p in procs:
            stop(p)
        led.close()
    return {"e2e_size_mib": size // MiB, "read_local_s": t_read, "read_local_direct_s": t_direct, "put_s": t_put, "get_s": t_get,
            "get_20_down_s": t_get20, "get_ok": same, "get_20_down_ok": same20,
            "put_vs_read": t_put / t_read, "get_vs_read": t_get / t_read, "get_20_down_vs_read": t_get20 / t_read}


def read_direct(path: Path) -> float | None:
    """Read the file with O_DIRECT (bypassing the page cache) to time the disk itself."""
    import mmap

    flag = getattr(os, "O_DIRECT", 0)
    if not flag:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | flag)
    except OSError:
        return None
    buf = mmap.mmap(-1, 16 * MiB)
    try:
        t0 = t()
        while os.readv(fd, [buf]) > 0:
            pass
        return t() - t0
    except OSError:
        return None
    finally:
        os.close(fd)
        buf.close()


def filecmp(a: Path, b: Path) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(16 * MiB), fb.read(16 * MiB)
            if x != y:
                return False
            if not x:
                return True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--coding-mib", type=int, default=64)
    ap.add_argument("--cid-mib", type=int, default=256)
    ap.add_argument("--size-mib", type=int, default=1024, help="object size for put/get (0: skip)")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    res: dict[str, object] = {"cpus": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    data = os.urandom(a.coding_mib * MiB)
    res["memcpy_mib_s"] = bench_copy(data)
    print(f"memory copy of {a.coding_mib} MiB: {res['memcpy_mib_s']:.0f} MiB/s")
    for (k, n), alg in [(kn, alg) for kn in [(10, 30), (29, 80)] for alg in (ISAL, ZFEC)]:
        r = bench_coding(data, k, n, alg)
        res[f"rs_{k}_of_{n}_{'isal' if alg == ISAL else 'zfec'}"] = r
        print(f"RS {k}-of-{n} [{alg}]: encode {r['encode_mib_s']:.1f} MiB/s, decode (parity only) "
              f"{r['decode_parity_only_mib_s']:.1f} MiB/s, decode (data shards) {r['decode_data_shards_mib_s']:.0f}"
              f" MiB/s  [memcpy {res['memcpy_mib_s']:.0f} MiB/s]")
    del data
    data = os.urandom(a.cid_mib * MiB)
    r2 = bench_cid(data)
    res["cid"] = r2
    print(f"CID (unixfs-v1-2025) of {a.cid_mib} MiB: {r2['cid_mib_s']:.0f} MiB/s vs raw SHA-256 "
          f"{r2['sha256_mib_s']:.0f} MiB/s on one core (ratio {r2['cid_vs_sha256']:.2f}); the limit, SHA-256 on "
          f"every core: {r2['sha256_all_cores_mib_s']:.0f} MiB/s (ratio {r2['cid_vs_sha256_all_cores']:.2f})")
    del data
    if a.size_mib:
        wd = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="blob-bench-"))
        wd.mkdir(parents=True, exist_ok=True)
        try:
            e2e = bench_e2e(a.size_mib * MiB, wd)
            res["e2e"] = e2e
            print(f"local disk read of the same file (page cache warm): {e2e['read_local_s']:.2f} s; "
                  f"with O_DIRECT (disk itself): {e2e['read_local_direct_s']} s")
            if e2e["read_local_direct_s"]:
                d = float(e2e["read_local_direct_s"])
                e2e.update({"put_vs_direct_read": float(e2e["put_s"]) / d, "get_vs_direct_read": float(e2e["get_s"]) / d,
                            "get_20_down_vs_direct_read": float(e2e["get_20_down_s"]) / d})
            res["load_average"] = os.getloadavg()
        finally:
            shutil.rmtree(wd, ignore_errors=True)
    print(json.dumps(res, sort_keys=True))


if __name__ == "__main__":
    main()
