"""Sampled proving at the gateway: what logging the circuit commitments adds to each call served through the real
gateway over HTTP (127.0.0.1), and what proving a sample costs against proving every call, in one run.

    .venv/bin/python bench/zk_gateway_bench.py [--calls 60] [--rate 0.05] [--mode fast|durable]

Model: an iris 4-8-3 MLP (scikit-learn, as ONNX), hashed input and output, fixed parameters, a local test-only
SRS.  The upstream is a plain HTTP server on 127.0.0.1 answering with the same MLP's scores.  Two gateways (fast
mode by default), the same calls: one with the commitment hook (``GatewayCommitter``), one without (on a ledger of
its own); then ``prove_sampled`` at ``--rate`` after the calls (the log's size as the seeding checkpoint).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import socket
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ailedger.inference.gateway import Gateway, GatewayKeys
from ailedger.provenance.models import register_model
from ailedger.tlog.ledger import Ledger
from ailedger.verifiable.gatewayzk import GatewayCommitter
from ailedger.verifiable.onnxmlp import mlp_to_onnx
from ailedger.verifiable.sampling import detection_probability, prove_sampled
from ailedger.verifiable.zk import setup_circuit


def upstream(clf: Any) -> ThreadingHTTPServer:
    class H(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True  # head and body are separate writes: no 40 ms delayed-ACK wait
        protocol_version = "HTTP/1.1"  # keep-alive, as a model server would

        def do_POST(self) -> None:
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            body = json.dumps({"scores": clf.predict_proba(req["features"]).tolist()}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a: Any) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def run_gateway(gw: Gateway, key: str, rows: list[list[float]]) -> tuple[list[float], list[str]]:
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(gw.start("127.0.0.1", 0))
        started.set()
        loop.run_forever()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    started.wait(60)
    lat, rids = [], []
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    c.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle/delayed-ACK wait between head and body
    try:
        for r in rows:
            t0 = time.perf_counter()
            c.request("POST", "/predict", body=json.dumps({"features": [r]}),
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
            resp = c.getresponse()
            resp.read()
            lat.append(time.perf_counter() - t0)
            if resp.status != 200:
                raise SystemExit(f"gateway answered {resp.status}")
            rids.append(str(resp.headers["AIledger-Receipt"]))
    finally:
        c.close()
        asyncio.run_coroutine_threadsafe(gw.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        t.join(30)
    return lat, rids


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--mode", choices=["fast", "durable"], default="fast")
    a = ap.parse_args()
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.neural_network import MLPClassifier

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3000, random_state=0).fit(x, y)
    root = Path(tempfile.mkdtemp(prefix="zk-gw-bench-"))
    (root / "model").mkdir()
    mlp_to_onnx(clf, root / "model" / "net.onnx")
    led = Ledger.init(root / "ledger", origin="bench.example/zk-gateway")
    owner, _ = led.new_identity("owner")
    op, _ = led.new_identity("inference")
    register_model(led, root / "model", "iris", owner)
    t0 = time.perf_counter()
    setup = setup_circuit(led, root / "model" / "net.onnx", "iris", owner, calibration=x[:4].tolist())
    setup_s = time.perf_counter() - t0
    print(f"set-up: logrows {setup['logrows']}, {setup_s:.1f} s")
    keys = GatewayKeys(led.path)
    key = keys.new_key("bench")["key"]
    keys.close()
    srv = upstream(clf)
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    rows = [x[i % len(x)].tolist() for i in range(a.calls)]
    # the reference: the same model and calls through a gateway without the hook, on a ledger of its own (its
    # calls must not enter the sample)
    ref = Ledger.init(root / "ref-ledger", origin="bench.example/zk-gateway-ref")
    register_model(ref, root / "model", "iris", ref.new_identity("owner")[0])
    ref.new_identity("inference")
    keys = GatewayKeys(ref.path)
    ref_key = keys.new_key("bench")["key"]
    keys.close()
    run_gateway(Gateway(ref, url, "iris", mode=a.mode), ref_key, rows[:10])  # warm-up
    plain_lat, _ = run_gateway(Gateway(ref, url, "iris", mode=a.mode), ref_key, rows)
    ref.close()
    hook = GatewayCommitter(led, "iris", "iris", input_field="features", output_field="scores")
    zk_lat, rids = run_gateway(Gateway(led, url, "iris", mode=a.mode, call_hook=hook), key, rows)
    srv.shutdown()
    hook_s = []  # the hook alone (EZKL's witness of the input, the commitments), per call
    for r in rows:
        ans = {"scores": clf.predict_proba([r]).tolist()}
        t0 = time.perf_counter()
        hook({"features": [r]}, ans)
        hook_s.append(time.perf_counter() - t0)
    p50_plain, p50_zk = statistics.median(plain_lat), statistics.median(zk_lat)
    print(f"gateway call p50: {p50_plain * 1e3:.2f} ms plain, {p50_zk * 1e3:.2f} ms with the circuit commitments "
          f"(the hook alone: {statistics.median(hook_s) * 1e3:.2f} ms)")
    t0 = time.perf_counter()
    res = prove_sampled(led, "iris", a.rate, op)
    sampled_s = time.perf_counter() - t0
    n_sel = len(res["proven"])
    if not res["proven"]:
        raise SystemExit(f"rate {a.rate} selected none of the {res['calls']} calls: raise --rate or --calls")
    per_proof = statistics.mean(p["prove_seconds"] for p in res["proven"])
    all_est = per_proof * res["calls"]
    print(f"sampled proving at rate {a.rate}: {n_sel} of {res['calls']} calls proven in {sampled_s:.1f} s "
          f"({per_proof:.2f} s each; proving all {res['calls']} would take ~{all_est:.0f} s)")
    det = {f"f={f}": {str(k): round(detection_probability(f, k), 4) for k in (10, 30, 100, 300)}
           for f in (0.01, 0.05, 0.1)}
    led.close()
    print(json.dumps({
        "bench": "zk_gateway", "model": "iris 4-8-3 (hashed input/output)", "logrows": setup["logrows"],
        "calls": a.calls, "rate": a.rate, "mode": a.mode, "setup_s": round(setup_s, 2),
        "gateway_p50_ms_plain": round(p50_plain * 1e3, 3), "gateway_p50_ms_commit": round(p50_zk * 1e3, 3),
        "gateway_mean_ms_plain": round(statistics.mean(plain_lat) * 1e3, 3),
        "gateway_mean_ms_commit": round(statistics.mean(zk_lat) * 1e3, 3),
        "ratio_commit_vs_plain_p50": round(p50_zk / p50_plain, 3),
        "commit_hook_ms_median": round(statistics.median(hook_s) * 1e3, 3),
        "sampled_proven": n_sel, "sampled_prove_s": round(sampled_s, 2), "prove_s_per_call": round(per_proof, 3),
        "prove_all_s_estimate": round(all_est, 1),
        "ratio_sampled_vs_prove_all": round(sampled_s / all_est, 4),
        "findings": len(res["findings"]), "detection_probability": det, "receipts_logged": len(rids)}))


if __name__ == "__main__":
    main()
