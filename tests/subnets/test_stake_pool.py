"""Stake locked through governance staking, the committed evaluation pool and its audit, the copy rule."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.encoding.records import build_entry
from ailedger.errors import BadInputError, ConflictError, NotAuthorisedError, NotFoundError
from ailedger.governance import service as gov
from ailedger.subnets import service
from ailedger.subnets.state import commitment, weights_from_observations
from ailedger.subnets.yuma import ONE, Params, copies

POOL = [{"prompt": f"digit image {k}", "answer": str(k % 10)} for k in range(12)]


def _round(w, weights_by_validator, epoch=0):
    for v, ws in weights_by_validator.items():
        service.commit(w.led, w.ids[v], "digits", ws, time=w.at(epoch, 5000))
    for v in weights_by_validator:
        service.reveal(w.led, w.ids[v], "digits", epoch, time=w.at(epoch + 1, 5000))


def test_stake_is_the_locked_amount_not_reputation(world):
    w = world
    # v1 holds 600 reputation and locked 600; give v3 reputation without locking it: it still cannot commit
    gov.grant_reputation(w.led, w.ids["owner"], {w.ids["v3"].did: 900}, time=w.at(0, 400))
    with pytest.raises(NotAuthorisedError, match="no stake locked on subnet digits"):
        service.commit(w.led, w.ids["v3"], "digits", {0: 1.0}, time=w.at(0, 5000))
    service.stake(w.led, w.ids["v3"], "digits", 100, time=w.at(0, 6000))
    _round(w, {"v1": {0: 1.0, 1: 0.5}, "v2": {0: 1.0, 1: 0.5}, "v3": {0: 1.0, 1: 0.5}})
    res = service.epoch(w.led, w.ids["keeper"], "digits", 0, time=w.at(2, 100))["body"]["result"]
    # shares follow the locked amounts 600 : 300 : 100, not the 900 reputation v3 holds
    assert res["stake"] == [600 * ONE // 1000, 300 * ONE // 1000, 100 * ONE // 1000]
    info = service.show(w.led, "digits")
    assert info["stake"][w.ids["v3"].did] == 100 and info["stake"][w.ids["m0"].did] == 0
    assert service.replay(w.led, "digits")["agree"]


def test_no_double_counting_across_subnets(world):
    w = world
    service.create(w.led, w.ids["owner"], "iris", {"metric": "accuracy"}, epoch_ms=60_000, time=w.at(0, 500))
    service.register(w.led, w.ids["v1"], "iris", "validator", time=w.at(0, 600))
    # v1's 600 reputation is all locked on digits: nothing is free to lock on iris
    with pytest.raises(BadInputError, match="free reputation"):
        service.stake(w.led, w.ids["v1"], "iris", 1, time=w.at(0, 700))
    service.register(w.led, w.ids["m0"], "iris", "miner", time=w.at(0, 800))
    with pytest.raises(NotAuthorisedError, match="no stake locked on subnet iris"):
        service.commit(w.led, w.ids["v1"], "iris", {0: 1.0}, time=w.at(0, 5000))
    with pytest.raises(NotFoundError, match="no subnet named 'nosuch'"):
        service.stake(w.led, w.ids["v1"], "nosuch", 1, time=w.at(0, 900))


def test_a_lock_that_could_end_before_the_reveal_window_does_not_count(world):
    w = world
    # epochs of 5 days: the reveal window of epoch 0 ends 10 days in; governance's challenge window (the
    # shortest lock) is 7 days, so the stake could be released before the weights are settled
    service.create(w.led, w.ids["owner"], "slow", {"metric": "accuracy"}, epoch_ms=5 * 86_400_000,
                   time=w.at(0, 500))
    service.register(w.led, w.ids["m1"], "slow", "miner", time=w.at(0, 600))
    service.register(w.led, w.ids["v2"], "slow", "validator", time=w.at(0, 600))
    gov.grant_reputation(w.led, w.ids["owner"], {w.ids["v2"].did: 50}, time=w.at(0, 650))
    service.stake(w.led, w.ids["v2"], "slow", 50, time=w.at(0, 700))
    with pytest.raises(NotAuthorisedError, match="lock lasts until the reveal window ends"):
        service.commit(w.led, w.ids["v2"], "slow", {0: 1.0}, time=w.at(0, 5000))


def test_miners_stake_when_the_subnet_asks(world):
    w = world
    service.create(w.led, w.ids["owner"], "paid", {"metric": "accuracy"}, epoch_ms=60_000,
                   params={"miner_min_stake": 20}, time=w.at(0, 500))
    miner = w.led.new_identity("m9")[0]
    with pytest.raises(NotAuthorisedError, match="must have 20 reputation staked"):
        service.register(w.led, miner, "paid", "miner", time=w.at(0, 600))
    gov.grant_reputation(w.led, w.ids["owner"], {miner.did: 30}, time=w.at(0, 650))
    service.stake(w.led, miner, "paid", 20, time=w.at(0, 700))
    service.register(w.led, miner, "paid", "miner", time=w.at(0, 800))
    assert service.show(w.led, "paid")["miners"] == [miner.did]


def test_locked_at_follows_release_by_index():
    from ailedger.governance.state import Claim, Dispute

    c = Claim(10, "subnet:x", "subnet", "did:a", 5, 0, 100)
    assert not c.locked_at(10) and c.locked_at(11)
    c.released_index = 20
    assert c.locked_at(20) and not c.locked_at(21)
    c2 = Claim(30, "subnet:x", "subnet", "did:a", 5, 0, 100)
    c2.dispute = Dispute(31, 30, "did:b", 5, "r", 0, 1, None, "")
    c2.dispute.slashed_index = 40
    assert c2.locked_at(40) and not c2.locked_at(41)


@pytest.fixture()
def pooled(world):
    w = world
    service.create(w.led, w.ids["owner"], "pooled", {"metric": "accuracy on the committed pool"}, epoch_ms=60_000,
                   pool=POOL, time=w.at(0, 500))
    for n in ("m0", "m1"):
        service.register(w.led, w.ids[n], "pooled", "miner", time=w.at(0, 600))
    # v1 and v2 have all their reputation locked on digits; lock fresh reputation for pooled
    for v in ("v1", "v2"):
        gov.grant_reputation(w.led, w.ids["owner"], {w.ids[v].did: 100}, time=w.at(0, 700))
        service.register(w.led, w.ids[v], "pooled", "validator", time=w.at(0, 800))
        service.stake(w.led, w.ids[v], "pooled", 100, time=w.at(0, 900))
    return w


def test_pool_commit_reveal_and_audit(pooled):
    w = pooled
    obs = {"0": [[k, POOL[k]["answer"]] for k in range(10)],           # m0: 10 of 10 right
           "1": [[k, POOL[k]["answer"] if k < 6 else "x"] for k in range(10)]}  # m1: 6 of 10
    r = service.commit(w.led, w.ids["v1"], "pooled", observations=obs, pool=POOL, time=w.at(0, 5000))
    assert (r["uids"], r["values"]) == ([0, 1], [65535, round(0.6 * 65535)])
    # v2 commits weights that do not follow from its observations (it says m1 is as good as m0)
    salt = "s" * 8
    c = commitment("pooled", 0, w.ids["v2"].did, [0, 1], [65535, 65535], salt, obs)
    w.led.append_entry(build_entry("subnet.commit", {"subnet": "pooled", "epoch": 0, "commitment": c},
                                   w.ids["v2"].did, w.at(0, 6000), w.ids["v2"].sign))
    service.reveal(w.led, w.ids["v1"], "pooled", 0, time=w.at(1, 5000))
    service.reveal(w.led, w.ids["v2"], "pooled", 0, salt=salt, uids=[0, 1], values=[65535, 65535],
                   observations=obs, time=w.at(1, 6000))
    service.epoch(w.led, w.ids["keeper"], "pooled", 0, time=w.at(2, 1000))
    with pytest.raises(BadInputError, match="has not revealed its pool yet"):
        service.audit(w.led, "pooled")
    # the pool is revealed: a wrong salt or another signer is refused, the owner's opening is logged once
    with pytest.raises(BadInputError, match="does not open the commitment"):
        service.reveal_pool(w.led, w.ids["owner"], "pooled", items=POOL, salt="wrong", time=w.at(2, 1200))
    with pytest.raises(NotAuthorisedError, match="only the subnet's owner"):
        service.reveal_pool(w.led, w.ids["v1"], "pooled", items=POOL, salt="wrong", time=w.at(2, 1200))
    service.reveal_pool(w.led, w.ids["owner"], "pooled", time=w.at(2, 1300))
    with pytest.raises(ConflictError, match="already revealed"):
        service.reveal_pool(w.led, w.ids["owner"], "pooled", time=w.at(2, 1400))
    out = service.audit(w.led, "pooled")
    status = {x["validator"]: x["status"] for x in out["reveals"]}
    assert status == {w.ids["v1"].did: "agrees", w.ids["v2"].did: "differs"} and not out["agree"]
    assert "miner(s) 1" in next(x["problem"] for x in out["reveals"] if x["status"] == "differs")
    # the CLI exits 1 on a reveal that differs, naming it
    L = ["--ledger", str(w.led.path)]
    w.led.close()
    r = CliRunner().invoke(main, ["subnet", "audit", "pooled", *L])
    assert r.exit_code == 1 and "weights differ from the pool's accuracy" in r.output
    r = CliRunner().invoke(main, ["subnet", "audit", "digits", *L])
    assert r.exit_code == 2 and "committed to no pool" in r.output


def test_observations_refused_when_bad(pooled):
    w = pooled
    with pytest.raises(BadInputError, match="not a registered miner"):
        service.commit(w.led, w.ids["v1"], "pooled", observations={"5": [[0, "0"]]}, pool=POOL, time=w.at(0, 5000))
    with pytest.raises(BadInputError, match="the pool has 12"):
        service.commit(w.led, w.ids["v1"], "pooled", observations={"0": [[99, "0"]]}, pool=POOL, time=w.at(0, 5000))
    with pytest.raises(BadInputError, match="need the evaluation pool"):
        service.commit(w.led, w.ids["v1"], "pooled", observations={"0": [[1, "1"]]}, time=w.at(0, 5000))
    with pytest.raises(BadInputError, match="every observed answer is wrong"):
        weights_from_observations(POOL, {"0": [[1, "7"]]})


def test_a_copy_of_a_previous_reveal_earns_no_dividends(world):
    w = world
    _round(w, {"v1": {0: 0.9, 1: 0.5, 2: 0.2}, "v2": {0: 0.7, 1: 0.8, 2: 0.1}}, epoch=0)
    service.epoch(w.led, w.ids["keeper"], "digits", 0, time=w.at(2, 100))
    # epoch 1: v2 measures nothing and re-sends v1's epoch-0 vector; v1 sends fresh scores
    _round(w, {"v1": {0: 0.8, 1: 0.6, 2: 0.3}, "v2": {0: 0.9, 1: 0.5, 2: 0.2}}, epoch=1)
    body = service.epoch(w.led, w.ids["keeper"], "digits", 1, time=w.at(3, 100))["body"]
    assert body["copies"] == [1]
    assert body["result"]["dividends"][1] == 0 and body["result"]["pay"]["validators"][1] == 0
    assert body["result"]["stake"][1] > 0  # it keeps its say in the consensus; only its dividends go
    assert service.show(w.led, "digits")["epoch_results"][1]["copies"] == [w.ids["v2"].did]
    assert service.replay(w.led, "digits")["agree"]


def test_copies_rule_distance():
    prev = [(0, np.array([100, 50, 0])), (-1, np.array([ONE // 2, ONE // 2, 0]))]
    w = np.array([[100, 50, 0],        # row 0: its own previous vector: not a copy
                  [200, 100, 0],       # row 1: the same shares as row 0's previous vector: a copy
                  [101, 100, 0],       # row 2: within 1% of the previous consensus
                  [100, 50, 50],       # row 3: far from both
                  [0, 0, 0]])          # no reveal
    assert copies(w, prev, 100) == [1, 2]
    assert copies(w, prev, 0) == [1]
    assert Params(copy_keep_bps=2500).copy_keep_bps == 2500
    with pytest.raises(BadInputError, match="copy_tol_bps"):
        Params.from_dict({"copy_tol_bps": -1})


def test_simulated_copiers_earn_less_under_the_rule():
    from ailedger.subnets.simulate import SimConfig, simulate

    on = simulate(SimConfig(epochs=16))["figures"]["consensus"]
    off = simulate(SimConfig(epochs=16, copy_rule=False))["figures"]["consensus"]
    assert on["copier_dividend_ratio"] < 0.7 * off["copier_dividend_ratio"]
    assert on["copier_reveals_caught"] > 0.3 and on["honest_reveals_caught"] == 0


def test_cli_stake_and_pool(world, tmp_path):
    w = world
    L = ["--ledger", str(w.led.path)]
    pool_file = tmp_path / "pool.json"
    pool_file.write_text(json.dumps(POOL))
    w.led.close()
    gov_rep = CliRunner().invoke(main, ["identity", "new", "v7", *L])
    assert gov_rep.exit_code == 0, gov_rep.output
    r = CliRunner().invoke(main, ["subnet", "create", "cli", "--task", "accuracy", "--pool", str(pool_file),
                                  "--epoch-seconds", "60", "--as", "owner", "--at", w.at(0, 500), "--json", *L])
    assert r.exit_code == 0, r.output
    assert len(json.loads(r.output)["body"]["pool_commitment"]) == 64
    r = CliRunner().invoke(main, ["subnet", "stake", "cli", "5", "--as", "v7", "--at", w.at(0, 600), *L])
    assert r.exit_code == 2 and "reputation" in r.output
    r = CliRunner().invoke(main, ["subnet", "pool", "cli", "--as", "owner", "--at", w.at(0, 700), "--json", *L])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["body"]["items"] == POOL
    r = CliRunner().invoke(main, ["subnet", "show", "cli", *L])
    assert "revealed at entry" in r.output
