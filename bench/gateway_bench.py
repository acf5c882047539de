"""Gateway added latency on loopback: the same requests sent to the model server directly and
through ``ailedger gateway serve`` (fast mode, a real subprocess), interleaved, keep-alive both ways.

    .venv/bin/python bench/gateway_bench.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "inference"))
from model_server import make_ledger_with_model


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def post(conn, path, body, headers):
    t = time.perf_counter_ns()
    conn.request("POST", path, body=body, headers=headers)
    r = conn.getresponse()
    data = r.read()
    dt = time.perf_counter_ns() - t
    if r.status != 200:
        raise RuntimeError(f"{path}: {r.status} {data[:200]!r}")
    return dt, r.getheader("AIledger-Receipt")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    procs = []
    try:
        make_ledger_with_model(tmp).close()
        env = {**os.environ, "AILEDGER_LEDGER": str(tmp / "ledger")}
        cli = [sys.executable, "-c", "from ailedger.cli.main import main; main()"]
        key = subprocess.run([*cli, "gateway", "key", "new", "--as", "bench"], env=env, capture_output=True,
                             text=True, check=True).stdout.strip()
        ms = subprocess.Popen([sys.executable, str(ROOT / "tests/inference/model_server.py"),
                               str(tmp / "model")], stdout=subprocess.PIPE, text=True)
        procs.append(ms)
        up_port = int(ms.stdout.readline().split()[1])
        gw = subprocess.Popen([*cli, "gateway", "serve", "--upstream", f"http://127.0.0.1:{up_port}", "--model",
                               "iris", "--port", "0", "--json"], env=env, stdout=subprocess.PIPE, text=True)
        procs.append(gw)
        gw_port = int(json.loads(gw.stdout.readline())["listening"].rsplit(":", 1)[1])
        direct = http.client.HTTPConnection("127.0.0.1", up_port)
        via = http.client.HTTPConnection("127.0.0.1", gw_port)
        body = json.dumps({"features": [[5.9, 3.0, 4.2, 1.5]]})
        h = {"Content-Type": "application/json"}
        hv = {**h, "Authorization": f"Bearer {key}"}
        for _ in range(200):  # warm up both paths
            post(direct, "/predict", body, h)
            post(via, "/predict", body, hv)
        d, g, receipts = [], [], []
        load = os.getloadavg()[0]
        for _ in range(a.requests):
            d.append(post(direct, "/predict", body, h)[0])
            dt, rid = post(via, "/predict", body, hv)
            g.append(dt)
            receipts.append(rid)
        load2 = os.getloadavg()[0]
        assert all(receipts)
        added = [gi - di for gi, di in zip(g, d)]
        res = {"requests": a.requests, "direct_p50_ms": pct(d, 50) / 1e6, "gateway_p50_ms": pct(g, 50) / 1e6,
               "direct_p99_ms": pct(d, 99) / 1e6, "gateway_p99_ms": pct(g, 99) / 1e6}
        res["added_p50_ms"] = res["gateway_p50_ms"] - res["direct_p50_ms"]
        res["added_pairwise_p50_ms"] = pct(added, 50) / 1e6
        print(f"machine: {os.cpu_count()} CPUs, load average {load:.1f} -> {load2:.1f}")
        print(f"direct p50 {res['direct_p50_ms']:.3f} ms, via gateway p50 {res['gateway_p50_ms']:.3f} ms -> added "
              f"{res['added_p50_ms']:.3f} ms p50 (pairwise median {res['added_pairwise_p50_ms']:.3f} ms)")
        gw.terminate()
        gw.wait(60)
        out = subprocess.run([*cli, "inference", "show", "--model", "iris", "--json"], env=env,
                             capture_output=True, text=True, check=True).stdout
        n = json.loads(out)["count"]
        print(f"records logged: {n} (expected {a.requests + 200})")
        print(json.dumps({"bench": "gateway", **res, "records": n, "load_avg": [round(load, 1), round(load2, 1)],
                          "target_added_p50_ms": 2.0, "ratio_vs_target": round(res["added_p50_ms"] / 2.0, 3)}))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
