"""The evaluation harness: recall and precision per DASP category on a labelled corpus (a folder of .sol files
and a JSON list of {file, line, category}), for Slither alone, the learned layer alone and both together.

The learned layer is trained on the corpus's training split only (:func:`model.hold_out`) and scored on the
held-out contracts; a finding matches a label when it has the label's category and its line range (the
function for the learned layer, the reported element for Slither) covers the labelled line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import parse_json
from ailedger.errors import BadInputError

from .analyse import SlitherRun, run_slither
from .audit import combine
from .dasp import CATEGORIES
from .model import LearnedModel, hold_out, label_rows, training_data

__all__ = ["build_training", "evaluate_corpus", "load_corpus", "score"]


def load_corpus(folder: str | Path, labels: str | Path | None = None) -> tuple[list[Path], list[dict[str, Any]]]:
    d = Path(folder)
    files = sorted(d.glob("*.sol"))
    if not files:
        raise BadInputError(f"{d}: no .sol files", field="corpus")
    lp = Path(labels) if labels else d / "labels.json"
    try:
        raw = parse_json(lp.read_bytes())
    except OSError as e:
        raise BadInputError(f"cannot read labels {lp}: {e.strerror}", field="labels") from None
    if not isinstance(raw, list):
        raise BadInputError(f"{lp}: expected a JSON list of {{file, line, category}}", field="labels")
    names = {f.name for f in files}
    for i, lb in enumerate(raw):
        if not isinstance(lb, dict) or not {"file", "line", "category"} <= set(lb):
            raise BadInputError(f"{lp}: label {i} is not {{file, line, category}}", field="labels")
        if lb["category"] not in CATEGORIES:
            raise BadInputError(f"{lp}: label {i}: unknown DASP category {lb['category']!r}", field="labels")
        if Path(lb["file"]).name not in names:
            raise BadInputError(f"{lp}: label {i}: no file {lb['file']} in {d}", field="labels")
    return files, raw


def _covers(f: dict[str, Any], lb: dict[str, Any]) -> bool:
    return f["category"] == lb["category"] and \
        f.get("start_line", f["line"]) <= int(lb["line"]) <= f.get("end_line", f["line"])


def score(findings: dict[str, list[dict[str, Any]]], labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """findings: file name -> findings.  Per category and overall: labels, found, findings, true findings,
    recall and precision (None when undefined)."""
    per: dict[str, dict[str, Any]] = {}
    for cat in (*CATEGORIES, "overall"):
        labs = [lb for lb in labels if cat in ("overall", lb["category"])]
        fs = [(name, f) for name, fl in findings.items() for f in fl if cat in ("overall", f["category"])]
        found = sum(any(_covers(f, lb) for f in findings.get(Path(lb["file"]).name, [])) for lb in labs)
        true = sum(any(_covers(f, lb) for lb in labels if Path(lb["file"]).name == name) for name, f in fs)
        per[cat] = {"labels": len(labs), "found": found, "findings": len(fs), "true_findings": true,
                    "recall": round(found / len(labs), 3) if labs else None,
                    "precision": round(true / len(fs), 3) if fs else None}
    return per


def build_training(run: SlitherRun, files: Sequence[Path], labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for f in files for r in run.functions[str(f.resolve())]]
    return training_data(rows, label_rows(rows, labels))


def evaluate_corpus(folder: str | Path, labels_path: str | Path | None = None, *,
                    run: SlitherRun | None = None) -> dict[str, Any]:
    files, labels = load_corpus(folder, labels_path)
    run = run or run_slither(files)
    train, test = hold_out([str(f) for f in files], labels)
    train_p, test_p = [Path(f) for f in train], [Path(f) for f in test]
    data = build_training(run, train_p, labels)
    model = LearnedModel(data)
    test_names = {p.name for p in test_p}
    test_labels = [lb for lb in labels if Path(lb["file"]).name in test_names]
    sl, ml, both = {}, {}, {}
    for p in test_p:
        k = str(p.resolve())
        sl[p.name] = run.findings[k]
        ml[p.name] = model.predict(run.functions[k])
        both[p.name] = combine(sl[p.name], ml[p.name])
    return {"corpus": str(folder), "contracts": len(files), "labels": len(labels),
            "train_contracts": len(train_p), "test_contracts": len(test_p), "test_labels": len(test_labels),
            "model_root": model.root, "training": data,
            "slither": score(sl, test_labels), "learned": score(ml, test_labels), "together": score(both, test_labels)}
