"""Outliers: mean distance to the k=10 nearest neighbours in the screening embedding.

A record is an outlier when the log of that distance exceeds Q3 + 3*IQR of all records' log distances
(Tukey's far-out fence).  The score is the record's percentile rank of that distance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

K_NEIGHBOURS = 10
FENCE_IQR = 3.0


@dataclass
class OutlierResult:
    knn_distance: np.ndarray
    percentile: np.ndarray
    flag: np.ndarray
    fence: float


def find_outliers(Z: np.ndarray, knn: tuple[np.ndarray, np.ndarray] | None = None) -> OutlierResult:
    """``knn``: precomputed (distances, indices) with the record itself first and >= 10 neighbours."""
    from .duplicates import knn_graph

    n = Z.shape[0]
    dist, _ = knn if knn is not None else knn_graph(Z, K_NEIGHBOURS)
    dist = dist[:, :K_NEIGHBOURS + 1]
    mean = dist[:, 1:].mean(1)
    logd = np.log(mean + 1e-12)
    q1, q3 = np.quantile(logd, [0.25, 0.75])
    fence = float(q3 + FENCE_IQR * (q3 - q1))
    order = np.argsort(np.argsort(mean, kind="stable"), kind="stable")
    pct = (order + 1) / n
    return OutlierResult(knn_distance=mean, percentile=pct, flag=logd > fence, fence=fence)
