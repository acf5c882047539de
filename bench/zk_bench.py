"""Verifiable inference with EZKL: set-up, prove and verify times, proof and key sizes, prove time against the
plain inference (ONNX Runtime, same model, same run), ailedger's binding checks against EZKL's own verify, and
the on-chain verify gas (EZKL's Solidity verifier on an in-process EthereumTesterProvider).

    .venv/bin/python bench/zk_bench.py [--verifies 20] [--skip-digits] [--skip-evm]

Models: a 16-32-4 MLP (as in EZKL's benchmarks; synthetic data, public input and output, fixed parameters),
and a 64-32-10 MLP trained on scikit-learn's digits (hashed input and output, fixed parameters).  Each
gets a local test-only SRS sized to its circuit (ezkl.gen_srs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ailedger.provenance.models import register_model
from ailedger.tlog.ledger import Ledger
from ailedger.verifiable.onnxmlp import mlp_to_onnx
from ailedger.verifiable.zk import prove_call, setup_circuit, verify_zk


def train(kind: str):
    from sklearn.neural_network import MLPClassifier

    if kind == "mlp16":
        rng = np.random.default_rng(0)
        x = rng.normal(size=(400, 16)).astype(np.float32)
        y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)
        hidden = (32,)
    else:
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype(np.float32)
        hidden = (32,)
    clf = MLPClassifier(hidden_layer_sizes=hidden, max_iter=400, random_state=0).fit(x, y)
    return clf, x


def plain_seconds(onnx_path: Path, x: np.ndarray, n: int = 200) -> float:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    rows = [r.reshape(1, -1) for r in x[:n]]
    sess.run(None, {name: rows[0]})
    t0 = time.perf_counter()
    for r in rows:
        sess.run(None, {name: r})
    return (time.perf_counter() - t0) / len(rows)


def one(kind: str, vis: dict[str, str], root: Path, verifies: int, evm: bool) -> dict[str, object]:
    clf, x = train(kind)
    d = root / kind
    (d / "model").mkdir(parents=True)
    mlp_to_onnx(clf, d / "model" / "net.onnx")
    led = Ledger.init(d / "ledger", origin=f"bench.example/zk-{kind}")
    owner, _ = led.new_identity("owner")
    register_model(led, d / "model", kind, owner)
    t0 = time.perf_counter()
    s = setup_circuit(led, d / "model" / "net.onnx", kind, owner, input_visibility=vis["input"],
                      output_visibility=vis["output"], param_visibility=vis["params"], calibration=x[:4].tolist(),
                      progress=lambda m: print(f"  {kind}: {m}", flush=True))
    setup_s = time.perf_counter() - t0
    print(f"  {kind}: set-up {setup_s:.1f} s, logrows {s['logrows']}, proving key {s['pk_bytes'] / 1e6:.0f} MB")
    t0 = time.perf_counter()
    b = prove_call(led, kind, x[0].tolist())
    call_s = time.perf_counter() - t0
    print(f"  {kind}: prove {b['prove_seconds']:.2f} s (whole logged call {call_s:.2f} s)")
    ez, bind, total = [], [], []
    first = verify_zk(led, b)  # the first check in this process hashes the SRS, key and settings
    for _ in range(verifies):
        t0 = time.perf_counter()
        r = verify_zk(led, b)
        total.append(time.perf_counter() - t0)
        ez.append(r["ezkl_verify_seconds"])
        bind.append(r["binding_seconds"])
    plain = plain_seconds(d / "model" / "net.onnx", x)
    proof_bytes = len(bytes.fromhex(b["proof"]["proof"].removeprefix("0x"))) if isinstance(b["proof"]["proof"], str) \
        else len(b["proof"]["proof"])
    out: dict[str, object] = {
        "model": kind, "shape": [int(clf.coefs_[0].shape[0]), int(clf.coefs_[0].shape[1]), int(clf.coefs_[1].shape[1])],
        "visibility": vis, "logrows": s["logrows"], "setup_s": round(setup_s, 2), "pk_bytes": s["pk_bytes"],
        "prove_s": b["prove_seconds"], "witness_s": b["forward_seconds"], "proof_bytes": proof_bytes,
        "proof_file_bytes": len(json.dumps(b["proof"])),
        "verify_ezkl_s_median": round(statistics.median(ez), 5),
        "verify_binding_s_median": round(statistics.median(bind), 5),
        "verify_binding_s_first": first["binding_seconds"], "verify_ezkl_s_first": first["ezkl_verify_seconds"],
        "ratio_binding_vs_ezkl_verify_first": round(first["binding_seconds"] / first["ezkl_verify_seconds"], 4),
        "verify_total_s_median": round(statistics.median(total), 5),
        "plain_inference_s": round(plain, 7),
        "ratio_prove_vs_plain": round(b["prove_seconds"] / plain, 1),
        "ratio_binding_vs_ezkl_verify": round(statistics.median(bind) / statistics.median(ez), 4),
    }
    print(f"  {kind}: verify: EZKL {out['verify_ezkl_s_median']} s, ailedger's binding checks "
          f"{out['verify_binding_s_median']} s ({100 * out['ratio_binding_vs_ezkl_verify']:.1f}% of it; the first check, "
          f"hashing the SRS and key: {first['binding_seconds']} s); "
          f"plain inference {plain * 1e6:.0f} us; prove/plain {out['ratio_prove_vs_plain']:.0f}x; proof {proof_bytes} B")
    if evm:
        from ailedger.verifiable.evm import deploy_verifier, verify_on_chain, web3_for

        w3 = web3_for("tester")
        dep = deploy_verifier(led, w3, kind, d / "verifier")
        oc = verify_on_chain(w3, dep["verifier"], b["proof"])
        out.update({"evm_runtime_bytes": dep["runtime_bytes"], "evm_deploy_gas": dep["deploy_gas"],
                    "evm_verify_gas": oc["gas"], "evm_calldata_bytes": oc["calldata_bytes"]})
        print(f"  {kind}: on chain: verifier {dep['runtime_bytes']} B of code, deploy {dep['deploy_gas']} gas, "
              f"verify {oc['gas']} gas")
    led.close()
    shutil.rmtree(d, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--verifies", type=int, default=20)
    ap.add_argument("--skip-digits", action="store_true")
    ap.add_argument("--skip-evm", action="store_true")
    a = ap.parse_args()
    from importlib.metadata import version

    import ezkl  # noqa: F401 - fail early when the zk extra is missing

    load0 = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="zk-bench-"))
    runs = []
    try:
        print("16-32-4 MLP, public input and output, fixed parameters")
        runs.append(one("mlp16", {"input": "public", "output": "public", "params": "fixed"}, root, a.verifies,
                        not a.skip_evm))
        if not a.skip_digits:
            print("digits 64-32-10 MLP, hashed input and output, fixed parameters")
            runs.append(one("digits", {"input": "hashed", "output": "hashed", "params": "fixed"}, root, a.verifies,
                            not a.skip_evm))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    worst = max(float(r["ratio_binding_vs_ezkl_verify"]) for r in runs)  # type: ignore[arg-type]
    print(f"binding checks / EZKL verify, worst: {100 * worst:.1f}% (target < 5%)")
    print(json.dumps({"bench": "zk", "ezkl": version("ezkl"), "cpus": os.cpu_count(), "loadavg_start": round(load0, 2),
                      "loadavg_end": round(os.getloadavg()[0], 2), "runs": runs,
                      "targets": {"binding_vs_ezkl_verify": 0.05},
                      "ratios": {"binding_vs_ezkl_verify_worst": worst,
                                 "prove_vs_plain": [r["ratio_prove_vs_plain"] for r in runs]}}))


if __name__ == "__main__":
    sys.exit(main())
