"""The simulation's data: scikit-learn's bundled digits (1,797 8x8 images, no download), split non-IID
across the clients by a Dirichlet draw over each class (alpha 0.5), and poisoned for some clients."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ClientData", "Split", "split_digits"]


@dataclass
class ClientData:
    x: Any  # float64 (n, 64), scaled to [0, 1]
    y: Any  # int64 (n,)
    poisoned: bool = False


@dataclass
class Split:
    clients: list[ClientData]
    x_test: Any
    y_test: Any
    n_classes: int


def split_digits(n_clients: int, *, poisoned: int = 0, attack: str = "flip", alpha: float = 0.5,
                 seed: int = 0) -> Split:
    """``n_clients`` shards of the digits training part (75 %, stratified), non-IID; the last ``poisoned``
    clients get flipped labels (``y -> 9 - y``) when ``attack`` is ``flip`` or ``both`` (a ``scale``
    attack is applied to the update by the client, see :mod:`.client`)."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.25, random_state=seed, stratify=y)
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(n_clients)]
    for c in range(10):
        idx = np.flatnonzero(y_tr == c)
        rng.shuffle(idx)
        share = rng.dirichlet([alpha] * n_clients)
        cuts = (np.cumsum(share)[:-1] * len(idx)).astype(int)
        for k, chunk in enumerate(np.split(idx, cuts)):
            parts[k].extend(int(i) for i in chunk)
    # every client gets at least 20 examples (taken from the largest shard), so none trains on nothing
    for k in range(n_clients):
        while len(parts[k]) < 20:
            big = max(range(n_clients), key=lambda j: len(parts[j]))
            parts[k].append(parts[big].pop())
    out = []
    for k, p in enumerate(parts):
        sel = np.array(sorted(p), dtype=np.int64)
        yk = y_tr[sel].astype(np.int64)
        bad = k >= n_clients - poisoned
        if bad and attack in ("flip", "both"):
            yk = 9 - yk
        out.append(ClientData(x_tr[sel], yk, bad))
    return Split(out, x_te, y_te.astype(np.int64), 10)
