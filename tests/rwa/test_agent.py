"""The agent: a reproducible, registered policy deciding from a logged, seeded price series; each trade an
agent.action logged before its transaction; the audit matches every vault transaction to a decision and
reports one without; a revoked or foreign model, a tampered series and a refused trade log nothing."""

from __future__ import annotations

import pytest

from ailedger.defi.actions import ACTION, audit, calldata, commit_inputs, validate_intent
from ailedger.errors import BadInputError, VerificationError
from ailedger.rwa import SERIES
from ailedger.rwa.agent import (
    POLICY,
    decide,
    export_policy,
    find_series,
    log_series,
    policy_root,
    price_series,
    rebalance_step,
    target_weight,
    tracking_error,
)
from ailedger.rwa.chain import E18, SWAP, TokenRefused, send


def run(lg, op, v, steps=6, seed=3):
    s = log_series(lg, op, seed=seed, steps=steps, vault=v.vault.address, chain_id=v.w3.eth.chain_id)
    _, prices = find_series(lg, s["index"])
    rows = []
    for t in range(steps):
        rows.append(rebalance_step(lg, op, v, model="vol-target", series_index=s["index"], prices=prices, t=t))
        v.w3.provider.ethereum_tester.time_travel(v.w3.eth.get_block("latest")["timestamp"] + 86400)
    return s, rows


