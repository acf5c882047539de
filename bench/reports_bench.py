"""How long a record-keeping report takes to build and to check offline, against the log's own full audit.

A ledger with the README's model and CALLS inference calls (in batches of BATCH through the SDK), then:
``build_record_keeping`` for the whole period, its offline ``verify_report`` (every proof, every entry's
signature, the range rebuilt to the closing root, the summary recomputed), and as the reference the ledger's
``audit(signatures=True)`` over the same log.  Last line: one JSON object.

Usage: python bench/reports_bench.py [--calls 50000] [--batch 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from tqdm import tqdm


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=50000)
    ap.add_argument("--batch", type=int, default=10)
    a = ap.parse_args()
    from ailedger.inference import InferenceTrail
    from ailedger.provenance.models import register_model
    from ailedger.reports.records import build_record_keeping
    from ailedger.reports.render import render_html
    from ailedger.reports.technical import build_technical_doc, dump
    from ailedger.reports.verify import verify_report
    from ailedger.tlog.ledger import Ledger

    with tempfile.TemporaryDirectory(prefix="reports-bench-") as tmp:
        base = Path(tmp)
        led = Ledger.init(str(base / "ledger"), origin="example.org/ai-ledger")
        ident, _ = led.new_identity("ml-team")
        (base / "m").mkdir()
        (base / "m" / "weights.json").write_text('{"weights": [0.1, 0.2]}')
        register_model(led, str(base / "m"), "sentiment-v1", ident)
        trail = InferenceTrail(led, "sentiment-v1", mode="fast", caller="shop", max_batch=a.batch)
        predict = trail.wrap(subject=lambda text: "customer-7")(lambda text: {"label": "positive"})
        for i in tqdm(range(a.calls), desc="calls", file=sys.stderr, disable=not sys.stderr.isatty()):
            predict(f"review {i}")
        trail.close()
        size = led.size
        t0 = time.perf_counter()
        out = base / "rk"
        out.mkdir()
        rep = build_record_keeping(led, "sentiment-v1", "2020-01-01", "2100-01-01", out)
        (out / "report.json").write_text(dump(rep))
        (out / "report.html").write_text(render_html(rep))
        t_build = time.perf_counter() - t0
        t0 = time.perf_counter()
        td = base / "td"
        td.mkdir()
        rep_td = build_technical_doc(led, "sentiment-v1", td)
        (td / "report.json").write_text(dump(rep_td))
        t_td = time.perf_counter() - t0
        t0 = time.perf_counter()
        res = verify_report(out)
        t_verify = time.perf_counter() - t0
        t0 = time.perf_counter()
        audit = led.audit(signatures=True)
        t_audit = time.perf_counter() - t0
        led.close()
        folder_bytes = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(f"log: {size} entries, {a.calls} inference calls in {rep['summary']['inference_batches']} batches")
    print(f"record-keeping report: built in {t_build:.3f} s ({len(rep['statements'])} statements, "
          f"{folder_bytes / 1e6:.2f} MB), verified offline in {t_verify:.3f} s")
    print(f"technical documentation built in {t_td:.3f} s")
    print(f"reference: ledger audit with signatures {t_audit:.3f} s (ok={audit.ok})")
    print(json.dumps({
        "bench": "reports", "log_entries": size, "calls": a.calls, "batch": a.batch,
        "inference_records_claimed": res["inference_records"], "statements": len(rep["statements"]),
        "folder_mb": round(folder_bytes / 1e6, 3), "record_keeping_build_s": round(t_build, 4),
        "record_keeping_verify_s": round(t_verify, 4), "technical_doc_build_s": round(t_td, 4),
        "reference_audit_signatures_s": round(t_audit, 4),
        "ratio_verify_to_audit": round(t_verify / t_audit, 3) if t_audit else None,
        "verify_us_per_range_entry": round(t_verify / max(1, size) * 1e6, 1),
    }, sort_keys=True))


if __name__ == "__main__":
    main()
