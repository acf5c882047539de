"""The job: a fixed number of SGD steps of a small MLP, in fixed-point integer arithmetic (bit-identical on
every machine: int64 numpy, arithmetic shifts, no floats after the data is quantised).

Numbers are Q16 (``value * 2**16`` as int64).  One step ``i`` takes the rows ``(i*batch + k) mod N`` of the
committed dataset, runs ``relu(x W1 + b1) W2 + b2`` against the one-hot label (squared error), and moves every
weight by ``-(grad >> lr_shift)``.  Products are Q32 and shifted back to Q16 right after each matmul;
activations and weights are clipped to +-2**22 (+-64.0), so no sum can reach 2**63 (64 inputs x 2**22 x
2**22 < 2**51).

The state root after a step is manifest-style: an RFC 6962 Merkle root over one canonical-JSON leaf per
tensor ``{"dtype": "int64le", "name", "shape", "sha256"}`` (sorted by name).  The trace root is the RFC 6962
root over the step roots ``r_0 .. r_S`` (``r_0`` = the initial model).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError
from ailedger.tlog.merkle import inclusion_plan, leaf_hash, rehash_plan, root_from_leaf_hashes

if TYPE_CHECKING:
    import numpy as np

__all__ = [
    "DATASETS",
    "FRAC",
    "JobSpec",
    "State",
    "dataset",
    "dataset_root",
    "init_state",
    "run",
    "state_root",
    "step",
    "trace_root",
]

FRAC = 16
ONE = 1 << FRAC
CLIP = 1 << 22
DATASETS = ("digits", "iris", "wine", "breast_cancer")
TENSORS = ("b1", "b2", "w1", "w2")

State = dict[str, "np.ndarray"]


@dataclass(frozen=True)
class JobSpec:
    """What the client buys: the program (this module, ``program``), its inputs and its size."""

    dataset: str = "digits"
    rows: int = 256
    hidden: int = 16
    batch: int = 8
    steps: int = 100
    lr_shift: int = 6
    seed: int = 1
    program: str = "ailedger.compute/mlp-sgd-q16/v1"

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise BadInputError(f"unknown dataset {self.dataset!r}: one of {', '.join(DATASETS)}", field="dataset")
        for name, lo, hi in (("rows", 8, 100000), ("hidden", 1, 256), ("batch", 1, 256), ("steps", 1, 1 << 20),
                             ("lr_shift", 0, 30), ("seed", 0, 2**32 - 1)):
            v = getattr(self, name)
            if type(v) is not int or not lo <= v <= hi:
                raise BadInputError(f"{name} must be an integer in [{lo}, {hi}], got {v!r}", field=name)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        known = set(cls.__dataclass_fields__)
        extra = set(d) - known
        if extra:
            raise BadInputError(f"unknown job spec fields: {', '.join(sorted(extra))}", field="spec")
        return cls(**d)


_DATA: dict[tuple[str, int], tuple[Any, Any]] = {}


def dataset(spec: JobSpec) -> tuple[np.ndarray, np.ndarray]:
    """The committed dataset in Q16: features scaled to [0, 1] per column, one-hot labels."""
    key = (spec.dataset, spec.rows)
    if key not in _DATA:
        import numpy as np
        from sklearn import datasets as skd

        loader = {"digits": skd.load_digits, "iris": skd.load_iris, "wine": skd.load_wine,
                  "breast_cancer": skd.load_breast_cancer}[spec.dataset]
        bunch = loader()
        x = np.asarray(bunch.data, dtype=np.float64)[: spec.rows]
        y = np.asarray(bunch.target, dtype=np.int64)[: spec.rows]
        span = x.max(axis=0) - x.min(axis=0)
        span[span == 0] = 1.0
        xq = np.floor((x - x.min(axis=0)) / span * ONE).astype(np.int64)  # quantised once, then integers only
        n_out = int(bunch.target.max()) + 1
        yq = np.zeros((len(y), n_out), dtype=np.int64)
        yq[np.arange(len(y)), y] = ONE
        _DATA[key] = (xq, yq)
    return _DATA[key]


def dataset_root(spec: JobSpec) -> bytes:
    """RFC 6962 root over the quantised rows (leaf: the row's int64 little-endian features then label)."""
    x, y = dataset(spec)
    return root_from_leaf_hashes([leaf_hash(x[i].astype("<i8").tobytes() + y[i].astype("<i8").tobytes())
                                  for i in range(len(x))])


def init_state(spec: JobSpec) -> State:
    import numpy as np

    x, y = dataset(spec)
    rng = np.random.default_rng(spec.seed)
    n_in, n_out, h = x.shape[1], y.shape[1], spec.hidden
    return {"w1": rng.integers(-ONE // 4, ONE // 4, size=(n_in, h), dtype=np.int64),
            "b1": np.zeros(h, dtype=np.int64),
            "w2": rng.integers(-ONE // 4, ONE // 4, size=(h, n_out), dtype=np.int64),
            "b2": np.zeros(n_out, dtype=np.int64)}


def state_root(state: State) -> bytes:
    leaves = []
    for name in TENSORS:
        a = state[name]
        data = a.astype("<i8", copy=False).tobytes()
        leaves.append(leaf_hash(canonical_json({"dtype": "int64le", "name": name, "shape": list(a.shape),
                                                "sha256": hashlib.sha256(data).hexdigest()})))
    return root_from_leaf_hashes(leaves)


def step(spec: JobSpec, state: State, i: int) -> State:
    """Step ``i`` (0-based): the state after it.  Pure integer arithmetic; ``state`` is not changed."""
    import numpy as np

    x, y = dataset(spec)
    idx = (np.arange(spec.batch, dtype=np.int64) + i * spec.batch) % len(x)
    xb, yb = x[idx], y[idx]
    w1, b1, w2, b2 = state["w1"], state["b1"], state["w2"], state["b2"]
    z1 = np.clip(((xb @ w1) >> FRAC) + b1, -CLIP, CLIP)
    h = np.maximum(z1, 0)
    out = np.clip(((h @ w2) >> FRAC) + b2, -CLIP, CLIP)
    err = out - yb
    dw2 = (h.T @ err) >> FRAC
    db2 = err.sum(axis=0)
    dh = (err @ w2.T) >> FRAC
    dh[z1 <= 0] = 0
    dw1 = (xb.T @ dh) >> FRAC
    db1 = dh.sum(axis=0)
    sh = spec.lr_shift
    return {"w1": np.clip(w1 - (dw1 >> sh), -CLIP, CLIP), "b1": np.clip(b1 - (db1 >> sh), -CLIP, CLIP),
            "w2": np.clip(w2 - (dw2 >> sh), -CLIP, CLIP), "b2": np.clip(b2 - (db2 >> sh), -CLIP, CLIP)}


def loss(spec: JobSpec, state: State) -> float:
    """Mean squared error over the whole dataset (a float, for people; never part of a root)."""
    import numpy as np

    x, y = dataset(spec)
    h = np.maximum(np.clip(((x @ state["w1"]) >> FRAC) + state["b1"], -CLIP, CLIP), 0)
    out = np.clip(((h @ state["w2"]) >> FRAC) + state["b2"], -CLIP, CLIP)
    return float(np.mean(((out - y) / ONE) ** 2))


def run(spec: JobSpec, *, keep: Callable[[int, State], None] | None = None,
        corrupt: int | None = None, progress: Callable[[int], None] | None = None) -> list[bytes]:
    """Run the job; the step roots ``r_0 .. r_S``.  ``keep(i, state)`` sees every state (i = 0..S);
    ``corrupt=j`` makes step j wrong (one weight nudged) and continues honestly from there: a cheat that
    only a check of step j catches (tests and benchmarks)."""
    st = init_state(spec)
    roots = [state_root(st)]
    if keep:
        keep(0, st)
    for i in range(spec.steps):
        st = step(spec, st, i)
        if corrupt == i:
            st = {**st, "w2": st["w2"].copy()}
            st["w2"][0, 0] += 1
        roots.append(state_root(st))
        if keep:
            keep(i + 1, st)
        if progress:
            progress(1)
    return roots


def trace_root(roots: list[bytes]) -> bytes:
    return root_from_leaf_hashes([leaf_hash(r) for r in roots])


def trace_proof(roots: list[bytes], index: int) -> list[bytes]:
    """The RFC 6962 inclusion proof of ``roots[index]`` in :func:`trace_root` (what ``reveal`` and ``submit``
    send the contract)."""
    hashes = [leaf_hash(r) for r in roots]
    return rehash_plan(inclusion_plan(index, len(hashes)),
                       lambda nid: root_from_leaf_hashes(hashes[nid[1] << nid[0]:(nid[1] + 1) << nid[0]]))
