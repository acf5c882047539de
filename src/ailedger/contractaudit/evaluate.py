"""The evaluation harness: recall and precision per DASP category on a labelled corpus (a folder of .sol files
and a JSON list of {file, line, category}, or SmartBugs' ``vulnerabilities.json``: a list of {name, path,
vulnerabilities: [{lines, category}]}, paths relative to the corpus folder), for Slither alone, the learned layer
alone and both together.

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

__all__ = ["build_training", "evaluate_corpus", "evaluate_external", "load_corpus", "score"]


def _smartbugs(d: Path, lp: Path, raw: list[Any]) -> tuple[list[Path], list[dict[str, Any]]]:
    """SmartBugs' vulnerabilities.json: one label per vulnerability (its category and lines; found when a
    finding of that category covers any of them); ``file`` is the path relative to the corpus folder."""
    files: list[Path] = []
    labels: list[dict[str, Any]] = []
    for i, e in enumerate(raw):
        if not isinstance(e, dict) or not isinstance(e.get("path"), str) or not isinstance(e.get("vulnerabilities"), list):
            raise BadInputError(f"{lp}: entry {i} is not {{name, path, vulnerabilities}}", field="labels")
        f = d / e["path"]
        if not f.is_file():
            raise BadInputError(f"{lp}: entry {i}: no file {e['path']} in {d}", field="labels")
        files.append(f)
        for v in e["vulnerabilities"]:
            lines = v.get("lines") if isinstance(v, dict) else None
            if not isinstance(lines, list) or not lines or not all(isinstance(x, int) for x in lines):
                raise BadInputError(f"{lp}: entry {i}: a vulnerability without lines", field="labels")
            cat = str(v.get("category", "")).lower()
            if cat not in CATEGORIES:
                raise BadInputError(f"{lp}: entry {i}: unknown DASP category {v.get('category')!r}", field="labels")
            labels.append({"file": e["path"], "line": int(lines[0]), "lines": [int(x) for x in lines],
                           "category": cat})
    if not files:
        raise BadInputError(f"{lp}: no contracts listed", field="labels")
    return files, labels


def load_corpus(folder: str | Path, labels: str | Path | None = None) -> tuple[list[Path], list[dict[str, Any]]]:
    d = Path(folder)
    if not d.is_dir():
        raise BadInputError(f"{d}: no such corpus folder", field="corpus")
    lp = Path(labels) if labels else d / "labels.json"
    try:
        raw = parse_json(lp.read_bytes())
    except OSError as e:
        raise BadInputError(f"cannot read labels {lp}: {e.strerror}", field="labels") from None
    except ValueError as e:
        raise BadInputError(f"{lp} is not JSON: {e}", field="labels") from None
    if not isinstance(raw, list):
        raise BadInputError(f"{lp}: expected a JSON list of {{file, line, category}}", field="labels")
    if raw and isinstance(raw[0], dict) and "vulnerabilities" in raw[0]:
        return _smartbugs(d, lp, raw)
    files = sorted(d.glob("*.sol"))
    if not files:
        raise BadInputError(f"{d}: no .sol files", field="corpus")
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
        any(f.get("start_line", f["line"]) <= int(x) <= f.get("end_line", f["line"]) for x in lb.get("lines", [lb["line"]]))


def _key(file: str) -> str:
    """How findings are keyed: the label's ``file`` as given (a name, or a path relative to the corpus)."""
    return file


