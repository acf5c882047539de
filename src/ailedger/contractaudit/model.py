"""The learned layer: a random forest over Slither's per-function IR features, trained on a labelled corpus.

The model *is* its training file (``train.json``: the feature rows of the training split, their labels and
the hyper-parameters), refit on load with a fixed seed and one thread, so the same file gives the same
forest and the same predictions on every run.  The model is the folder holding that file (shipped:
``contractaudit/trained/``); its root is the folder's ailedger model manifest root (the one
``ailedger model register DIR`` logs, :func:`ailedger.provenance.hashing.hash_model_dir`), which an audit
entry names as the model and ``--replay`` checks before re-running.

scikit-learn's ``RandomForestClassifier`` was chosen over a hand-written scorer: well kept, deterministic
with ``random_state``, and it gives class probabilities (the confidence) and feature importances (the
explanation) for free.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.errors import BadInputError
from ailedger.provenance.hashing import hash_model_dir

from .analyse import FunctionRow
from .dasp import CATEGORIES

__all__ = ["DEFAULT_MODEL", "DEFAULT_TRAIN", "SCHEMA", "LearnedModel", "hold_out", "label_rows", "load_model", "training_data"]

SCHEMA = "ailedger-contract-audit-train/1"
DEFAULT_MODEL = Path(__file__).parent / "trained"
DEFAULT_TRAIN = DEFAULT_MODEL / "train.json"
PARAMS = {"n_estimators": 200, "max_depth": 8, "random_state": 0, "class_weight": "balanced",
          "min_samples_leaf": 1}
NONE = "none"

_NAMES = {
    "write_after_call": "state written after an external call",
    "sends_value": "sends ether",
    "external_call": "external call",
    "result_ignored": "call result not used",
    "call_in_loop": "external call inside a loop",
    "loop": "loop",
    "reads_length": "loop bound read from storage",
    "unchecked_arith": "arithmetic in an unchecked block",
    "narrowing_cast": "narrowing integer cast",
    "block_value": "reads a block value",
    "block_in_condition": "block value decides a branch",
    "block_derived_number": "number derived from block values",
    "sender_checked": "checks msg.sender",
    "origin_checked": "authorises with tx.origin",
    "unguarded_public_write": "public function writes state without a sender check",
    "param_shadows_state": "parameter shadows a state variable",
    "reads_never_written_state": "reads a state variable nothing writes",
    "params_address": "address parameters",
    "params_uint": "integer parameters",
    "writes_state": "writes state",
    "has_modifier": "has a modifier",
    "payable": "payable",
    "cond": "has a require/if",
}


def _pretty(feature: str) -> str:
    if feature in _NAMES:
        return _NAMES[feature]
    kind, _, rest = feature.partition(":")
    return {"call": "calls ", "solvar": "reads ", "op": "operator ", "ir": "IR ",
            "visibility": "visibility "}.get(kind, kind + " ") + rest


def label_rows(rows: Iterable[FunctionRow], labels: Sequence[dict[str, Any]]) -> list[str]:
    """A function's label: the category of a labelled line inside it, else ``none``."""
    out = []
    for r in rows:
        hit = [lb["category"] for lb in labels
               if Path(lb["file"]).name == Path(r.file).name and r.start <= int(lb["line"]) <= r.end]
        out.append(min(hit) if hit else NONE)
    return out


