import csv
import hashlib

import numpy as np

from ailedger.screening.loaders import Dataset


def flip_labels(y, rate, seed, k=10):
    r = np.random.default_rng(seed)
    idx = r.choice(len(y), round(rate * len(y)), replace=False)
    y2 = y.copy()
    for i in idx:
        y2[i] = r.choice([c for c in range(k) if c != y[i]])
    return y2, set(idx.tolist())


def digits_dataset(X, y, sources=None, names=None):
    n = len(y)
    src = np.zeros(n, dtype=np.int64) if sources is None else np.asarray(sources, dtype=np.int64)
    return Dataset(path="mem", modality="image", labels=np.asarray(y, dtype=np.int64),
                   classes=[str(i) for i in range(10)], sources=src,
                   source_names=names or [f"s{i}" for i in range(int(src.max()) + 1)],
                   features=X.astype(float), content_keys=[hashlib.sha256(r.tobytes()).digest() for r in X],
                   images=(X / 16).reshape(-1, 8, 8).astype(np.float32))


def write_csv(path, X, y, sources=None):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow([f"p{j}" for j in range(X.shape[1])] + ["label"] + (["source"] if sources is not None else []))
        for i in range(len(y)):
            w.writerow([int(v) for v in X[i]] + [int(y[i])] + ([sources[i]] if sources is not None else []))
