"""Run every screener on a loaded data set and assemble the JSON report."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ailedger.errors import BadInputError

from .backdoor import screen_backdoor
from .duplicates import find_duplicates, knn_graph
from .labels import choose_folds, screen_labels
from .loaders import Dataset, load_dataset
from .outliers import K_NEIGHBOURS, find_outliers
from .report import SCHEMA
from .sources import leave_one_source_out, source_verdicts

MIN_RECORDS = 20
MIN_PER_CLASS = 2
LABEL_REASONS = {"label_issue", "duplicate_label_conflict", "backdoor_trigger"}
TOO_MANY_FLAGGED = 0.10


def _embed(ds: Dataset, seed: int) -> tuple[Any, np.ndarray, Any, bool]:
    """(model input, dense embedding, raw matrix for the trigger test, raw is binary tokens)."""
    if ds.modality == "text":
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.preprocessing import normalize

        assert ds.texts is not None
        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, max_features=200_000)
        try:
            T = vec.fit_transform(ds.texts)
        except ValueError:
            raise BadInputError("cannot screen this: the text column has no words", field="text_column") from None
        dims = int(min(100, T.shape[1] - 1, T.shape[0] - 1))
        if dims >= 2:
            Z = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(T)
            Z = normalize(Z)
        else:
            Z = T.toarray()
        ds.feature_names = [str(t) for t in vec.get_feature_names_out()]
        return T, Z, T, True
    X = np.asarray(ds.features, dtype=np.float64)
    if ds.modality == "image":
        gmax = float(np.abs(X).max()) or 1.0
        Xs = X / gmax
    else:
        from sklearn.preprocessing import StandardScaler

        Xs = StandardScaler().fit_transform(X)
    Z = Xs
    if Xs.shape[1] > 256:
        from sklearn.decomposition import PCA

        Z = PCA(n_components=int(min(64, Xs.shape[0] - 1)), random_state=seed).fit_transform(Xs)
        Xs = Z if ds.modality == "image" else Xs
    return Xs, Z, X, False


def _feature_name(ds: Dataset, j: int) -> str:
    if ds.feature_names is not None and j < len(ds.feature_names):
        return ds.feature_names[j]
    if ds.images is not None:
        w = ds.images.shape[2]
        return f"pixel(row={j // w},col={j % w})"
    return f"feature {j}"


def check_screenable(ds: Dataset) -> None:
    """Refuse, with a clear reason, what cannot be screened (never a silent pass)."""
    if ds.n < MIN_RECORDS:
        raise BadInputError(f"cannot screen this: {ds.n} records, need at least {MIN_RECORDS} to cross-validate",
                            field="path")
    counts = np.bincount(ds.labels, minlength=len(ds.classes))
    if len(ds.classes) < 2:
        raise BadInputError(f"cannot screen this: every record has the label {ds.classes[0]!r}; "
                            "label errors need at least 2 classes", field="label_column")
    small = [(ds.classes[i], int(c)) for i, c in enumerate(counts) if c < MIN_PER_CLASS]
    if small:
        names = ", ".join(f"{name!r} ({c} record)" for name, c in small[:5])
        raise BadInputError(f"cannot screen this: label(s) with fewer than {MIN_PER_CLASS} records cannot be "
                            f"cross-validated: {names}", field="label_column")


def screen(ds: Dataset, *, seed: int = 0, loo: bool = True) -> dict[str, Any]:
    """Screen ``ds``; returns the JSON-ready report (see docs/screening.md for the schema).

    BLAS is held to one thread: the models here are many small fits, and OpenBLAS threads contending
    with each other (or with other processes) made them up to 50x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _screen(ds, seed=seed, loo=loo)