def score(findings: dict[str, list[dict[str, Any]]], labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """findings: file name -> findings.  Per category and overall: labels, found, findings, true findings,
    recall and precision (None when undefined)."""
    per: dict[str, dict[str, Any]] = {}
    for cat in (*CATEGORIES, "overall"):
        labs = [lb for lb in labels if cat in ("overall", lb["category"])]
        fs = [(name, f) for name, fl in findings.items() for f in fl if cat in ("overall", f["category"])]
        found = sum(any(_covers(f, lb) for f in findings.get(_key(lb["file"]), [])) for lb in labs)
        true = sum(any(_covers(f, lb) for lb in labels if _key(lb["file"]) == name) for name, f in fs)
        per[cat] = {"labels": len(labs), "found": found, "findings": len(fs), "true_findings": true,
                    "recall": round(found / len(labs), 3) if labs else None,
                    "precision": round(true / len(fs), 3) if fs else None}
    return per


def build_training(run: SlitherRun, files: Sequence[Path], labels: Sequence[dict[str, Any]]) -> dict[str, Any]:
    rows = [r for f in files for r in run.functions[str(f.resolve())]]
    return training_data(rows, label_rows(rows, labels))


NOISY = 0.25       # a Slither rule whose precision on the training split is below this (over >= 2 findings)
THRESHOLDS = tuple(range(0, 1000, 50))  # per mille, the candidates calibrate_threshold tries
FOLDS = 4


def noisy_rules(run: SlitherRun, files: Sequence[Path], labels: Sequence[dict[str, Any]]) -> list[str]:
    """Slither rules whose precision on ``files`` (the training split) is below NOISY over at least 2 findings:
    their findings are kept only where the learned layer agrees (:meth:`LearnedModel.rank`)."""
    st: dict[str, list[int]] = {}
    for f in files:
        for x in run.findings[str(f.resolve())]:
            s = st.setdefault(x["rule"], [0, 0])
            s[0] += 1
            s[1] += any(_covers(x, lb) for lb in labels if Path(lb["file"]).name == f.name)
    return sorted(r for r, (n, t) in st.items() if n >= 2 and t / n < NOISY)


def calibrate_threshold(run: SlitherRun, files: Sequence[Path], labels: Sequence[dict[str, Any]],
                        noisy: Sequence[str] = ()) -> dict[str, Any]:
    """The learned layer's confidence floor, chosen on the training split only: out-of-fold predictions
    (the training contracts in FOLDS groups, stratified by category like :func:`hold_out`; each group scored by
    a forest trained on the others) and, for each candidate floor, the F1 of Slither + rules + the learned
    layer over the training contracts; the floor with the best F1 (the lower one on ties)."""
    names = {f.name for f in files}
    labs = [lb for lb in labels if Path(lb["file"]).name in names]
    cat: dict[str, str] = {}
    for lb in sorted(labs, key=lambda x: (x["file"], x["line"])):
        cat.setdefault(Path(lb["file"]).name, lb["category"])
    groups: dict[str, list[Path]] = {}
    for f in sorted(files, key=lambda p: p.name):
        groups.setdefault(cat.get(f.name, "none"), []).append(f)
    fold: dict[str, int] = {}
    for g in sorted(groups):
        for i, f in enumerate(groups[g]):
            fold[f.name] = i % FOLDS
    oof: dict[str, list[dict[str, Any]]] = {}
    for k in range(FOLDS):
        tr = [f for f in files if fold[f.name] != k]
        te = [f for f in files if fold[f.name] == k]
        if not te or not tr:
            continue
        data = build_training(run, tr, labs)
        if not data["rows"]:
            continue
        m = LearnedModel({**data, "noisy_rules": list(noisy)})
        for f in te:
            rows = run.functions[str(f.resolve())]
            m.threshold = 0
            oof[f.name] = m.predict(rows) + m.rank(rows, [*run.findings[str(f.resolve())],
                                                          *run.rules.get(str(f.resolve()), [])])
    curve = []
    for t in THRESHOLDS:
        both = {}
        for f in files:
            learned = [x for x in oof.get(f.name, []) if x["tool"] == "ailedger-model" and x["confidence"] >= t]
            tools = [x for x in oof.get(f.name, []) if x["tool"] != "ailedger-model"
                     and (x["rule"] not in noisy or x["confidence"] >= t)]
            both[f.name] = combine(tools, learned)
        o = score(both, labs)["overall"]
        r, p = o["recall"] or 0.0, o["precision"] or 0.0
        curve.append({"threshold": t, "recall": r, "precision": p, "f1": round(2 * r * p / (r + p), 3) if r + p else 0.0})
    best = max(curve, key=lambda c: (c["f1"], -c["threshold"]))
    return {"threshold": best["threshold"], "curve": curve}


def evaluate_corpus(folder: str | Path, labels_path: str | Path | None = None, *,
                    run: SlitherRun | None = None) -> dict[str, Any]:
    files, labels = load_corpus(folder, labels_path)
    run = run or run_slither(files)
    train, test = hold_out([str(f) for f in files], labels)
    train_p, test_p = [Path(f) for f in train], [Path(f) for f in test]
    data = build_training(run, train_p, labels)
    data["noisy_rules"] = noisy_rules(run, train_p, labels)
    cal = calibrate_threshold(run, train_p, labels, data["noisy_rules"])
    data["threshold"] = cal["threshold"]
    model = LearnedModel(data)
    test_names = {p.name for p in test_p}
    test_labels = [lb for lb in labels if Path(lb["file"]).name in test_names]
    sl, rl, ml, both, both0 = {}, {}, {}, {}, {}
    for p in test_p:
        k = str(p.resolve())
        sl[p.name] = run.findings[k]
        rl[p.name] = run.rules.get(k, [])
        ml[p.name] = model.predict(run.functions[k])
        both[p.name] = combine(model.rank(run.functions[k], [*sl[p.name], *rl[p.name]]), ml[p.name])
        both0[p.name] = combine([*sl[p.name], *rl[p.name]], model.predict(run.functions[k], threshold=0))
    return {"corpus": str(folder), "contracts": len(files), "labels": len(labels),
            "train_contracts": len(train_p), "test_contracts": len(test_p), "test_labels": len(test_labels),
            "model_root": model.root, "training": data, "threshold": cal["threshold"], "calibration": cal["curve"],
            "slither": score(sl, test_labels), "rules": score(rl, test_labels), "learned": score(ml, test_labels),
            "together": score(both, test_labels), "together_no_floor": score(both0, test_labels)}


def evaluate_external(folder: str | Path, labels_path: str | Path | None, model: LearnedModel, *,
                      only: Sequence[str] | None = None, run: SlitherRun | None = None,
                      threshold: int | None = None) -> dict[str, Any]:
    """Score a corpus the model never saw (every contract is a test contract): Slither alone, the learned layer,
    both.  ``only``: paths (relative to the corpus) to keep; ``threshold``: the learned layer's confidence floor
    (per mille; default the model's).  Contracts that do not compile are left out and listed (their labels still count as missed)."""
    files, labels = load_corpus(folder, labels_path)
    d = Path(folder)
    if only is not None:
        keep = {str(Path(x)) for x in only}
        files = [f for f in files if str(f.relative_to(d)) in keep]
        labels = [lb for lb in labels if str(Path(lb["file"])) in keep]
    run = run or run_slither(files, keep_going=True, per_file=True)
    sl: dict[str, list[dict[str, Any]]] = {}
    rl: dict[str, list[dict[str, Any]]] = {}
    ml: dict[str, list[dict[str, Any]]] = {}
    both: dict[str, list[dict[str, Any]]] = {}
    for p in files:
        k, name = str(p.resolve()), str(p.relative_to(d))
        if k in run.errors:
            continue
        sl[name] = run.findings.get(k, [])
        rl[name] = run.rules.get(k, [])
        ml[name] = model.predict(run.functions.get(k, []), threshold)
        both[name] = combine(model.rank(run.functions.get(k, []), [*sl[name], *rl[name]], threshold), ml[name])
    failed = {str(Path(k).relative_to(d.resolve())): v for k, v in run.errors.items()}
    compilers: dict[str, int] = {}
    for k, v in run.compilers.items():
        if k not in run.errors:
            compilers[v.split("+")[0]] = compilers.get(v.split("+")[0], 0) + 1
    return {"corpus": str(folder), "contracts": len(files), "labels": len(labels), "analysed": len(sl),
            "failed": failed, "compilers": dict(sorted(compilers.items())), "model_root": model.root,
            "threshold": model.threshold if threshold is None else threshold,
            "slither": score(sl, labels), "rules": score(rl, labels), "learned": score(ml, labels),
            "together": score(both, labels)}