def test_policy_and_series_are_reproducible(tmp_path):
    export_policy(tmp_path / "a")
    assert (tmp_path / "a" / "policy.json").read_bytes() == export_policy(tmp_path / "b").read_bytes()
    assert len(policy_root()) == 64
    assert price_series(7, 50) == price_series(7, 50) != price_series(8, 50)
    p = price_series(7, 300)
    assert all(x > 0 and x % 10**12 == 0 for x in p)
    # calm prices: the weight goes up to the cap; a stressed path lowers it
    calm = [E18 + (i % 2) * 10**15 for i in range(40)]
    wild = [E18 * (100 + (10 if i % 2 else -10)) // 100 for i in range(40)]
    assert target_weight(calm) == POLICY["max_bps"] and target_weight(wild) == POLICY["min_bps"]
    assert target_weight(calm[:3]) == POLICY["base_bps"]  # warm-up


def test_decide_stays_inside_the_caps_it_reads():
    prices = [E18] * 3
    d = decide(prices, stable=100 * E18, rwa=0, nav=E18, cap_stable=10 * E18, cap_rwa=0)
    assert d["trade"] == {"token": "stable", "amount": 10 * E18}
    d = decide(prices, stable=0, rwa=100 * E18, nav=E18, cap_stable=0, cap_rwa=7 * E18)
    assert d["trade"] == {"token": "rwa", "amount": 7 * E18}
    d = decide(prices, stable=40 * E18, rwa=60 * E18, nav=E18, cap_stable=E18, cap_rwa=E18)
    assert d["trade"] is None  # inside the band
    assert decide(prices, stable=100 * E18, rwa=0, nav=E18, cap_stable=0, cap_rwa=0)["trade"] is None


def test_each_trade_is_logged_before_its_transaction_and_the_audit_matches(vault, led):
    lg, op = led
    v = vault
    s, rows = run(lg, op, v)
    assert lg.entry(s["index"]).type == SERIES and rows[0]["action"] is not None
    acts = [r["action"] for r in rows if r["action"]]
    for a in acts:
        e = lg.entry(a["index"])
        assert e.type == ACTION and e.body["tx"] == a["tx"] and a["status"] == 1
        assert e.body["intent"]["target"] == v.vault.address.lower() and e.body["intent"]["kind"] == "swap"
        assert e.body["model"] == "vol-target"
    # the inputs commitment opens with the salt and what the agent saw
    r0 = rows[0]
    inputs = {"policy_root": policy_root(), "series": s["index"], "t": 0, "nav": r0["nav"],
              "balances": {"stable": str(100_000 * E18), "rwa": "0"},
              "cap_left": {"stable": str(20_000 * E18), "rwa": str(20_000 * E18)}}
    assert commit_inputs(inputs, bytes.fromhex(r0["action"]["salt"]))[0] == \
        lg.entry(r0["action"]["index"]).body["inputs"]["commitment"]
    rep = audit(lg, v.w3, v.agent.address, from_block=v.deployed_block)
    assert rep["ok"] and rep["counts"]["matched"] == len(acts) >= 2
    te = tracking_error(rows)
    assert te["steps"] == 6 and te["max_bps"] >= te["rms_bps"] > 0


def test_a_vault_transaction_without_a_logged_decision_is_reported(vault, led):
    lg, op = led
    v = vault
    run(lg, op, v, steps=2)
    it = validate_intent({"kind": "swap", "target": v.vault.address, "token_in": v.stable.address,
                          "amount": str(E18), "min_out": "0", "to": v.guard.address})
    it["min_out"] = str(v.vault.functions.getAmountOut(v.stable.address, E18).call() * 99 // 100)
    rcpt = send(v.w3, v.guard.functions.execute(v.vault.address, calldata(it)), v.agent)  # a stolen key
    rep = audit(lg, v.w3, v.agent.address, from_block=v.deployed_block)
    assert not rep["ok"] and rep["counts"]["unlogged"] == 1
    assert [r["tx"] for r in rep["transactions"] if r["status"] == "unlogged"] == \
        ["0x" + bytes(rcpt["transactionHash"]).hex()]


def test_a_revoked_or_foreign_model_cannot_rebalance(vault, led):
    lg, op = led
    v = vault
    s = log_series(lg, op, seed=1, steps=4, vault=v.vault.address, chain_id=v.w3.eth.chain_id)
    _, prices = find_series(lg, s["index"])
    lg.append_record("model.register", {"name": "other", "manifest": {"root": "ab" * 32}}, op)
    size = lg.size
    with pytest.raises(VerificationError, match="not the vault policy's"):
        rebalance_step(lg, op, v, model="other", series_index=s["index"], prices=prices, t=0)
    lg.append_record("model.revoke", {"name": "vol-target", "reason": "drift"}, op)
    size = lg.size
    with pytest.raises(VerificationError, match="revoked"):
        rebalance_step(lg, op, v, model="vol-target", series_index=s["index"], prices=prices, t=0)
    assert lg.size == size and v.w3.eth.get_transaction_count(v.agent.address) == 0


def test_refused_trades_are_not_logged(vault, led):
    lg, op = led
    v = vault
    s = log_series(lg, op, seed=1, steps=4, vault=v.vault.address, chain_id=v.w3.eth.chain_id)
    _, prices = find_series(lg, s["index"])
    send(v.w3, v.guard.functions.pause(), v.kill)
    size = lg.size
    with pytest.raises(Exception, match="GuardPaused"):
        rebalance_step(lg, op, v, model="vol-target", series_index=s["index"], prices=prices, t=0)
    assert lg.size == size
    # the DAO lowers the cap below what the agent read: the guard refuses, nothing logged
    send(v.w3, v.guard.functions.unpause(), v.dao)
    from ailedger.defi.actions import act

    it = {"kind": "swap", "target": v.vault.address, "token_in": v.stable.address, "amount": str(30_000 * E18),
          "to": v.guard.address, "min_out": str(v.vault.functions.getAmountOut(v.stable.address, 30_000 * E18).call())}
    with pytest.raises(Exception, match="OverCap"):
        act(lg, op, v, model="vol-target", inputs={}, intent=it)
    assert lg.size == size
    assert SWAP.hex() == "f3e6ea8a"


def test_a_series_that_does_not_open_its_digest_is_refused(vault, led):
    lg, op = led
    idx = lg.append_record(SERIES, {"generator": "gbm-regimes-v1", "seed": 1, "steps": 10, "sha256": "00" * 32,
                                    "vault": vault.vault.address.lower(), "chain_id": 1}, op).index
    with pytest.raises(VerificationError, match="digest"):
        find_series(lg, idx)
    with pytest.raises(BadInputError, match="not an rwa.series"):
        find_series(lg, 0)
    with pytest.raises(BadInputError, match="outside the series"):
        _, prices = find_series(lg, log_series(lg, op, seed=1, steps=3, vault=vault.vault.address,
                                               chain_id=1)["index"])
        rebalance_step(lg, op, vault, model="vol-target", series_index=idx, prices=prices, t=5)
    with pytest.raises(TokenRefused):
        send(vault.w3, vault.desk.functions.postNav(1), vault.agent)  # only the oracle posts the NAV


def test_a_strangers_series_for_the_same_vault_changes_nothing(vault, led):
    """rwa.series is a statement by its signer (docs/authority.md): a stranger's series naming the same vault
    is not the operator's series, and the operator's decisions name and open only the series it logged."""
    lg, op = led
    v = vault
    mine = log_series(lg, op, seed=3, steps=3, vault=v.vault.address, chain_id=v.w3.eth.chain_id)
    stranger = lg.identities.create("stranger")
    theirs = log_series(lg, stranger, seed=99, steps=3, vault=v.vault.address, chain_id=v.w3.eth.chain_id)
    assert theirs["body"]["sha256"] != mine["body"]["sha256"]
    body, prices = find_series(lg, mine["index"])
    assert body["seed"] == 3 and prices == price_series(3, 3)
    r0 = rebalance_step(lg, op, v, model="vol-target", series_index=mine["index"], prices=prices, t=0)
    assert r0["action"] is not None and lg.entry(r0["action"]["index"]).signer == lg.entry(mine["index"]).signer
    inputs = {"policy_root": policy_root(), "series": mine["index"], "t": 0, "nav": r0["nav"],
              "balances": {"stable": str(100_000 * E18), "rwa": "0"},
              "cap_left": {"stable": str(20_000 * E18), "rwa": str(20_000 * E18)}}
    assert commit_inputs(inputs, bytes.fromhex(r0["action"]["salt"]))[0] == \
        lg.entry(r0["action"]["index"]).body["inputs"]["commitment"]