def _screen(ds: Dataset, *, seed: int, loo: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    check_screenable(ds)
    timings: dict[str, float] = {}
    k = len(ds.classes)
    counts = np.bincount(ds.labels, minlength=k)
    folds = choose_folds(ds.n, int(counts.min()))
    t = time.perf_counter()
    Xm, Z, raw, binary = _embed(ds, seed)
    timings["embed"] = time.perf_counter() - t
    t = time.perf_counter()
    lab = screen_labels(Xm, ds.labels, k, text=ds.modality == "text", folds=folds, seed=seed)
    timings["labels"] = time.perf_counter() - t
    t = time.perf_counter()
    knn = knn_graph(Z, K_NEIGHBOURS)
    timings["knn_graph"] = time.perf_counter() - t
    t = time.perf_counter()
    dense_for_dups = Z if ds.modality != "text" else None
    dup = find_duplicates(ds.content_keys, ds.labels, texts=ds.texts,
                          images=ds.images if ds.modality == "image" else None, dense=dense_for_dups, knn=knn)
    timings["duplicates"] = time.perf_counter() - t
    t = time.perf_counter()
    out = find_outliers(Z, knn)
    timings["outliers"] = time.perf_counter() - t
    t = time.perf_counter()
    bd = screen_backdoor(Z, ds.labels, raw, binary_raw=binary, seed=seed)
    timings["backdoor"] = time.perf_counter() - t

    reasons: dict[int, list[str]] = {}
    scores: dict[int, float] = {}

    def add(i: int, reason: str, score: float) -> None:
        lst = reasons.setdefault(i, [])
        if reason not in lst:
            lst.append(reason)
        scores[i] = max(scores.get(i, 0.0), float(score))

    for rec in np.flatnonzero(lab.issue):
        add(int(rec), "label_issue", 1.0 - lab.self_confidence[rec])
    for i, rs in dup.flagged.items():
        for r in rs:
            add(i, r, 1.0)
    for rec in np.flatnonzero(out.flag):
        add(int(rec), "outlier", out.percentile[rec])
    for rec in np.flatnonzero(bd.flag):
        add(int(rec), "backdoor_trigger", 1.0)
    n = ds.n
    label_problem = np.zeros(n, dtype=bool)
    any_flag = np.zeros(n, dtype=bool)
    for i, rs in reasons.items():
        any_flag[i] = True
        if LABEL_REASONS.intersection(rs):
            label_problem[i] = True

    t = time.perf_counter()
    loo_res = None
    if loo and len(ds.source_names) >= 2:
        loo_res = leave_one_source_out(Xm, ds.labels, ds.sources, ~any_flag, text=ds.modality == "text", seed=seed)
    verdicts = source_verdicts(ds.labels, ds.classes, ds.sources, ds.source_names, label_problem, any_flag,
                               bd.flag, loo_res)
    timings["sources"] = time.perf_counter() - t

    flagged = []
    for i in sorted(reasons):
        entry: dict[str, Any] = {"record": i, "reasons": reasons[i], "score": round(scores[i], 6),
                                 "label": ds.classes[ds.labels[i]], "source": ds.source_names[ds.sources[i]]}
        if "label_issue" in reasons[i]:
            entry["suggested_label"] = ds.classes[int(lab.predicted[i])]
        if i in dup.original:
            entry["duplicate_of"] = dup.original[i]
        flagged.append(entry)
    by_reason: dict[str, int] = {}
    for rs in reasons.values():
        for r in rs:
            by_reason[r] = by_reason.get(r, 0) + 1
    suspected = [f for f in bd.classes if f.suspected]
    frac = len(flagged) / n
    if any(v.verdict == "remove" for v in verdicts) or suspected or frac > TOO_MANY_FLAGGED:
        overall = "fail"
    elif flagged or any(v.verdict == "review" for v in verdicts):
        overall = "warn"
    else:
        overall = "pass"
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "dataset": {
            "path": ds.path, "sha256": ds.sha256, "records": n, "modality": ds.modality,
            "label_column": ds.label_column, "source_column": ds.source_column,
            "class_counts": {ds.classes[i]: int(counts[i]) for i in range(k)},
            "sources": len(ds.source_names),
        },
        "parameters": {
            "seed": seed, "folds": folds, "models": lab.models,
            "label_rule": "cleanlab find_label_issues(prune_by_noise_rate) OR self-confidence < 1/K",
            "near_duplicates": {"text": "minhash 128 perms, 5-char shingles, jaccard >= 0.8",
                                "image": "phash 64-bit, hamming <= 4 (>= 16x16 px); else L2 < 20% median NN",
                                "tabular": "L2 < 20% of median nearest-neighbour distance"}[ds.modality],
            "outlier_rule": "log mean 10-NN distance > Q3 + 3 IQR",
            "backdoor_rule": "activation clustering + exclusionary reclassification + trigger-feature test",
            "leave_one_source_out": bool(loo_res is not None),
        },
        "summary": {
            "flagged": len(flagged), "flagged_fraction": round(frac, 6), "by_reason": by_reason,
            "cv_accuracy": round(lab.cv_accuracy, 6), "label_issues": int(lab.issue.sum()),
            "duplicate_groups": len(dup.groups), "outliers": int(out.flag.sum()),
            "backdoor_suspected_classes": [ds.classes[f.label] for f in suspected],
        },
        "verdict": overall,
        "flagged": flagged,
        "duplicates": [{"kind": kind, "records": g} for kind, g in zip(dup.kinds, dup.groups)],
        "backdoor": [{
            "label": ds.classes[f.label], "records": f.records, "cluster_size": f.cluster_size,
            "cluster_share": round(f.cluster_share, 4), "silhouette": round(f.silhouette, 4),
            "same_class_share": round(f.same_class_share, 4), "trigger_features": f.trigger_features,
            "trigger_feature_names": [_feature_name(ds, j) for j in f.trigger_features],
            "spectral_max": round(f.spectral_max, 3), "suspected": f.suspected, "flagged": len(f.flagged),
        } for f in bd.classes],
        "sources": [{
            "source": v.source, "records": v.records, "flagged": v.flagged, "label_flagged": v.label_flagged,
            "backdoor_flagged": v.backdoor_flagged, "flag_rate": round(v.flag_rate, 6),
            "others_flag_rate": round(v.others_flag_rate, 6), "flag_rate_p": float(f"{v.flag_rate_p:.3e}"),
            "label_counts": v.label_counts, "label_js": round(v.label_js, 6),
            "label_chi2_p": float(f"{v.label_chi2_p:.3e}"),
            "loo_delta_accuracy": None if v.loo_delta_accuracy is None else round(v.loo_delta_accuracy, 6),
            "loo_stderr": None if v.loo_stderr is None else round(v.loo_stderr, 6),
            "verdict": v.verdict, "reasons": v.reasons,
        } for v in verdicts],
        "notes": list(ds.notes),
        "timing_seconds": {**{k_: round(v_, 3) for k_, v_ in timings.items()},
                           "total": round(time.perf_counter() - t0, 3)},
    }
    return report


def screen_path(path: str, *, label_column: str | None = None, source_column: str | None = None,
                text_column: str | None = None, image_column: str | None = None, modality: str = "auto",
                seed: int = 0, loo: bool = True, ignore_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load and screen ``path``; raises BadInputError for anything that cannot be screened."""
    ds = load_dataset(path, label_column=label_column, source_column=source_column, text_column=text_column,
                      image_column=image_column, modality=modality, ignore_columns=ignore_columns)
    return screen(ds, seed=seed, loo=loo)
