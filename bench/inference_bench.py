"""Inference audit SDK: per-call overhead (p50 against the bare call, same run) and sustained
records/s into the SQLite ledger (records, batch entries, encrypted payloads all committed).

    .venv/bin/python bench/inference_bench.py [--calls 50000] [--records 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

from ailedger.services.artifacts.models import register_model
from ailedger.services.inference import InferenceTrail
from ailedger.services.ledger import Ledger


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def make_ledger(root: Path) -> Ledger:
    led = Ledger.init(root / "ledger", origin="bench.example/inference")
    pub, _ = led.new_identity("publisher")
    (root / "model").mkdir()
    (root / "model" / "weights.bin").write_bytes(os.urandom(4096))
    register_model(led, root / "model", "bench-model", pub)
    return led


W = [0.3, -1.2, 0.7, 2.0]


def predict(x):
    """A tiny linear 'model' (the reference: the bare call)."""
    s = W[0] * x[0] + W[1] * x[1] + W[2] * x[2] + W[3] * x[3]
    return {"label": 1 if s > 0 else 0, "score": s}


def timed_calls(fn, inputs):
    pc = time.perf_counter_ns
    out = []
    for x in inputs:
        t0 = pc()
        fn(x)
        out.append(pc() - t0)
    return out


def overhead(led: Ledger, calls: int, snapshot: bool) -> dict:
    inputs = [[0.1 * (i % 50), 1.0 + (i % 7), 0.25, 3.5] for i in range(calls)]
    trail = InferenceTrail(led, "bench-model", snapshot=snapshot, max_pending=calls * 2)
    wrapped = trail.wrap(predict, subject=lambda x: f"user-{int(x[0] * 10) % 100}")
    # interleave rounds of bare and wrapped calls so both see the same machine state
    bare, wrap = [], []
    step = 2000
    for i in range(0, calls, step):
        bare += timed_calls(predict, inputs[i : i + step])
        wrap += timed_calls(wrapped, inputs[i : i + step])
    t0 = time.perf_counter()
    trail.flush(600)
    drain = time.perf_counter() - t0
    trail.close()
    res = {"calls": calls, "snapshot": snapshot,
           "bare_p50_us": pct(bare, 50) / 1000, "bare_p99_us": pct(bare, 99) / 1000,
           "wrapped_p50_us": pct(wrap, 50) / 1000, "wrapped_p90_us": pct(wrap, 90) / 1000,
           "wrapped_p99_us": pct(wrap, 99) / 1000, "drain_after_s": round(drain, 3)}
    res["overhead_p50_us"] = res["wrapped_p50_us"] - res["bare_p50_us"]
    return res


CHAT_IN = {"model": "m", "messages": [{"role": "system", "content": "You are a helpful assistant."},
                                      {"role": "user", "content": "Summarise my last three invoices."}]}
CHAT_OUT = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Three invoices: 120 EUR"
                                                 " (paid), 75 EUR (paid), 210 EUR (due 3 Dec)."}}]}


def throughput(led: Ledger, records: int, store_payloads: bool, chat: bool = False) -> dict:
    trail = InferenceTrail(led, "bench-model", store_payloads=store_payloads, max_batch=8192, max_pending=65536)
    rec = trail.record
    x = [5.1, 3.5, 1.4, 0.2] if not chat else CHAT_IN
    y = {"label": "a", "score": 0.93} if not chat else CHAT_OUT
    c0 = time.process_time()
    t0 = time.perf_counter()
    for i in range(records):
        rec(x, y, subject=f"user-{i % 100}")
    t_sub = time.perf_counter() - t0
    trail.flush(900)
    el = time.perf_counter() - t0
    cpu = time.process_time() - c0
    stats = dict(trail.stats)
    trail.close()
    return {"records": records, "store_payloads": store_payloads, "payload": "chat" if chat else "floats",
            "seconds": round(el, 3),
            "records_per_s": round(records / el), "submit_seconds": round(t_sub, 3),
            "process_cpu_s": round(cpu, 3), "records_per_cpu_s": round(records / cpu),
            "batches": stats["batches"], "writer_busy_s": round(stats["write_seconds"], 3)}


def durable(led: Ledger, threads: int, per_thread: int) -> dict:
    trail = InferenceTrail(led, "bench-model", mode="durable")
    lat: list[int] = []
    lock = threading.Lock()

    def worker(k):
        mine = []
        for i in range(per_thread):
            t = time.perf_counter_ns()
            trail.record([k, i], {"y": i}, subject=f"u{k}")
            mine.append(time.perf_counter_ns() - t)
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    el = time.perf_counter() - t0
    trail.close()
    return {"threads": threads, "calls": threads * per_thread, "p50_ms": pct(lat, 50) / 1e6,
            "p99_ms": pct(lat, 99) / 1e6, "records_per_s": round(threads * per_thread / el)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50000)
    ap.add_argument("--records", type=int, default=200000)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="inference-bench-"))
    try:
        led = make_ledger(root)
        load = os.getloadavg()[0]
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f}, python {sys.version.split()[0]}")
        ov = overhead(led, a.calls, snapshot=False)
        print(f"overhead (fast, deferred payloads): bare p50 {ov['bare_p50_us']:.2f} us, wrapped p50 "
              f"{ov['wrapped_p50_us']:.2f} us -> +{ov['overhead_p50_us']:.2f} us (p99 {ov['wrapped_p99_us']:.1f} us)")
        ovs = overhead(led, a.calls // 2, snapshot=True)
        print(f"overhead (fast, snapshot payloads): +{ovs['overhead_p50_us']:.2f} us p50")
        th = throughput(led, a.records, True)
        print(f"sustained: {th['records']} records with encrypted payloads in {th['seconds']} s -> "
              f"{th['records_per_s']} records/s ({th['batches']} signed batches); "
              f"{th['records_per_cpu_s']} records per CPU-second of this process")
        th2 = throughput(led, a.records, False)
        print(f"sustained, commitments only: {th2['records_per_s']} records/s")
        th3 = throughput(led, a.records, True, chat=True)
        print(f"sustained, chat-shaped string payloads (~300 bytes) with encrypted payloads: "
              f"{th3['records_per_s']} records/s; {th3['records_per_cpu_s']} per CPU-second")
        du1 = durable(led, 1, 200)
        du8 = durable(led, 8, 100)
        print(f"durable: 1 thread p50 {du1['p50_ms']:.2f} ms ({du1['records_per_s']} rec/s); 8 threads p50 "
              f"{du8['p50_ms']:.2f} ms, {du8['records_per_s']} rec/s (shared commits)")
        rep = led.audit()
        assert rep.ok, rep.problems
        load2 = os.getloadavg()[0]
        led.close()
        print(json.dumps({"bench": "inference", "load_avg_start": round(load, 1), "load_avg_end": round(load2, 1),
                          "cpus": os.cpu_count(), "overhead": ov, "overhead_snapshot": ovs,
                          "throughput_payloads": th, "throughput_commitments_only": th2, "throughput_chat": th3,
                          "durable_1": du1, "durable_8": du8,
                          "targets": {"overhead_p50_us": 20, "records_per_s": 20000},
                          "ratios": {"overhead_p50_vs_target": round(ov["overhead_p50_us"] / 20, 3),
                                     "records_per_s_vs_target": round(th["records_per_s"] / 20000, 3)}}))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
