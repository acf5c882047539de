"""The epoch fold: Yuma-style consensus in fixed-point integer arithmetic, so a replay agrees bit for bit.

Every quantity is an integer.  Shares (stake, weights, consensus, incentive, bonds, dividends) are fixed
point with ``ONE = 2**24`` as 1.0; weights arrive as u16 integers (0..65535, the form Bittensor's
validators emit); parameters are basis points (``BPS = 10000``).  Every division is a floor division, in
the order written in docs/incentives.md; numpy int64 arrays hold the numbers and no intermediate value
exceeds 2**62 (products of two shares are <= 2**48, sums over at most 2**14 rows), so the result is the
same on every machine.

The steps, after Bittensor's Yuma Consensus (subtensor ``epoch``; docs.bittensor.com "Yuma Consensus"):

1. stake shares ``S_i`` and row-normalised weights ``W_ij`` of the validators that revealed;
2. consensus ``C_j``: the largest weight that validators holding at least ``kappa`` of the stake give
   miner j or more (a stake-weighted quantile; kappa = 1/2 is the stake-weighted median);
3. clipped weights ``Wc_ij = min(W_ij, C_j)``;
4. ranks ``R_j = sum_i S_i Wc_ij`` and incentive ``I_j = R_j`` (``burn_clipped = 1``, the default: the weight
   clipping removed is not emitted) or ``I_j = R_j / sum R`` (``burn_clipped = 0``, as Bittensor);
5. bond increments ``dB_ij = S_i Wc_ij`` normalised per miner, bonds as an exponential moving average
   ``B = alpha dB + (1 - alpha) B_prev`` normalised per miner;
6. dividends ``D_i = sum_j B_ij I_j`` normalised, a copier's cut to ``copy_keep_bps``;
7. the epoch's emission split between miners (by ``I``), validators (by ``D``) and the subnet owner.

``clip=False`` gives the reference the figures compare against: a plain stake-weighted mean (steps 2-3
skipped, ``Wc = W``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ailedger.errors import BadInputError

__all__ = ["BPS", "ONE", "U16", "EpochResult", "Params", "copies", "fold_epoch", "row_normalise"]

ONE = 1 << 24
BPS = 10_000
U16 = 65_535
MAX_EMISSION = 1 << 36  # emission * ONE stays below 2**62


@dataclass(frozen=True)
class Params:
    """A subnet's economic parameters (all integers)."""

    emission: int = 1_000_000_000   # units emitted per epoch
    miner_bps: int = 4100           # miners' share of the emission (Bittensor: 41%)
    validator_bps: int = 4100       # validators' share (41%)
    owner_bps: int = 1800           # the subnet owner's share (18%)
    kappa_bps: int = 5000           # consensus quantile: 1/2 is the stake-weighted median
    bond_alpha_bps: int = 1000      # EMA weight of the new bonds (Bittensor: bonds_moving_average 0.9 -> 0.1)
    burn_clipped: int = 1           # 1: clipped weight is not emitted (I = R); 0: Bittensor's I = R / sum R
    copy_tol_bps: int = 100         # a reveal within this L1 distance of a previous-epoch vector is a copy
    copy_keep_bps: int = 0          # the share of its dividends a copy keeps (the rest is not issued)
    miner_min_stake: int = 0        # reputation a miner must have locked on the subnet to register

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Params:
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(d) - known)
        if extra:
            raise BadInputError(f"unknown subnet parameter(s): {', '.join(extra)} (known: {', '.join(sorted(known))})",
                                field="params")
        vals: dict[str, int] = {}
        for k, v in d.items():
            if isinstance(v, bool) or not isinstance(v, int):
                raise BadInputError(f"subnet parameter {k} must be an integer, got {v!r}", field=k)
            vals[k] = v
        p = cls(**vals)
        p.check()
        return p

    def check(self) -> None:
        if not 0 <= self.emission <= MAX_EMISSION:
            raise BadInputError(f"emission must be 0..{MAX_EMISSION}, got {self.emission}", field="emission")
        for k in ("miner_bps", "validator_bps", "owner_bps"):
            if getattr(self, k) < 0:
                raise BadInputError(f"{k} must not be negative", field=k)
        if self.miner_bps + self.validator_bps + self.owner_bps != BPS:
            raise BadInputError(f"miner_bps + validator_bps + owner_bps must be {BPS}, got "
                                f"{self.miner_bps + self.validator_bps + self.owner_bps}", field="params")
        if not 1 <= self.kappa_bps <= BPS:
            raise BadInputError(f"kappa_bps must be 1..{BPS}, got {self.kappa_bps}", field="kappa_bps")
        if self.burn_clipped not in (0, 1):
            raise BadInputError("burn_clipped must be 0 or 1", field="burn_clipped")
        for k in ("copy_tol_bps", "copy_keep_bps"):
            if not 0 <= getattr(self, k) <= BPS:
                raise BadInputError(f"{k} must be 0..{BPS}, got {getattr(self, k)}", field=k)
        if self.miner_min_stake < 0:
            raise BadInputError("miner_min_stake must not be negative", field="miner_min_stake")
        if not 1 <= self.bond_alpha_bps <= BPS:
            raise BadInputError(f"bond_alpha_bps must be 1..{BPS}, got {self.bond_alpha_bps}", field="bond_alpha_bps")

    def to_dict(self) -> dict[str, int]:
        return {k: int(getattr(self, k)) for k in sorted(self.__dataclass_fields__)}


