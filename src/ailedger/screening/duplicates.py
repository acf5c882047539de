"""Exact and near duplicates.

* exact: identical content digest (the record without its label and source; text is compared after
  lower-casing and collapsing whitespace; image files by their bytes, pixel rows by their values);
* near, text: MinHash (128 permutations of 5-character shingles, hash ``(a*x+b) mod (2^31-1)``),
  candidate pairs by LSH banding (32 bands x 4 rows), kept when the estimated Jaccard similarity >= 0.8;
* near, images: 64-bit perceptual hash (pHash: 32x32 grayscale, 2-D DCT-II, top-left 8x8 block without
  the DC term compared with its median), pairs at Hamming distance <= 4 (images of at least 16x16 pixels);
  tiny pixel grids (< 16x16, e.g. 8x8 digits) carry too little detail for a perceptual hash, so there
  near duplicates are pairs whose Euclidean distance is below 20% of the median nearest-neighbour distance
  (on digits no two distinct originals are closer than 33% of it);
* near, tabular: the same distance rule on standardized features.

The first record of a group (in file order) is the original; later ones are flagged, and every member of
a group whose labels disagree is flagged ``duplicate_label_conflict``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

import numpy as np

MERSENNE = (1 << 31) - 1
NUM_PERM = 128
BANDS, ROWS = 32, 4
SHINGLE = 5
JACCARD_MIN = 0.8
PHASH_MAX_HAMMING = 4
NEAR_DIST_FRACTION = 0.2


@dataclass
class DuplicateResult:
    groups: list[list[int]]  # exact + near groups (sorted members), each of size >= 2
    kinds: list[str]  # "exact" | "near" for each group
    flagged: dict[int, list[str]]  # record -> reasons
    original: dict[int, int]  # record -> first member of its group


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.p = list(range(n))

    def find(self, a: int) -> int:
        while self.p[a] != a:
            self.p[a] = self.p[self.p[a]]
            a = self.p[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.p[max(ra, rb)] = min(ra, rb)


def _shingle_hashes(text: str) -> np.ndarray:
    t = re.sub(r"\s+", " ", text.lower()).strip()
    if len(t) < SHINGLE:
        t = t.ljust(SHINGLE)
    sh = {t[i:i + SHINGLE] for i in range(len(t) - SHINGLE + 1)}
    return np.array([int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big") % MERSENNE
                     for s in sh], dtype=np.int64)


def minhash_signatures(texts: list[str], seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.integers(1, MERSENNE, NUM_PERM, dtype=np.int64)
    b = rng.integers(0, MERSENNE, NUM_PERM, dtype=np.int64)
    sig = np.empty((len(texts), NUM_PERM), dtype=np.int64)
    for i, t in enumerate(texts):
        h = _shingle_hashes(t)
        sig[i] = ((h[:, None] * a[None, :] + b[None, :]) % MERSENNE).min(0)
    return sig


def minhash_pairs(sig: np.ndarray) -> list[tuple[int, int, float]]:
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for i in range(sig.shape[0]):
        for band in range(BANDS):
            key = (band, sig[i, band * ROWS:(band + 1) * ROWS].tobytes())
            buckets.setdefault(key, []).append(i)
    cand: set[tuple[int, int]] = set()
    for members in buckets.values():
        if 1 < len(members) <= 200:
            for x in range(len(members)):
                for y in range(x + 1, len(members)):
                    cand.add((members[x], members[y]))
    out = []
    for i, j in sorted(cand):
        jac = float(np.mean(sig[i] == sig[j]))
        if jac >= JACCARD_MIN:
            out.append((i, j, jac))
    return out


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    x = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * x + 1) * k / (2 * n))
    m[0] /= np.sqrt(2)
    return m * np.sqrt(2 / n)


def phash(images: np.ndarray) -> np.ndarray:
    """64-bit perceptual hashes (as uint64) of grayscale images (n, h, w) in [0, 1]."""
    from PIL import Image

    d = _dct_matrix(32)
    out = np.empty(images.shape[0], dtype=np.uint64)
    weights = (np.uint64(1) << np.arange(64, dtype=np.uint64))
    for i, img in enumerate(images):
        im = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).resize((32, 32), Image.Resampling.LANCZOS)
        a = np.asarray(im, dtype=np.float64)
        c = d @ a @ d.T
        block = c[:8, :8].ravel()
        bits = block > np.median(block[1:])
        out[i] = np.sum(weights[bits])
    return out


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint64)
    return np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1).sum(1)


def phash_pairs(hashes: np.ndarray) -> list[tuple[int, int, int]]:
    out = []
    n = hashes.shape[0]
    for i in range(n - 1):
        dist = _popcount(hashes[i] ^ hashes[i + 1:])
        for j in np.flatnonzero(dist <= PHASH_MAX_HAMMING):
            out.append((i, i + 1 + int(j), int(dist[j])))
    return out


LARGE_N_GRAPH = 20_000
GRAPH_DIMS = 24


def knn_graph(Z: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(distances, indices) of each record's k nearest neighbours, itself first (shared by screeners).

    Exact (brute force) up to 20 000 records; above, neighbours are searched with a k-d tree in the first
    24 principal components (brute force is quadratic), and distances are then recomputed in full space."""
    from sklearn.neighbors import NearestNeighbors

    k = min(k + 1, Z.shape[0])
    if Z.shape[0] <= LARGE_N_GRAPH or Z.shape[1] <= GRAPH_DIMS:
        return NearestNeighbors(n_neighbors=k).fit(Z).kneighbors(Z)
    from sklearn.decomposition import PCA

    Zs = PCA(n_components=GRAPH_DIMS, random_state=0).fit_transform(Z)
    _, idx = NearestNeighbors(n_neighbors=k, algorithm="kd_tree").fit(Zs).kneighbors(Zs)
    dist = np.sqrt(((Z[idx] - Z[:, None, :]) ** 2).sum(-1))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(dist, order, 1), np.take_along_axis(idx, order, 1)