def hold_out(files: Sequence[str], labels: Sequence[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """Deterministic stratified split by file: within each file's (first) category, in name order, every
    second file is held out for testing.  No test contract is ever trained on."""
    cat: dict[str, str] = {}
    for lb in sorted(labels, key=lambda x: (x["file"], x["line"])):
        cat.setdefault(Path(lb["file"]).name, lb["category"])
    groups: dict[str, list[str]] = {}
    for f in sorted(files, key=lambda p: Path(p).name):
        groups.setdefault(cat.get(Path(f).name, NONE), []).append(f)
    train: list[str] = []
    test: list[str] = []
    for g in sorted(groups):
        for i, f in enumerate(groups[g]):
            (test if i % 2 else train).append(f)
    return train, test


def training_data(rows: Sequence[FunctionRow], labels: Sequence[str]) -> dict[str, Any]:
    return {"schema": SCHEMA, "params": PARAMS, "categories": list(CATEGORIES),
            "rows": [{"file": Path(r.file).name, "function": f"{r.contract}.{r.function}", "label": lb,
                      "features": r.features} for r, lb in zip(rows, labels, strict=True)]}


def training_bytes(data: dict[str, Any]) -> bytes:
    """The bytes of ``train.json``: RFC 8785 canonical JSON and a newline."""
    return canonical_json(data) + b"\n"


def model_root(folder: str | Path) -> str:
    """The model's root: the ailedger manifest root of its folder (what ``ailedger model register`` logs)."""
    return hash_model_dir(folder, workers=1).root.hex()


def _root_of(data: dict[str, Any]) -> str:
    with tempfile.TemporaryDirectory(prefix="ailedger-model-") as d:
        (Path(d) / "train.json").write_bytes(training_bytes(data))
        return model_root(d)


class LearnedModel:
    def __init__(self, data: dict[str, Any], root: str | None = None) -> None:
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.feature_extraction import DictVectorizer

        if data.get("schema") != SCHEMA or not isinstance(data.get("rows"), list) or not data["rows"]:
            raise BadInputError(f"not an {SCHEMA} training file", field="model")
        self.root = root or _root_of(data)
        self.threshold = int(data.get("threshold", 0))  # per mille: learned detections below it are dropped
        self.noisy_rules: frozenset[str] = frozenset(str(r) for r in data.get("noisy_rules", []))
        self.vec = DictVectorizer(sort=True)
        x = self.vec.fit_transform([r["features"] for r in data["rows"]])
        y = [r["label"] for r in data["rows"]]
        self.forest = RandomForestClassifier(n_jobs=1, **data["params"])
        self.forest.fit(x, y)
        self.classes: list[str] = [str(c) for c in self.forest.classes_]
        names = self.vec.get_feature_names_out()
        self.importance = dict(zip((str(n) for n in names), (float(v) for v in self.forest.feature_importances_),
                                   strict=True))

    def probabilities(self, feats: Sequence[dict[str, int]]) -> list[dict[str, float]]:
        if not feats:
            return []
        p = self.forest.predict_proba(self.vec.transform(list(feats)))
        return [dict(zip(self.classes, (float(v) for v in row), strict=True)) for row in p]

    def explain(self, feats: dict[str, int], k: int = 3) -> str:
        top = sorted((f for f in feats if self.importance.get(f, 0.0) > 0),
                     key=lambda f: (-self.importance[f], f))[:k]
        return ", ".join(_pretty(f) for f in top)

    def predict(self, rows: Sequence[FunctionRow], threshold: int | None = None) -> list[dict[str, Any]]:
        """One finding per function the model puts in a DASP category (not ``none``) with a confidence of at
        least ``threshold`` per mille (default: the model's calibrated one); the line is the statement of that
        function the model scores highest for the category."""
        floor = self.threshold if threshold is None else threshold
        out = []
        for r, probs in zip(rows, self.probabilities([r.features for r in rows]), strict=True):
            cat = max(sorted(probs), key=lambda c: probs[c])
            if cat == NONE or round(probs[cat] * 1000) < floor:
                continue
            node_p = self.probabilities([nf for _, nf in r.nodes])
            best = max(range(len(r.nodes)), key=lambda i: (node_p[i].get(cat, 0.0), -i)) if r.nodes else -1
            line = r.nodes[best][0] if best >= 0 else r.start
            out.append({"tool": "ailedger-model", "rule": f"learned-{cat}", "category": cat, "line": int(line),
                        "start_line": r.start, "end_line": r.end, "function": f"{r.contract}.{r.function}",
                        "confidence": round(probs[cat] * 1000),
                        "explanation": f"{r.contract}.{r.function}: {self.explain(r.features)}"})
        return out

    def rank(self, rows: Sequence[FunctionRow], findings: Sequence[dict[str, Any]],
             threshold: int | None = None) -> list[dict[str, Any]]:
        """Tool findings with the model's confidence for their category (``confidence``, per mille); those of
        a noisy rule (precision below NOISY on the training split) are kept only at the calibrated threshold
        or above.  Findings that already carry a confidence (ailedger's rules) keep it."""
        floor = self.threshold if threshold is None else threshold
        out = []
        for f in findings:
            if f.get("tool") == "slither":
                c = self.confidence_for(rows, f)
                f = {**f, "confidence": c if c is not None else 0}
            if f["rule"] in self.noisy_rules and f["confidence"] < floor:
                continue
            out.append(f)
        return out

    def confidence_for(self, rows: Sequence[FunctionRow], finding: dict[str, Any]) -> int | None:
        """The model's confidence (per mille) that the function holding a tool's finding is of its category."""
        for r in rows:
            if r.start <= finding["line"] <= r.end:
                return round(self.probabilities([r.features])[0].get(finding["category"], 0.0) * 1000)
        return None


@lru_cache(maxsize=4)
def _load(folder: str, root: str) -> LearnedModel:
    return LearnedModel(parse_json((Path(folder) / "train.json").read_bytes()), root=root)


def load_model(folder: str | Path | None = None) -> LearnedModel:
    """The model in ``folder`` (a directory holding ``train.json``; default: the shipped one)."""
    d = Path(folder) if folder else DEFAULT_MODEL
    if not (d / "train.json").is_file():
        raise BadInputError(f"{d} is not a model folder: it has no train.json", field="model")
    return _load(str(d), model_root(d))