@dataclass(frozen=True)
class EpochResult:
    stake: list[int]          # S_i (ONE-scale) of each validator row; 0 for one that did not reveal
    consensus: list[int]      # C_j
    incentive: list[int]      # I_j
    dividends: list[int]      # D_i
    bonds: np.ndarray         # B_ij after this epoch (ONE-scale, int64, V x M)
    miner_pay: list[int]
    validator_pay: list[int]
    owner_pay: int
    unissued: int             # emission nobody earned (no weights) plus floor-division dust

    def bonds_sha256(self) -> str:
        return bonds_digest(self.bonds)

    def body(self) -> dict[str, Any]:
        """What an epoch entry records (and the fold recomputes)."""
        return {"consensus": self.consensus, "incentive": self.incentive, "dividends": self.dividends,
                "stake": self.stake, "bonds_sha256": self.bonds_sha256(),
                "pay": {"miners": self.miner_pay, "validators": self.validator_pay, "owner": self.owner_pay,
                        "unissued": self.unissued}}


def bonds_digest(bonds: np.ndarray) -> str:
    v, m = bonds.shape
    return hashlib.sha256(f"{v}x{m}:".encode() + np.ascontiguousarray(bonds, dtype=">i8").tobytes()).hexdigest()


def _col_normalise(x: np.ndarray) -> np.ndarray:
    s = x.sum(axis=0)
    safe = np.where(s > 0, s, 1)
    return np.where(s > 0, (x * ONE) // safe, 0)


def row_normalise(w_raw: np.ndarray) -> np.ndarray:
    """``W_ij = w_ij * ONE // sum_j w_ij`` (a zero row stays zero)."""
    w_raw = np.asarray(w_raw, dtype=np.int64)
    row_sum = w_raw.sum(axis=1)
    return np.where(row_sum[:, None] > 0, (w_raw * ONE) // np.where(row_sum > 0, row_sum, 1)[:, None], 0)


def copies(weights: np.ndarray, previous: list[tuple[int, np.ndarray]], tol_bps: int) -> list[int]:
    """The rows of ``weights`` (V x M u16, row i = validator i) that copy a vector of the previous epoch.

    ``previous``: (owner row, u16 vector) pairs, the owner -1 for a public vector (the previous epoch's
    consensus).  Row i is a copy when some vector not its own lies within ``tol_bps`` in L1 distance of the
    normalised weights: ``sum_j |W_ij - P_j| * BPS <= tol_bps * ONE`` (``tol_bps = 0``: identical only).
    Zero rows (no reveal) are never copies."""
    w = row_normalise(weights)
    m = w.shape[1]
    refs = []
    for owner, vec in previous:
        v = np.zeros(m, dtype=np.int64)
        k = min(m, len(vec))
        v[:k] = np.asarray(vec, dtype=np.int64)[:k]
        refs.append((owner, row_normalise(v[None, :])[0]))
    out = []
    for i in range(w.shape[0]):
        if not w[i].any():
            continue
        for owner, ref in refs:
            if owner != i and ref.any() and int(np.abs(w[i] - ref).sum()) * BPS <= tol_bps * ONE:
                out.append(i)
                break
    return out


def consensus(weights: np.ndarray, stake: np.ndarray, kappa_bps: int) -> np.ndarray:
    """C_j = max{w : sum of S_i over validators with W_ij >= w is >= kappa * sum S} (0 when no stake)."""
    v, m = weights.shape
    total = int(stake.sum())
    if v == 0 or m == 0 or total == 0:
        return np.zeros(m, dtype=np.int64)
    order = np.argsort(-weights, axis=0, kind="stable")
    w_sorted = np.take_along_axis(weights, order, axis=0)
    support = np.cumsum(stake[order], axis=0)
    enough = support * BPS >= kappa_bps * total
    first = np.argmax(enough, axis=0)
    return np.asarray(w_sorted[first, np.arange(m)], dtype=np.int64)


def fold_epoch(stake: list[int] | np.ndarray, weights: np.ndarray, bonds_prev: np.ndarray | None,
               params: Params, *, clip: bool = True, copied: list[int] | None = None) -> EpochResult:
    """One epoch.  ``stake``: raw stake of each validator row (0 = did not reveal / no stake);
    ``weights``: V x M u16 integers; ``bonds_prev``: V x M ONE-scale bonds of the previous epoch (None: zeros;
    a smaller matrix is padded with zeros for validators and miners registered since); ``copied``: rows found
    to copy (:func:`copies`), whose dividends are cut to ``copy_keep_bps`` (the rest is not issued)."""
    w_raw = np.asarray(weights, dtype=np.int64)
    if w_raw.ndim != 2:
        raise BadInputError("weights must be a V x M matrix", field="weights")
    v, m = w_raw.shape
    if (w_raw < 0).any() or (w_raw > U16).any():
        raise BadInputError("weights must be integers 0..65535", field="weights")
    st_raw = [int(x) for x in stake]
    if len(st_raw) != v or any(x < 0 for x in st_raw):
        raise BadInputError("stake must be one non-negative integer per validator row", field="stake")
    row_sum = w_raw.sum(axis=1)
    st_raw = [x if row_sum[i] > 0 else 0 for i, x in enumerate(st_raw)]  # no weights: no say
    total = sum(st_raw)
    s = np.array([x * ONE // total if total else 0 for x in st_raw], dtype=np.int64)
    w = row_normalise(w_raw)

    c = consensus(w, s, params.kappa_bps) if clip else np.full(m, ONE, dtype=np.int64)
    wc = np.minimum(w, c[None, :])
    r = (s[:, None] * wc).sum(axis=0) >> 24
    r_total = int(r.sum())
    if clip and params.burn_clipped:
        inc = r  # sum R <= ONE: what clipping removed is not emitted, so no one gains by over-scoring
    else:
        inc = (r * ONE) // r_total if r_total else np.zeros(m, dtype=np.int64)

    db = _col_normalise((s[:, None] * wc) >> 24)
    prev = np.zeros((v, m), dtype=np.int64)
    if bonds_prev is not None and bonds_prev.size:
        pv, pm = bonds_prev.shape
        prev[:min(pv, v), :min(pm, m)] = bonds_prev[:min(pv, v), :min(pm, m)]
    a = params.bond_alpha_bps
    bonds = _col_normalise((a * db + (BPS - a) * prev) // BPS)

    d = (bonds * inc[None, :]).sum(axis=1) >> 24
    d_total = int(d.sum())
    div = (d * ONE) // d_total if d_total else np.zeros(v, dtype=np.int64)
    for i in copied or []:
        div[i] = div[i] * params.copy_keep_bps // BPS

    e = params.emission
    owner = e * params.owner_bps // BPS
    m_pool = e * params.miner_bps // BPS
    v_pool = e * params.validator_bps // BPS
    miner_pay = [m_pool * int(x) // ONE for x in inc]
    val_pay = [v_pool * int(x) // ONE for x in div]
    paid = owner + sum(miner_pay) + sum(val_pay)
    return EpochResult(stake=[int(x) for x in s], consensus=[int(x) for x in c] if clip else [],
                       incentive=[int(x) for x in inc], dividends=[int(x) for x in div], bonds=bonds,
                       miner_pay=miner_pay, validator_pay=val_pay, owner_pay=owner, unissued=e - paid)
