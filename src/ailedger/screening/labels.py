"""Label errors by confident learning on cross-validated, out-of-sample probabilities.

Rule (stated, fixed, not tuned per data set): a record is a label issue if cleanlab's
``find_label_issues`` (``filter_by="prune_by_noise_rate"``) flags it, OR if the out-of-sample
probability of its given label is below chance level ``1/K`` (the model thinks the given label is less
likely than a uniform guess).  Probabilities are the mean of an ensemble suited to the modality:

* dense data (tabular, pixels) with n <= 20 000: RBF SVC (Platt probabilities) + distance-weighted
  kNN (k=10) + L2 logistic regression, on scaled features;
* dense data with n > 20 000: logistic regression + kNN in the first 24 principal components (k-d tree)
  (the SVC and brute-force kNN are quadratic in n);
* text: logistic regression + complement naive Bayes on TF-IDF word 1-2 grams.

Folds: 10 when n <= 5 000, else 5, and never more than the smallest class count.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

LARGE_N = 20_000


@dataclass
class LabelResult:
    probs: np.ndarray  # (n, K) out-of-sample probabilities
    folds: int
    models: list[str]
    issue: np.ndarray  # bool (n,)
    self_confidence: np.ndarray  # (n,)
    predicted: np.ndarray  # (n,) argmax class code
    cleanlab_flag: np.ndarray  # bool
    cv_accuracy: float  # accuracy of predicted vs given labels


def choose_folds(n: int, min_class: int) -> int:
    return int(max(2, min(10 if n <= 5000 else 5, min_class)))


def _dense_models(n: int, seed: int) -> list[tuple[str, object]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    models: list[tuple[str, object]] = []
    if n <= LARGE_N:
        models.append(("svc_rbf", SVC(C=10.0, gamma="scale", probability=True, random_state=seed)))
    if n <= LARGE_N:
        models.append(("knn10", KNeighborsClassifier(n_neighbors=10, weights="distance")))
    else:  # brute-force kNN is quadratic: a k-d tree in the first 24 principal components
        from sklearn.decomposition import PCA

        models.append(("pca24_knn10", make_pipeline(PCA(n_components=24, random_state=seed),
                                                    KNeighborsClassifier(n_neighbors=10, weights="distance",
                                                                         algorithm="kd_tree"))))
    # standardized inside the model: lbfgs converges far faster on unit-variance features
    models.append(("logreg", make_pipeline(StandardScaler(),
                                           LogisticRegression(C=0.1 if n <= LARGE_N else 1.0, max_iter=2000))))
    return models


def _text_models(seed: int) -> list[tuple[str, object]]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.naive_bayes import ComplementNB

    return [("logreg", LogisticRegression(C=10.0, max_iter=2000)), ("complement_nb", ComplementNB(alpha=0.3))]


def cross_val_probs(X, labels: np.ndarray, n_classes: int, *, text: bool, folds: int, seed: int = 0,
                    models: list[tuple[str, object]] | None = None) -> tuple[np.ndarray, list[str]]:
    """Out-of-sample class probabilities, mean over the ensemble, (n, K), rows summing to 1."""
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    n = labels.shape[0]
    if models is None:
        models = _text_models(seed) if text else _dense_models(n, seed)
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    total = np.zeros((n, n_classes))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, model in models:
            probs = np.zeros((n, n_classes))
            for tr, te in skf.split(np.zeros(n), labels):
                m = clone(model)
                m.fit(X[tr], labels[tr])
                p = m.predict_proba(X[te])
                probs[np.ix_(te, m.classes_)] = p
            total += probs
    total /= len(models)
    total = np.clip(total, 1e-9, None)
    total /= total.sum(1, keepdims=True)
    return total, [name for name, _ in models]


def _cleanlab_filter() -> Any:
    """``cleanlab.filter`` without running ``cleanlab/__init__.py``.

    cleanlab's package ``__init__`` imports every sub-package, Datalab among them, which pulls in Hugging
    Face ``datasets``, pandas and pyarrow: ~0.5 s of CPU on each screening for one function that needs none
    of them (``cleanlab.filter`` needs only numpy, scikit-learn and cleanlab's own ``count``/``rank``/
    ``internal`` modules).  So the package's module is put in ``sys.modules`` unexecuted (its ``__path__``
    is set from its spec, so sub-modules resolve), ``cleanlab.filter`` is imported, and the unexecuted
    package is taken out again: a later ``import cleanlab`` anywhere in the process runs the real
    ``__init__`` (which then reuses the sub-modules already loaded).  The function is the same object
    either way.  If anything in that goes wrong (another cleanlab layout), the ordinary import is used.
    """
    if "cleanlab.filter" in sys.modules or "cleanlab" in sys.modules:
        return importlib.import_module("cleanlab.filter")
    spec = importlib.util.find_spec("cleanlab")
    if spec is None or spec.submodule_search_locations is None:
        return importlib.import_module("cleanlab.filter")  # not installed: the ordinary ImportError
    bare = importlib.util.module_from_spec(spec)
    sys.modules["cleanlab"] = bare
    try:
        module = importlib.import_module("cleanlab.filter")
    except Exception:  # noqa: BLE001 - an unexpected layout: forget what was loaded, import it the usual way
        for name in [m for m in sys.modules if m == "cleanlab" or m.startswith("cleanlab.")]:
            del sys.modules[name]
        return importlib.import_module("cleanlab.filter")
    finally:
        if sys.modules.get("cleanlab") is bare:
            del sys.modules["cleanlab"]
    return module


def find_label_errors(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(issue mask, cleanlab-only mask) by the stated rule above."""
    find_label_issues = _cleanlab_filter().find_label_issues

    k = probs.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # n_jobs=1: cleanlab would otherwise fork a multiprocessing pool from this process, which may hold
        # threads (a server, a tracer, grpc): a forked child can deadlock on a lock one of them held (seen in
        # the full suite). Same result, computed here.
        cl = np.asarray(find_label_issues(labels, probs, filter_by="prune_by_noise_rate", n_jobs=1), dtype=bool)
    self_conf = probs[np.arange(labels.shape[0]), labels]
    return cl | (self_conf < 1.0 / k), cl


def screen_labels(X, labels: np.ndarray, n_classes: int, *, text: bool, folds: int, seed: int = 0) -> LabelResult:
    probs, names = cross_val_probs(X, labels, n_classes, text=text, folds=folds, seed=seed)
    issue, cl = find_label_errors(labels, probs)
    pred = probs.argmax(1)
    return LabelResult(probs=probs, folds=folds, models=names, issue=issue,
                       self_confidence=probs[np.arange(len(labels)), labels], predicted=pred,
                       cleanlab_flag=cl, cv_accuracy=float(np.mean(pred == labels)))
