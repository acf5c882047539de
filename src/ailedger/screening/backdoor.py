"""Backdoor signs: activation clustering, a trigger-feature test, spectral signatures.

We have no trained network whose activations we could read, so the "activations" are the screening
embedding (scaled pixels or features; a TF-IDF SVD for text).  Per class with at least 20 records:

1. Activation clustering (Chen et al., 2018, arXiv:1811.03728): centre the class, project on its first
   10 principal components, split in two by k-means; the smaller cluster is the candidate if it holds
   at most 35% of the class.
2. Exclusionary reclassification (same paper): a kNN (k=10) fitted on every record outside the candidate
   cluster classifies the cluster; poison "looks like" other classes, so the share still predicted as
   the class is low (< 0.5).
3. Trigger-feature test (ours): a feature is a trigger candidate when at least 50% of the cluster exceed
   that feature's 99th percentile among all records outside the cluster, and the cluster mean is at
   least 4 standard deviations (of the records outside) above theirs.  Patch triggers (BadNets-style)
   and rare trigger tokens in text produce exactly this; natural sub-styles of a class do not.
4. Spectral signatures (Tran et al., 2018, arXiv:1811.00636): squared projection of each centred record
   on the top right-singular vector of its class, reported as evidence (no fixed poison rate is assumed,
   so it does not flag on its own).

A class is ``backdoor_suspected`` when 2 and 3 both hold; its records that carry at least half of the
trigger features are flagged ``backdoor_trigger``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

MIN_CLASS = 20
MAX_CLUSTER_SHARE = 0.35
SAME_CLASS_MAX = 0.5
TRIGGER_SHARE = 0.5
TRIGGER_EFFECT = 4.0
PCA_DIMS = 10


@dataclass
class ClassFinding:
    label: int
    records: int
    cluster_size: int
    cluster_share: float
    silhouette: float
    same_class_share: float  # exclusionary reclassification
    trigger_features: list[int]
    suspected: bool
    flagged: list[int] = field(default_factory=list)
    spectral_max: float = 0.0


@dataclass
class BackdoorResult:
    classes: list[ClassFinding]
    spectral: np.ndarray  # per-record spectral score, normalised by the class median
    flag: np.ndarray  # bool


def _column_quantile_dense(X: np.ndarray, q: float) -> np.ndarray:
    return np.quantile(X, q, axis=0)


def screen_backdoor(Z: np.ndarray, labels: np.ndarray, raw, *, binary_raw: bool = False, seed: int = 0) -> BackdoorResult:
    """``Z``: dense embedding (n, m); ``raw``: the feature matrix the trigger test looks at (dense, or
    sparse when ``binary_raw``: tokens are present/absent)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import KNeighborsClassifier

    n = labels.shape[0]
    spectral = np.zeros(n)
    flag = np.zeros(n, dtype=bool)
    findings: list[ClassFinding] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if idx.size < MIN_CLASS:
            continue
        Zc = Z[idx] - Z[idx].mean(0)
        try:
            _, _, vt = np.linalg.svd(Zc, full_matrices=False)
            s = (Zc @ vt[0]) ** 2
            spectral[idx] = s / (np.median(s) + 1e-12)
            dims = int(min(PCA_DIMS, Zc.shape[1], idx.size - 1))
            proj = Zc @ vt[:dims].T
        except np.linalg.LinAlgError:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            km = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(proj)
        lab = km.labels_
        counts = np.bincount(lab, minlength=2)
        if counts.min() == 0:
            continue
        small = int(np.argmin(counts))
        cluster = idx[lab == small]
        share = cluster.size / idx.size
        sil = float(silhouette_score(proj, lab)) if idx.size > 2 else 0.0
        finding = ClassFinding(label=int(c), records=int(idx.size), cluster_size=int(cluster.size),
                               cluster_share=float(share), silhouette=sil, same_class_share=1.0,
                               trigger_features=[], suspected=False, spectral_max=float(spectral[idx].max()))
        findings.append(finding)
        if share > MAX_CLUSTER_SHARE or cluster.size < 3:
            continue
        outside = np.ones(n, dtype=bool)
        outside[cluster] = False
        k = int(min(10, outside.sum()))
        knn = KNeighborsClassifier(n_neighbors=k).fit(Z[outside], labels[outside])
        finding.same_class_share = float(np.mean(knn.predict(Z[cluster]) == c))
        # trigger-feature test
        if binary_raw:
            pres_out = np.asarray((raw[outside] > 0).mean(0)).ravel()
            pres_in = np.asarray((raw[cluster] > 0).mean(0)).ravel()
            trig = np.flatnonzero((pres_in >= TRIGGER_SHARE) & (pres_out <= 0.01))
            carried = np.asarray((raw[idx][:, trig] > 0).sum(1)).ravel() if trig.size else np.zeros(idx.size)
        else:
            R = np.asarray(raw, dtype=np.float64)
            q99 = _column_quantile_dense(R[outside], 0.99)
            rng_ = R.max(0) - R.min(0)
            sd = R[outside].std(0) + 1e-3 * np.where(rng_ > 0, rng_, 1.0)
            share_j = (R[cluster] > q99).mean(0)
            effect = (R[cluster].mean(0) - R[outside].mean(0)) / sd
            trig = np.flatnonzero((share_j >= TRIGGER_SHARE) & (effect >= TRIGGER_EFFECT))
            carried = (R[idx][:, trig] > q99[trig]).sum(1) if trig.size else np.zeros(idx.size)
        finding.trigger_features = [int(t) for t in trig]
        if trig.size and finding.same_class_share < SAME_CLASS_MAX:
            finding.suspected = True
            hit = idx[carried >= max(1, int(np.ceil(trig.size / 2)))]
            finding.flagged = [int(h) for h in hit]
            flag[hit] = True
    return BackdoorResult(classes=findings, spectral=spectral, flag=flag)
