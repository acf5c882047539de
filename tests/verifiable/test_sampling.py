"""Sampling: a later checkpoint selects the calls to prove; a selected call without a proof is a finding."""

from __future__ import annotations

import json
import os

import pytest

from ailedger.errors import VerificationError
from ailedger.verifiable.sampling import detection_probability, selected


def test_selection_rate_and_seed():
    rids = [f"s-{i}" for i in range(4000)]
    a, b = os.urandom(32), os.urandom(32)
    sa = {r for r in rids if selected(a, r, 0.1)}
    sb = {r for r in rids if selected(b, r, 0.1)}
    assert 280 < len(sa) < 520 and 280 < len(sb) < 520  # ~400, far outside chance at the edges
    assert sa != sb  # another checkpoint root, another sample
    assert all(selected(a, r, 1.0) for r in rids[:50]) and not any(selected(a, r, 0.0) for r in rids[:50])
    with pytest.raises(Exception, match="rate"):
        selected(a, "x", 1.5)


def test_detection_probability():
    assert detection_probability(0.01, 0) == 0
    assert abs(detection_probability(0.01, 300) - (1 - 0.99 ** 300)) < 1e-12
    assert detection_probability(0.05, 100) > 0.99


def test_sample_prove_later_and_swap_detected(zk_env, proven, run):
    from ailedger.inference.sdk import InferenceTrail
    from ailedger.tlog.ledger import Ledger
    from ailedger.verifiable.zk import prove_call, prove_receipt

    with Ledger.open(zk_env["ledger"]) as led:
        d1 = prove_call(led, "iris", zk_env["x"][1].tolist(), defer=True)
        # a call served by another model: its logged commitments are not what the bound circuit gives
        with InferenceTrail(led, "iris", mode="durable") as t:
            fake = dict(d1)
            rid_swapped = str(t.record(zk_env["x"][2].tolist(), [9.0, 0.0, 0.0],
                                       meta={"zk": {"setup": zk_env["setup"]["index"], "in": ["00"], "out": ["00"]}}))
        assert "proof" not in fake
    r = run("inference", "zk-sample", "--model", "iris", "--rate", "1", "--ledger", zk_env["ledger"], "--json")
    assert r.exit_code == 1
    res = json.loads(r.output.strip().splitlines()[0])
    missing = {f.split()[1] for f in res["findings"]}
    assert {d1["receipt"], rid_swapped} <= missing and proven["receipt"] not in missing
    with Ledger.open(zk_env["ledger"]) as led, pytest.raises(VerificationError, match="was not served by it"):
        prove_receipt(led, rid_swapped, led.identities.load("inference", None))
    r = run("inference", "prove", "--receipt", d1["receipt"], "-o", zk_env["root"] / "later.json",
            "--ledger", zk_env["ledger"])
    assert r.exit_code == 0, r.output
    r = run("inference", "verify-zk", zk_env["root"] / "later.json", "--ledger", zk_env["ledger"])
    assert r.exit_code == 0, r.output
    r = run("inference", "zk-sample", "--model", "iris", "--rate", "1", "--ledger", zk_env["ledger"], "--json")
    res = json.loads(r.output.strip().splitlines()[0])
    assert d1["receipt"] not in {f.split()[1] for f in res["findings"]}
    assert rid_swapped in {f.split()[1] for f in res["findings"]}
    # an auditor's demand: checked whatever the sample says (rate 0 selects nothing)
    r = run("inference", "zk-sample", "--model", "iris", "--rate", "0", "--demand", rid_swapped, "--demand",
            d1["receipt"], "--ledger", zk_env["ledger"], "--json")
    assert r.exit_code == 1
    res = json.loads(r.output.strip().splitlines()[0])
    assert res["findings"] == [f"call {rid_swapped} was demanded and has no logged proof"]
    r = run("inference", "zk-sample", "--model", "iris", "--rate", "0", "--demand", "nope-1", "--ledger",
            zk_env["ledger"])
    assert r.exit_code == 2 and "no call of model iris with receipt nope-1" in r.output