def distance_pairs(Z: np.ndarray, knn: tuple[np.ndarray, np.ndarray] | None = None) -> list[tuple[int, int, float]]:
    n = Z.shape[0]
    dist, idx = knn if knn is not None else knn_graph(Z, 5)
    dist, idx = dist[:, :6], idx[:, :6]
    positive = dist[:, 1:][dist[:, 1:] > 0]
    if positive.size == 0:
        return []
    med = float(np.median(dist[:, 1]))
    if med <= 0:
        med = float(np.median(positive))
    limit = NEAR_DIST_FRACTION * med
    out = []
    for i in range(n):
        for dd, j in zip(dist[i, 1:], idx[i, 1:]):
            if 0 < dd <= limit and i < j:
                out.append((i, int(j), float(dd)))
    return out


def find_duplicates(content_keys: list[bytes], labels: np.ndarray, *, texts: list[str] | None = None,
                    images: np.ndarray | None = None, dense: np.ndarray | None = None,
                    knn: tuple[np.ndarray, np.ndarray] | None = None) -> DuplicateResult:
    n = len(content_keys)
    uf = _UnionFind(n)
    exact_uf = _UnionFind(n)
    first: dict[bytes, int] = {}
    for i, k in enumerate(content_keys):
        if k in first:
            uf.union(first[k], i)
            exact_uf.union(first[k], i)
        else:
            first[k] = i
    pairs: list[tuple[int, int]] = []
    if texts is not None:
        pairs = [(i, j) for i, j, _ in minhash_pairs(minhash_signatures(texts))]
    elif images is not None and min(images.shape[1:]) >= 16:
        pairs = [(i, j) for i, j, _ in phash_pairs(phash(images))]
    elif dense is not None:
        pairs = [(i, j) for i, j, _ in distance_pairs(dense, knn)]
    for i, j in pairs:
        uf.union(i, j)
    groups_map: dict[int, list[int]] = {}
    for i in range(n):
        groups_map.setdefault(uf.find(i), []).append(i)
    groups, kinds = [], []
    flagged: dict[int, list[str]] = {}
    original: dict[int, int] = {}
    for members in groups_map.values():
        if len(members) < 2:
            continue
        members.sort()
        exact = len({exact_uf.find(m) for m in members}) == 1
        groups.append(members)
        kinds.append("exact" if exact else "near")
        conflict = len({int(labels[m]) for m in members}) > 1
        for m in members[1:]:
            original[m] = members[0]
            flagged.setdefault(m, []).append(
                "exact_duplicate" if exact_uf.find(m) == exact_uf.find(members[0]) else "near_duplicate")
        if conflict:
            for m in members:
                flagged.setdefault(m, []).append("duplicate_label_conflict")
    order = sorted(range(len(groups)), key=lambda g: groups[g][0])
    return DuplicateResult(groups=[groups[g] for g in order], kinds=[kinds[g] for g in order],
                           flagged=flagged, original=original)
