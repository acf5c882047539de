"""Contract audit figures (issue 30): recall and precision per DASP category on the held-out half of the
labelled corpus (tests/contractaudit/corpus: 51 contracts, 45 labels, our own code), Slither alone vs
ailedger's front-running rules vs the learned layer vs all together (ailedger: Slither's findings ranked by
the model, noisy rules gated by the threshold calibrated on the training split), and the audit time per
contract against Slither alone in the same run.  For an external corpus (SmartBugs curated) see
bench/smartbugs_bench.py.

Run: .venv/bin/python bench/contract_audit_bench.py [--contracts N] [--chart docs/img/contract-audit-recall.png]
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ailedger.cli.audit_contract import chart
from ailedger.contractaudit.analyse import run_slither
from ailedger.contractaudit.audit import audit_source
from ailedger.contractaudit.evaluate import evaluate_corpus, load_corpus
from ailedger.contractaudit.model import hold_out, load_model

CORPUS = ROOT / "tests" / "contractaudit" / "corpus"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contracts", type=int, default=6, help="held-out contracts timed one by one")
    ap.add_argument("--chart", default=None)
    a = ap.parse_args()

    t0 = time.perf_counter()
    ev = evaluate_corpus(CORPUS)
    eval_s = time.perf_counter() - t0
    print(f"corpus: {ev['contracts']} contracts, {ev['labels']} labels; train {ev['train_contracts']}, "
          f"held out {ev['test_contracts']} ({ev['test_labels']} labels); evaluation {eval_s:.1f} s")
    print(f"learned layer: threshold {ev['threshold'] / 10:.0f}% and noisy rules {ev['training']['noisy_rules']}, "
          "both chosen on the training split")
    print(f"{'category':<27}{'labels':>6}  {'slither R/P':>13}  {'rules R/P':>13}  {'learned R/P':>13}  "
          f"{'ailedger R/P':>13}  {'no floor R/P':>13}")

    def rp(r: dict) -> str:
        f = (lambda v: "  - " if v is None else f"{v * 100:3.0f}%")
        return f"{f(r['recall'])}/{f(r['precision'])}".rjust(13)
    for cat in ev["slither"]:
        print(f"{cat:<27}{ev['slither'][cat]['labels']:>6}  {rp(ev['slither'][cat])}  {rp(ev['rules'][cat])}  "
              f"{rp(ev['learned'][cat])}  {rp(ev['together'][cat])}  {rp(ev['together_no_floor'][cat])}")
    if a.chart:
        chart(ev, a.chart)
        print(f"chart: {a.chart}")

    files, labels = load_corpus(CORPUS)
    _, test = hold_out([str(f) for f in files], labels)
    timed = [Path(f) for f in test[: a.contracts]]
    model = load_model()
    audit_s, slither_s = [], []
    for p in tqdm(timed, desc="audit time", file=sys.stderr):
        t = time.perf_counter()
        audit_source(p, model=model)
        audit_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        run_slither([p])
        slither_s.append(time.perf_counter() - t)
    am, sm = statistics.median(audit_s), statistics.median(slither_s)
    print(f"audit time per contract (median of {len(timed)}): ailedger {am:.2f} s, Slither alone {sm:.2f} s "
          f"(x{am / sm:.2f}: the compile check and the model)")

    def cut(s: dict) -> dict:
        return {c: {"recall": v["recall"], "precision": v["precision"], "labels": v["labels"]} for c, v in s.items()}
    out = {
        "contracts": ev["contracts"], "labels": ev["labels"], "test_contracts": ev["test_contracts"],
        "test_labels": ev["test_labels"], "model_root": ev["model_root"],
        "slither": cut(ev["slither"]), "rules": cut(ev["rules"]), "learned": cut(ev["learned"]),
        "ailedger": cut(ev["together"]), "ailedger_no_floor": cut(ev["together_no_floor"]),
        "threshold": ev["threshold"], "noisy_rules": ev["training"]["noisy_rules"],
        "overall": {"slither_recall": ev["slither"]["overall"]["recall"],
                    "ailedger_recall": ev["together"]["overall"]["recall"],
                    "slither_precision": ev["slither"]["overall"]["precision"],
                    "ailedger_precision": ev["together"]["overall"]["precision"],
                    "ailedger_no_floor_precision": ev["together_no_floor"]["overall"]["precision"],
                    "precision_ratio": round((ev["together"]["overall"]["precision"] or 0)
                                             / (ev["slither"]["overall"]["precision"] or 1), 3),
                    "recall_ratio": round((ev["together"]["overall"]["recall"] or 0)
                                          / (ev["slither"]["overall"]["recall"] or 1), 3),
                    "smartbugs_all_tools_reference": 0.42},
        "audit_s_per_contract": round(am, 3), "slither_s_per_contract": round(sm, 3),
        "audit_vs_slither": round(am / sm, 3), "evaluation_s": round(eval_s, 2),
    }
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
