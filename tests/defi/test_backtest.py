"""Backtests: the fold check catches leaks, DSR falls with the trials the ledger counts, PBO separates skill from
noise, and scoring needs a clean plan committed earlier by the same key."""

from __future__ import annotations

import numpy as np
import pytest

from ailedger.defi.backtest import (
    PLAN,
    RESULT,
    check_folds,
    cscv_pbo,
    data_digest,
    deflated_sharpe,
    make_folds,
    make_plan,
    plan_digest,
    run_backtest,
    score,
    simulate_amm,
    trials_on_ledger,
)
from ailedger.errors import BadInputError, ConflictError, VerificationError

FAST = {"bars": 600, "k": 4, "grid": "small"}


def test_clean_folds_pass_and_leaky_ones_are_named():
    clean = make_folds(1000, 5, horizon=4, embargo=8)
    assert check_folds(clean, 4, 8) == []
    for f in clean:  # walk-forward: training strictly before the test block, a gap of horizon + embargo
        assert f["train"][-1][1] <= f["test"][0] - 12
    leaky = make_folds(1000, 5, horizon=4, embargo=8, leak=True)
    problems = check_folds(leaky, 4, 8)
    assert any("before the test block" in p for p in problems)
    assert any("after the test block" in p for p in problems)
    inside = [{"train": [[0, 500]], "test": [400, 600]}]
    assert check_folds(inside, 4, 8)[0].startswith("fold 0: 100 training samples inside the test block")
    # the gap is exactly horizon + embargo; one bar less is caught
    assert check_folds([{"train": [[0, 388]], "test": [400, 500]}], 4, 8) == []
    assert check_folds([{"train": [[0, 389]], "test": [400, 500]}], 4, 8)


def test_bad_fold_parameters_are_refused():
    with pytest.raises(BadInputError, match="too few samples"):
        make_folds(30, 10, horizon=4, embargo=0)
    with pytest.raises(BadInputError):
        simulate_amm(10)


def test_pbo_separates_skill_from_noise():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, size=(1200, 12))
    pbo_noise = cscv_pbo(noise, s=10)["pbo"]
    skill = noise.copy()
    skill[:, 3] += 0.25  # one configuration has a real edge in every block
    pbo_skill = cscv_pbo(skill, s=10)["pbo"]
    assert pbo_skill < 0.05
    assert 0.2 < pbo_noise < 0.8


def test_deflated_sharpe_falls_as_trials_grow():
    rng = np.random.default_rng(2)
    r = rng.normal(0.05, 1, 2000)
    trials = rng.normal(0, 0.03, 50)
    dsr = [deflated_sharpe(r, trials, n)["dsr"] for n in (1, 10, 100, 10_000)]
    assert dsr == sorted(dsr, reverse=True) and dsr[0] > dsr[-1]
    assert deflated_sharpe(r, trials, 1)["sr0"] == 0.0


def test_plan_is_committed_before_the_result_and_trials_are_counted(led):
    lg, alice = led
    a = run_backtest(lg, alice, study="s1", **FAST)
    assert a["plan_index"] < a["result_index"]
    assert lg.entry(a["plan_index"]).type == PLAN and lg.entry(a["result_index"]).type == RESULT
    body = lg.entry(a["result_index"]).body
    assert body["plan"] == a["plan_index"] and body["trials_on_ledger"] == 2
    assert all(isinstance(v, (str, int)) for v in body["metrics"].values())  # no floats in signed records
    b = run_backtest(lg, alice, study="s1", seed=1, **FAST)
    assert b["n_trials_ledger"] == 4 and trials_on_ledger(lg, "s1", alice.did)[0] == 4
    assert trials_on_ledger(lg, "other", alice.did)[0] == 0


def test_leaking_plan_is_committed_counted_and_refused(led):
    lg, alice = led
    size = lg.size
    with pytest.raises(VerificationError, match="the committed folds leak"):
        run_backtest(lg, alice, study="s2", leak=True, **FAST)
    assert lg.size == size + 1 and lg.entry(size).type == PLAN  # the plan counts as tried; no result
    ok = run_backtest(lg, alice, study="s2", **FAST)
    assert ok["n_trials_ledger"] == 4


def test_scoring_refuses_foreign_plans_other_data_and_a_second_score(led):
    lg, alice = led
    bob = lg.identities.create("bob")
    data = simulate_amm(600, 0)
    plan = make_plan(study="s3", data_digest=data_digest(data), bars=600, seed=0, horizon=4, embargo=8, k=4,
                     cost_bps=5, grid="small")
    idx = lg.append_record(PLAN, {"plan": plan, "plan_sha256": plan_digest(plan)}, alice).index
    with pytest.raises(VerificationError, match="another key"):
        score(lg, bob, idx, data)
    with pytest.raises(VerificationError, match="not the data the plan committed to"):
        score(lg, alice, idx, simulate_amm(600, 1))
    score(lg, alice, idx, data)
    with pytest.raises(ConflictError, match="already scored"):
        score(lg, alice, idx, data)
    with pytest.raises(Exception, match="not an agent.backtest.plan"):
        score(lg, alice, 0, data)
