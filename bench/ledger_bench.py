"""Issue 2 figures: raw append, signed-entry acceptance, proofs, audit (see bench/RESULTS.md).

References, each measured in the same run and each the limit of this machine for the same work (issue 21):
signatures -- libsodium crypto_sign_open on every core; hashing -- SHA-256 with the SHA extensions on every
core; durable writes -- the SQLite store's own batched insert of the same rows.

Usage: .venv/bin/python bench/ledger_bench.py [--n 1000000] [--signed 100000]
Every figure is printed beside a reference measured in the same run; the last line is JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.merkle import leaf_hash, verify_consistency, verify_inclusion
from ailedger.tlog.stores import LeafRow

sys.path.insert(0, str(Path(__file__).resolve().parent))
from limits import (  # the machine's limits (bench/limits.py)
    fork_pool,
    sha256_many_per_s,
    sodium_cpu_us_per_verify,
    sodium_verify_per_s,
    tree_cpu_s,
)


def _make_entries(args):
    seed, start, count = args
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.to_bytes(4, "big")).digest())
    did = did_from_public_key(key.public_key().public_bytes_raw())
    out = []
    for i in range(start, start + count):
        e = build_entry("model.eval", {"model": "bench-net", "run": i, "score_bp": i % 10000,
                                       "dataset": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()},
                        did, "2026-11-22T00:00:00.000Z", key.sign)
        out.append(e.leaf_bytes)
    return out


def make_entries(n: int, procs: int) -> list[bytes]:
    step = 20000
    jobs = [(k % 16, s, min(step, n - s)) for k, s in enumerate(range(0, n, step))]
    with fork_pool(procs) as pool:  # ends by close() and join(), never terminate() (bench/limits.py)
        return [e for part in pool.imap(_make_entries, jobs) for e in part]


def verify_reference(entries: list[bytes], procs: int) -> float:
    """The signature limit: libsodium on every core for the same entries (bench/limits.py)."""
    return sodium_verify_per_s(entries, procs)


def hash_reference(entries: list[bytes], procs: int) -> tuple[float, str]:
    """The hashing limit for the same tree: every leaf hash (0x00 || entry) and as many node hashes
    (0x01 || left || right) with SHA-256 through the SHA extensions on every core. Returns entries/s."""
    leaves = [b"\x00" + d for d in entries]
    nodes = [b"\x01" + hashlib.sha256(d).digest() + hashlib.sha256(d[::-1]).digest() for d in entries[:-1]]
    rate, impl = sha256_many_per_s(leaves + nodes, procs)
    return rate / 2, impl  # two hashes per entry


def store_insert_reference(tmp: Path, rows: list, batch: int) -> float:
    """The durable-write limit for the same rows: the SQLite store's own batched insert (leaves, dedup keys,
    index terms; one durable transaction per batch, as the log does) with no tree, nodes or checkpoint."""
    from ailedger.tlog.stores import SQLiteStore

    st = SQLiteStore(tmp / "insert-ref.db", create=True)
    t = time.perf_counter()
    for i in range(0, len(rows), batch):
        with st.writer() as w:
            w.add_leaves(i, rows[i : i + batch])
    dt = time.perf_counter() - t
    st.close()
    return len(rows) / dt


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def _signed_accept(a, tmp, entries, procs, res):
    """Signed entries accepted (parse, canonical check, signature, durable append) vs raw verification."""
    led2 = Ledger.init(tmp / "l2", "bench.example/log2")
    led2.time_skew = float("inf")  # the entries carry a fixed date (reproducible bytes), not today's
    sub = entries[: a.signed]
    led2.append_entries(entries[-4000:], parallel=True)  # warm the pool
    c0 = tree_cpu_s()
    t = time.perf_counter()
    out = led2.append_entries(sub, parallel=True)
    dt = time.perf_counter() - t
    cpu = tree_cpu_s() - c0
    assert not any(isinstance(r, str) for r in out), next(r for r in out if isinstance(r, str))
    ref2 = verify_reference(sub, procs)
    res["signed_accept_per_s"] = a.signed / dt
    res["signed_accept_reference_verify_per_s"] = ref2
    res["signed_accept_vs_verify"] = (a.signed / dt) / ref2
    res["signed_accept_cpu_us_per_entry"] = cpu / a.signed * 1e6
    res["libsodium_cpu_us_per_verify"] = sodium_cpu_us_per_verify(sub)
    res["signed_accept_cpu_ratio"] = res["libsodium_cpu_us_per_verify"] / res["signed_accept_cpu_us_per_entry"]
    print(f"signed entries accepted: {a.signed / dt:,.0f}/s; libsodium verify on {procs} cores {ref2:,.0f}/s; "
          f"ratio {res['signed_accept_vs_verify']:.2f} (target >= 0.80); CPU: {res['signed_accept_cpu_us_per_entry']:.1f} us "
          f"per entry (all processes) against {res['libsodium_cpu_us_per_verify']:.1f} us per libsodium verify -> "
          f"{res['signed_accept_cpu_ratio']:.2f}")
    led2.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000, help="entries for append/proof/audit figures")
    ap.add_argument("--signed", type=int, default=100_000, help="entries for the signed-acceptance figure")
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--only-signed", action="store_true", help="only the signed-acceptance figure")
    ap.add_argument("--only-append", action="store_true",
                    help="only the raw-append figure, on synthetic entry-sized leaves (no signing needed)")
    a = ap.parse_args()
    procs = os.cpu_count() or 2
    tmp = Path(tempfile.mkdtemp(prefix="ailedger-bench-"))
    from ailedger.encoding.records import FAST_VERIFY

    # the entry checker in use: "c" (_speedups.verify_entries) or "python" (AILEDGER_PYTHON_VERIFY=1, or not built)
    res: dict = {"n": a.n, "cores": procs, "entry_checker": "c" if FAST_VERIFY else "python"}
    try:
        print(f"making {a.n:,} {'synthetic' if a.only_append else 'signed'} entries ...", flush=True)
        t = time.perf_counter()
        if a.only_append:
            tmpl = _make_entries((0, 0, 1))[0]
            entries = [tmpl[:-20] + b"%020d" % i for i in range(a.n)]
        else:
            entries = make_entries(a.n, procs)
        print(f"  made in {time.perf_counter() - t:.1f}s, mean {sum(map(len, entries[:1000])) / 1000:.0f} bytes")

        if a.only_signed:
            entries = entries[: a.signed + 4000]
            a.n = len(entries)

        # 1. raw append (leaves already checked), durable per batch; reference: the bare hashing floor
        if a.only_signed:
            _signed_accept(a, tmp, entries, procs, res)
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}))
            return
        led = Ledger.init(tmp / "l1", "bench.example/log")
        rows = [LeafRow(d, leaf_hash(d), ("type:model.eval",)) for d in entries]
        t = time.perf_counter()
        for i in range(0, len(rows), a.batch):
            led.log.append(rows[i : i + a.batch])
        dt = time.perf_counter() - t
        # the limits: the store's own batched insert of the same rows (durable writes), and the same leaf
        # and node hashes with the SHA extensions on every core (hashing)
        ins = store_insert_reference(tmp, rows, a.batch)
        hlim, himpl = hash_reference(entries, procs)
        floor = len(entries) / hlim
        res["raw_append_per_s"] = a.n / dt
        res["raw_append_store_insert_per_s"] = ins
        res["raw_append_vs_store_insert"] = (a.n / dt) / ins
        res["hash_limit_per_s"] = hlim
        res["hash_limit_impl"] = himpl
        print(f"raw append: {a.n / dt:,.0f} entries/s durable (batches of {a.batch:,}); the store's own batched "
              f"insert of the same rows {ins:,.0f}/s -> ratio {res['raw_append_vs_store_insert']:.2f}; "
              f"SHA-256 ({himpl}) of the same leaves and nodes on {procs} cores: {hlim:,.0f} entries/s "
              f"(target >= 50,000/s)")

        if a.only_append:
            led.close()
            print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}))
            return

        # 3. proofs from the store at n entries
        led.checkpoint()
        import random
        rng = random.Random(1)
        size = led.size
        root = led.log.root_at(size)
        lat, vlat, clat, cvlat = [], [], [], []
        for _ in range(2000):
            i = rng.randrange(size)
            t0 = time.perf_counter()
            p = led.log.inclusion_proof(i, size)
            t1 = time.perf_counter()
            verify_inclusion(i, size, leaf_hash(entries[i]), p, root)
            t2 = time.perf_counter()
            lat.append(t1 - t0)
            vlat.append(t2 - t1)
        roots = {}
        for _ in range(500):
            m = rng.randrange(1, size)
            t0 = time.perf_counter()
            p = led.log.consistency_proof(m, size)
            t1 = time.perf_counter()
            if m not in roots:
                roots[m] = led.log.root_at(m)
            t2 = time.perf_counter()
            verify_consistency(m, size, roots[m], root, p)
            t3 = time.perf_counter()
            clat.append(t1 - t0)
            cvlat.append(t3 - t2)
        t = time.perf_counter()
        for _ in range(2000):
            hashlib.sha256(b"x" * 65).digest()
        sha_us = (time.perf_counter() - t) / 2000 * 1e6
        res.update({"inclusion_proof_p50_ms": statistics.median(lat) * 1e3,
                    "inclusion_proof_p99_ms": pct(lat, 0.99) * 1e3,
                    "inclusion_verify_p50_us": statistics.median(vlat) * 1e6,
                    "consistency_proof_p50_ms": statistics.median(clat) * 1e3,
                    "consistency_verify_p50_us": statistics.median(cvlat) * 1e6,
                    "sha256_one_node_us": sha_us})
        print(f"inclusion proof from store: p50 {res['inclusion_proof_p50_ms']:.3f} ms, "
              f"p99 {res['inclusion_proof_p99_ms']:.3f} ms (target p50 < 1 ms)")
        print(f"verify inclusion: p50 {res['inclusion_verify_p50_us']:.1f} us (target < 50 us; "
              f"one bare SHA-256 node: {sha_us:.2f} us, a proof here has ~{len(p)}-20 of them)")
        print(f"consistency proof: p50 {res['consistency_proof_p50_ms']:.3f} ms; "
              f"verify p50 {res['consistency_verify_p50_us']:.1f} us")

        # 4. audit
        t = time.perf_counter()
        rep = led.audit(signatures=False)
        dt = time.perf_counter() - t
        assert rep.ok, rep.problems[:3]
        res["audit_hashes_s"] = dt
        res["audit_hashes_vs_hash_limit"] = floor / dt
        print(f"audit (hashes, nodes, checkpoints) of {a.n:,}: {dt:.1f} s (target < 30 s; the same hashes "
              f"with SHA extensions on {procs} cores: {floor:.2f} s)")

        ref_rate = verify_reference(entries[: max(a.signed, 20000)], procs)
        res["ed25519_libsodium_all_cores_per_s"] = ref_rate
        print(f"reference: libsodium Ed25519 verification (crypto_sign_open) on {procs} cores: {ref_rate:,.0f}/s")

        c0 = tree_cpu_s()
        t = time.perf_counter()
        rep = led.audit(signatures=True)
        dt = time.perf_counter() - t
        cpu = tree_cpu_s() - c0
        assert rep.ok and rep.signatures_checked == a.n
        res["audit_signatures_cpu_us_per_entry"] = cpu / a.n * 1e6
        res["libsodium_cpu_us_per_verify_audit"] = sodium_cpu_us_per_verify(entries)
        res["audit_signatures_cpu_ratio"] = res["libsodium_cpu_us_per_verify_audit"] / res["audit_signatures_cpu_us_per_entry"]
        res["audit_signatures_per_s"] = a.n / dt
        res["audit_signatures_vs_verify"] = (a.n / dt) / ref_rate
        print(f"audit with every signature: {dt:.1f} s = {a.n / dt:,.0f} entries/s = "
              f"{res['audit_signatures_vs_verify']:.2f} of libsodium on all cores (target >= 0.90); CPU: "
              f"{res['audit_signatures_cpu_us_per_entry']:.1f} us per entry (all processes) against "
              f"{res['libsodium_cpu_us_per_verify_audit']:.1f} us per libsodium verify -> {res['audit_signatures_cpu_ratio']:.2f}")
        led.close()

        _signed_accept(a, tmp, entries, procs, res)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}))


if __name__ == "__main__":
    main()
