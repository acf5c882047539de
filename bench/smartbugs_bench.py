"""Contract audit figures on an external labelled corpus, held out entirely (issue 30): the SmartBugs curated
set (Durieux et al., ICSE 2020: 69 contracts, 115 vulnerabilities in DASP categories; the current repository
has 143 contracts, 207 labelled vulnerabilities).  Slither alone, the learned layer (the shipped model: trained
ONLY on our own corpus, tests/contractaudit/corpus) and both, per DASP category and overall, against the
paper's recall of all nine tools together (42%) and of the best one, Mythril (27%).

The contracts are others' code and are not in this repository: export them and point the bench at them,
    git -C /work/.mirror/smartbugs+smartbugs-curated/repo archive HEAD | tar -x -C /tmp/sbc
    .venv/bin/python bench/smartbugs_bench.py --corpus /tmp/sbc --labels /tmp/sbc/vulnerabilities.json \\
        [--subset /tmp/sbc/ICSE2020_curated_69.txt] [--threshold N]
Each contract is compiled with the npm solc its pragma picks (0.4.x/0.5.x: tools/solc-versions) and analysed
on its own.  A vulnerability counts as found when a finding of its category covers one of its lines.
Last line: one JSON object (with "absent": true and exit code 2 when the corpus is not there).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ailedger.contractaudit.analyse import run_slither
from ailedger.contractaudit.evaluate import evaluate_external, load_corpus
from ailedger.contractaudit.model import load_model

PAPER = {"all_nine_tools": 0.42, "mythril": 0.27}


def subset(path: Path) -> list[str]:
    """ICSE2020_curated_69.txt: lines `./dataset/...sol`, some `[MOVED TO: ./access_control/X.sol]`."""
    out = []
    for ln in path.read_text().splitlines():
        ln = ln.strip()
        if not ln.startswith("./dataset/"):
            continue
        if "MOVED TO:" in ln:
            ln = "./dataset/" + ln.split("MOVED TO:")[1].strip().rstrip("]").strip().removeprefix("./")
        out.append(ln.removeprefix("./"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True, help="the corpus folder (the smartbugs-curated repository root)")
    ap.add_argument("--labels", default=None, help="its vulnerabilities.json (default: CORPUS/vulnerabilities.json)")
    ap.add_argument("--subset", default=None, help="a list of paths to keep (ICSE2020_curated_69.txt)")
    ap.add_argument("--threshold", type=int, default=None, help="learned-layer confidence floor, per mille "
                    "(default: the one calibrated on the training split, shipped with the model)")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--cache", default=None, help="keep Slither's run here (pickle) and reuse it when present")
    a = ap.parse_args()
    corpus = Path(a.corpus)
    labels = Path(a.labels) if a.labels else corpus / "vulnerabilities.json"
    if not corpus.is_dir() or not labels.is_file():
        print(f"corpus absent: {corpus} / {labels} not found (export SmartBugs curated first; see the docstring)",
              file=sys.stderr)
        print(json.dumps({"absent": True, "corpus": str(corpus)}))
        return 2
    only = subset(Path(a.subset)) if a.subset else None
    files, _ = load_corpus(corpus, labels)
    if only is not None:
        files = [f for f in files if str(f.relative_to(corpus)) in set(only)]
    model = load_model()
    thr = a.threshold if a.threshold is not None else model.threshold
    t0 = time.perf_counter()
    if a.cache and Path(a.cache).is_file():
        run = pickle.loads(Path(a.cache).read_bytes())
    else:
        run = run_slither(files, keep_going=True, per_file=True)
        if a.cache:
            Path(a.cache).write_bytes(pickle.dumps(run))
    slither_s = time.perf_counter() - t0
    ev = evaluate_external(corpus, labels, model, only=only, run=run, threshold=thr)
    print(f"corpus {corpus}{' (' + Path(a.subset).name + ')' if a.subset else ''}: {ev['contracts']} contracts, "
          f"{ev['labels']} labelled vulnerabilities; analysed {ev['analysed']} ({ev['compilers']}); "
          f"{len(ev['failed'])} failed; Slither {slither_s:.0f} s; learned threshold {thr / 10:.0f}%")
    for k, v in ev["failed"].items():
        print(f"  not analysed: {k}: {v[:160]}")
    print(f"{'category':<27}{'labels':>6}  {'slither R/P':>13}  {'learned R/P':>13}  {'ailedger R/P':>13}")

    def rp(r: dict) -> str:
        f = (lambda v: "  - " if v is None else f"{v * 100:3.0f}%")
        return f"{f(r['recall'])}/{f(r['precision'])}".rjust(13)
    for cat in ev["slither"]:
        print(f"{cat:<27}{ev['slither'][cat]['labels']:>6}  {rp(ev['slither'][cat])}  {rp(ev['learned'][cat])}  "
              f"{rp(ev['together'][cat])}")
    o = ev["together"]["overall"]
    print(f"paper (ICSE 2020, 69 contracts): all nine tools {PAPER['all_nine_tools']:.0%}, Mythril "
          f"{PAPER['mythril']:.0%}; ailedger here {o['recall']:.1%} "
          f"(x{o['recall'] / PAPER['all_nine_tools']:.2f} of all nine, x{o['recall'] / PAPER['mythril']:.2f} of Mythril)")

    def cut(s: dict) -> dict:
        return {c: {"recall": v["recall"], "precision": v["precision"], "labels": v["labels"], "found": v["found"]}
                for c, v in s.items()}
    out = {"corpus": str(corpus), "subset": Path(a.subset).name if a.subset else None,
           "contracts": ev["contracts"], "labels": ev["labels"], "analysed": ev["analysed"],
           "failed": sorted(ev["failed"]), "compilers": ev["compilers"], "model_root": ev["model_root"],
           "threshold": thr, "slither_s": round(slither_s, 1),
           "slither": cut(ev["slither"]), "learned": cut(ev["learned"]), "ailedger": cut(ev["together"]),
           "overall": {"slither_recall": ev["slither"]["overall"]["recall"],
                       "ailedger_recall": o["recall"], "slither_precision": ev["slither"]["overall"]["precision"],
                       "ailedger_precision": o["precision"],
                       "vs_all_nine_tools": round((o["recall"] or 0) / PAPER["all_nine_tools"], 3),
                       "vs_mythril": round((o["recall"] or 0) / PAPER["mythril"], 3)},
           "paper": PAPER}
    if a.json_out:
        Path(a.json_out).write_text(json.dumps({**out, "findings_run": {"errors": run.errors}}, sort_keys=True))
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
