"""How fast the explorer's list, record and search pages answer on a large log (a real `ailedger serve`).

Builds a ledger of --entries signed entries (mostly one busy type, plus datasets, models and identities),
starts `ailedger serve` on 127.0.0.1, and times each page (median of --repeat requests, after one warm-up
that also folds the authority and governance state). Reference, measured in the same run on the same
server: `GET /v1/entries/{i}` (the JSON API's single-entry read). Prints one line per page and, last, one
JSON object.

    python bench/explorer_bench.py --entries 200000
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build(d: Path, n: int) -> dict:
    from ailedger.tlog.ledger import Ledger, entry_terms
    from ailedger.tlog.merkle import leaf_hash
    from ailedger.tlog.stores import LeafRow

    led = Ledger.init(d, origin="bench.example/explorer")
    alice, _ = led.new_identity("alice")
    now = led.now()
    rows, names, roots, busy = [], [], [], 0
    for i in range(n):
        if i % 200 == 0:  # 0.5 % model registrations (each its own name), 1 % datasets
            name = f"model-{i}"
            root = f"{i:064x}"
            body = {"name": name, "manifest": {"root": root, "files": 1, "bytes": 1}, "lineage": {}}
            t = "model.register"
            names.append(name)
            roots.append(root)
        elif i % 100 == 1:
            body, t = {"name": f"dataset-{i}", "root": f"{i + 7:064x}", "records": i}, "dataset.commit"
        else:
            body, t = {"i": i, "subjects": [f"sha256:{i:064x}"]}, "decision.log"
            busy += 1
        e = led.make_entry(t, body, alice, time=now)
        rows.append(LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e)))
        if len(rows) == 20000:
            led.log.append(rows)
            rows = []
    if rows:
        led.log.append(rows)
    led.checkpoint()
    size = led.size
    mid = size // 2
    lh = led.store.leaf_hashes(mid, mid + 1)[0].hex()
    led.close()
    return {"size": size, "model": names[len(names) // 2], "root": roots[len(roots) // 3], "leaf": lh, "mid": mid, "busy": busy}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=15)
    a = ap.parse_args()
    from tests.http.helpers import Server

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "ledger"
        t0 = time.perf_counter()
        info = build(d, a.entries)
        print(f"built {info['size']} entries in {time.perf_counter() - t0:.1f} s")
        s = Server(d)
        try:
            busy = info["busy"]
            pages = {
                "home": "/",
                "entries_page_1": "/entries",
                "entries_last_page": f"/entries?page={-(-info['size'] // 50)}",
                "busy_type_page_1": "/entries?type=decision.log",
                "busy_type_last_page": f"/entries?type=decision.log&page={-(-busy // 50)}",
                "datasets": "/datasets",
                "models": "/models",
                "model_page": f"/model/{info['model']}",
                "search_name": f"/search?q={info['model']}",
                "search_leaf_hash": f"/search?q={info['leaf']}",
                "search_manifest_root": f"/search?q={info['root']}",
                "search_nothing": "/search?q=no-such-name",
                "reference_api_entry": f"/v1/entries/{info['mid']}",
            }
            out: dict[str, float] = {}
            with httpx.Client(base_url=s.url, timeout=120) as c:
                for key, path in pages.items():
                    r = c.get(path)  # warm-up (folds, caches)
                    assert r.status_code in (200, 303), (path, r.status_code, r.text[:200])
                    ts = []
                    for _ in range(a.repeat):
                        t = time.perf_counter()
                        r = c.get(path)
                        ts.append(time.perf_counter() - t)
                    out[key] = statistics.median(ts) * 1000
                    print(f"{key:24s} {out[key]:8.1f} ms  {path[:70]}")
        finally:
            s.stop()
    ref = out.pop("reference_api_entry")
    worst = max(out, key=lambda k: out[k])
    print(f"reference GET /v1/entries/i: {ref:.1f} ms; slowest page {worst} {out[worst]:.1f} ms "
          f"= {out[worst] / ref:.1f} x the reference")
    print(json.dumps({"bench": "explorer", "entries": info["size"], "repeat": a.repeat, "cores": os.cpu_count(),
                      "median_ms": {k: round(v, 1) for k, v in out.items()}, "reference_api_entry_ms": round(ref, 1),
                      "ratio_to_reference": {k: round(v / ref, 1) for k, v in out.items()},
                      "slowest": worst, "loadavg": os.getloadavg()}))


if __name__ == "__main__":
    main()
