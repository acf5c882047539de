"""Hugging Face datasets folders and model cards: what reading a `save_to_disk` folder costs next to the
Parquet export of the same records, and what offline verification of a model folder costs.

Usage: .venv/bin/python bench/integrations_bench.py [--rows 200000] [--model-mib 64]

Figures (one run, this machine): `dataset commit` records/s from a `datasets` save_to_disk folder (Arrow IPC
stream) and from the Parquet export of the same records, with their ratio (the roots must be equal);
`model verify-offline` MiB/s (proof + signature + every byte re-hashed) next to `model verify` against the
ledger on the same folder, and the reference of plain hashlib SHA-256 over the same bytes in memory.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--model-mib", type=int, default=64)
    args = ap.parse_args()

    import datasets
    import numpy as np

    from ailedger.integrations.hf import model_card, model_proof, verify_folder_offline
    from ailedger.provenance import commit_dataset, register_model, verify_model
    from ailedger.tlog.ledger import Ledger

    tmp = Path(tempfile.mkdtemp(prefix="ailedger-integrations-bench-"))
    try:
        rng = np.random.default_rng(0)
        ds = datasets.Dataset.from_dict({"id": np.arange(args.rows), "x": rng.normal(size=args.rows),
                                         "text": [f"record {i} of the bench" for i in range(args.rows)]})
        datasets.disable_progress_bars()
        ds.save_to_disk(str(tmp / "disk"))
        ds.to_parquet(str(tmp / "data.parquet"))
        led = Ledger.init(tmp / "ledger", origin="bench.example/integrations")
        alice = led.identities.create("alice")
        t = time.perf_counter()
        a = commit_dataset(led, [str(tmp / "disk")], "from-disk", alice)
        t_disk = time.perf_counter() - t
        t = time.perf_counter()
        b = commit_dataset(led, [str(tmp / "data.parquet")], "from-parquet", alice)
        t_pq = time.perf_counter() - t
        assert a["root"] == b["root"], "save_to_disk folder and Parquet export gave different roots"
        print(f"dataset commit, {args.rows} records: save_to_disk folder {args.rows / t_disk:,.0f} rec/s, "
              f"Parquet {args.rows / t_pq:,.0f} rec/s (same root {a['root'][:16]}...)")

        m = tmp / "model"
        m.mkdir()
        (m / "config.json").write_text('{"bench": true}\n')
        data = os.urandom(args.model_mib << 20)
        (m / "weights.bin").write_bytes(data)
        reg = register_model(led, m, "bench-model", alice)
        text, facts = model_card(led, "bench-model")
        proof = model_proof(led, int(reg["index"]))
        t = time.perf_counter()
        rep = verify_folder_offline(m, proof, led.vkey)
        t_off = time.perf_counter() - t
        t = time.perf_counter()
        rep2 = verify_model(led, m)
        t_led = time.perf_counter() - t
        assert rep["ok"] and rep2["ok"]
        t = time.perf_counter()
        hashlib.sha256(data).digest()
        t_sha = time.perf_counter() - t
        mib = len(data) / (1 << 20)
        print(f"model {mib:.0f} MiB: verify-offline {mib / t_off:,.0f} MiB/s, verify (ledger) {mib / t_led:,.0f} MiB/s, "
              f"hashlib sha256 in memory {mib / t_sha:,.0f} MiB/s; card {len(text)} bytes, proof {len(proof)} bytes")
        led.close()
        print(json.dumps({
            "bench": "integrations",
            "dataset": {"rows": args.rows, "save_to_disk_rec_s": round(args.rows / t_disk),
                        "parquet_rec_s": round(args.rows / t_pq), "disk_over_parquet": round(t_pq / t_disk, 3),
                        "same_root": True},
            "model": {"mib": round(mib), "verify_offline_mib_s": round(mib / t_off, 1),
                      "verify_ledger_mib_s": round(mib / t_led, 1), "sha256_memory_mib_s": round(mib / t_sha, 1),
                      "offline_over_ledger": round(t_led / t_off, 3), "offline_over_sha256": round(t_sha / t_off, 3),
                      "card_bytes": len(text), "proof_bytes": len(proof), "status": facts["status"]},
        }, sort_keys=True))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
