"""The integer epoch fold against a plain-Python reference written from the formulas in docs/incentives.md
(exact integers, loops, no numpy), plus the properties the consensus is for."""

from __future__ import annotations

import numpy as np
import pytest

from ailedger.errors import BadInputError
from ailedger.subnets.yuma import BPS, ONE, U16, Params, fold_epoch


def reference(stake, weights, bonds_prev, p: Params, clip=True):
    v, m = len(weights), len(weights[0])
    rs = [sum(r) for r in weights]
    stake = [s if rs[i] else 0 for i, s in enumerate(stake)]
    tot = sum(stake)
    S = [s * ONE // tot if tot else 0 for s in stake]
    W = [[w * ONE // rs[i] if rs[i] else 0 for w in weights[i]] for i in range(v)]
    C = []
    for j in range(m):
        if not clip:
            C.append(ONE)
            continue
        best = 0
        for cand in sorted({W[i][j] for i in range(v)}):
            support = sum(S[i] for i in range(v) if W[i][j] >= cand)
            if tot and support * BPS >= p.kappa_bps * sum(S):
                best = cand
        C.append(best if sum(S) else 0)
    Wc = [[min(W[i][j], C[j]) for j in range(m)] for i in range(v)]
    R = [sum(S[i] * Wc[i][j] for i in range(v)) >> 24 for j in range(m)]
    if clip and p.burn_clipped:
        inc = R
    else:
        inc = [r * ONE // sum(R) if sum(R) else 0 for r in R]

    def coln(x):
        out = [[0] * m for _ in range(v)]
        for j in range(m):
            s = sum(x[i][j] for i in range(v))
            for i in range(v):
                out[i][j] = x[i][j] * ONE // s if s else 0
        return out
    dB = coln([[(S[i] * Wc[i][j]) >> 24 for j in range(m)] for i in range(v)])
    a = p.bond_alpha_bps
    B = coln([[(a * dB[i][j] + (BPS - a) * bonds_prev[i][j]) // BPS for j in range(m)] for i in range(v)])
    D = [sum(B[i][j] * inc[j] for j in range(m)) >> 24 for i in range(v)]
    div = [d * ONE // sum(D) if sum(D) else 0 for d in D]
    e = p.emission
    return inc, div, B, [e * p.miner_bps // BPS * x // ONE for x in inc], [e * p.validator_bps // BPS * x // ONE
                                                                            for x in div]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("clip", [True, False])
def test_fold_equals_the_reference(seed, clip):
    rng = np.random.default_rng(seed)
    v, m = int(rng.integers(1, 7)), int(rng.integers(1, 9))
    w = rng.integers(0, U16 + 1, size=(v, m)) * (rng.random((v, m)) < 0.7)
    stake = [int(x) for x in rng.integers(0, 10**12, size=v)]
    prev = rng.integers(0, ONE, size=(v, m))
    p = Params(kappa_bps=int(rng.integers(1, BPS + 1)), bond_alpha_bps=int(rng.integers(1, BPS + 1)),
               burn_clipped=int(rng.integers(0, 2)))
    res = fold_epoch(stake, w, prev, p, clip=clip)
    inc, div, B, mp, vp = reference(stake, w.tolist(), prev.tolist(), p, clip)
    assert res.incentive == inc and res.dividends == div and res.bonds.tolist() == B
    assert res.miner_pay == mp and res.validator_pay == vp
    assert sum(mp) + sum(vp) + res.owner_pay + res.unissued == p.emission and res.unissued >= 0


def test_no_overflow_at_the_extremes():
    v, m = 256, 64
    w = np.full((v, m), U16)
    w[:, 0] = 1
    stake = [10**30] * v
    res = fold_epoch(stake, w, np.full((v, m), ONE), Params(emission=1 << 36))
    inc, div, _b, mp, _vp = reference(stake, w.tolist(), np.full((v, m), ONE).tolist(), Params(emission=1 << 36))
    assert res.incentive == inc and res.dividends == div and res.miner_pay == mp


def test_a_minority_over_weight_is_clipped_to_the_consensus():
    # 3 validators, 60% agree miner 0 and 1 are equal; 40% gives everything to miner 0
    w = np.array([[U16, U16], [U16, U16], [U16, 0]])
    res = fold_epoch([30, 30, 40], w, None, Params())
    assert res.consensus == [ONE // 2, ONE // 2]
    # miner 0 gets the 1/2 the majority gives it, not more; what the 40% withheld from miner 1 is not emitted
    assert abs(res.incentive[0] - ONE // 2) <= 2
    assert abs(res.incentive[1] - ONE * 3 // 10) <= 2
    mean = fold_epoch([30, 30, 40], w, None, Params(), clip=False)
    assert abs(mean.incentive[0] - ONE * 7 // 10) <= 2  # the plain mean is tilted: 0.6 * 1/2 + 0.4 * 1


def test_a_majority_decides():
    w = np.array([[U16, U16], [U16, 0]])
    res = fold_epoch([40, 60], w, None, Params())
    assert res.consensus[1] == 0 and res.incentive[1] == 0


def test_bonds_are_an_ema_and_dividends_follow_them():
    w = np.array([[U16, 0], [0, U16]])
    p = Params(bond_alpha_bps=1000)
    r1 = fold_epoch([50, 50], w, None, p, clip=False)
    assert r1.bonds.tolist() == [[ONE, 0], [0, ONE]]
    # validator 0 switches to miner 1: its bond there grows by alpha only
    r2 = fold_epoch([50, 50], np.array([[0, U16], [0, U16]]), r1.bonds, p, clip=False)
    assert r2.bonds[0, 1] == (1000 * (ONE // 2)) // BPS * ONE // ((1000 * (ONE // 2)) // BPS + (1000 * (ONE // 2) + 9000 * ONE) // BPS)
    assert r2.dividends[1] > r2.dividends[0]


def test_validators_without_weights_have_no_say():
    w = np.array([[U16, 0], [0, 0]])
    res = fold_epoch([1, 1000], w, None, Params())
    assert res.stake == [ONE, 0] and res.incentive[0] > 0


@pytest.mark.parametrize("bad", [np.array([[-1, 3]]), np.array([[U16 + 1, 3]])])
def test_bad_weights_are_refused(bad):
    with pytest.raises(BadInputError, match="0..65535"):
        fold_epoch([1], bad, None, Params())


def test_bad_params_are_refused():
    with pytest.raises(BadInputError, match="unknown subnet parameter"):
        Params.from_dict({"emision": 3})
    with pytest.raises(BadInputError, match="must be an integer"):
        Params.from_dict({"emission": 1.5})
    with pytest.raises(BadInputError, match="kappa_bps"):
        Params.from_dict({"kappa_bps": 0})
