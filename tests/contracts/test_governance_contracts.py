"""DAO contracts (OpenZeppelin Governor + ERC20Votes + TimelockController + ModelRegistry): the kill switch
on the in-process EVM and on anvil; artifacts pinned and reproducible."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from eth_account import Account
from tests.devchain import AnvilNode, find_anvil
from web3 import EthereumTesterProvider, Web3

from ailedger.errors import BadInputError
from ailedger.governance.chain import BUILD, ChainDAO, advance, send

ROOT = Path(__file__).resolve().parents[2]
E18 = 10**18


def accounts(w3, n):
    out = [Account.create() for _ in range(n)]
    for a in out:
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": a.address, "value": 10 * E18})
    return out


def scenario(w3, cap_bps=0):
    dep, alice, bob, carol, dave, g1, g2, g3 = accounts(w3, 8)
    dao = ChainDAO.deploy(w3, dep, {alice.address: 600 * E18, bob.address: 300 * E18, carol.address: 100 * E18},
                          [g1.address, g2.address, g3.address], 2, voting_delay=1, voting_period=10,
                          quorum_percent=20, timelock_delay=3600, cap_bps=cap_bps)
    for a in (alice, bob, carol):
        send(w3, dao.token.functions.delegate(a.address), a)
    p = dao.propose(alice, "model.revoke", "m1", "revoke m1: leaks training data", reason="leaks training data")
    assert dao.state(p["id"]) == "pending"
    advance(w3, blocks=2)
    assert dao.state(p["id"]) == "active"
    # flash loan: tokens moved after the snapshot (voteStart) carry no votes on this proposal
    send(w3, dao.token.functions.transfer(dave.address, 300 * E18), bob)
    send(w3, dao.token.functions.delegate(dave.address), dave)
    assert dao.vote(dave, p["id"], "for") == 0
    w_alice = dao.vote(alice, p["id"], "for")
    assert dao.vote(bob, p["id"], "against") == 300 * E18     # bob's votes at the snapshot
    with pytest.raises(BadInputError, match="GovernorAlreadyCastVote"):
        dao.vote(alice, p["id"], "for")                       # double vote
    with pytest.raises(BadInputError):
        dao.execute(alice, p)                                 # not queued yet
    advance(w3, blocks=11)
    assert dao.state(p["id"]) == "succeeded"
    dao.queue(carol, p)
    assert dao.state(p["id"]) == "queued"
    with pytest.raises(BadInputError) as ei:
        dao.execute(carol, p)                                 # the timelock has not passed
    assert "TimelockUnexpectedOperationState" in str(ei.value)
    assert dao.model_status("m1") is None
    advance(w3, seconds=3601, blocks=1)
    dao.execute(carol, p)
    assert dao.state(p["id"]) == "executed"
    st = dao.model_status("m1")
    assert st["state"] == "revoked" and st["blocked"] and st["reason"] == "leaks training data"
    # only the timelock may revoke; guardians suspend k of n at once
    with pytest.raises(BadInputError, match="NotGovernance"):
        send(w3, dao.registry.functions.revoke("m2", "x"), alice)
    with pytest.raises(BadInputError, match="NotGuardian"):
        dao.suspend(dave, "m2", "x")
    dao.suspend(g1, "m2", "jailbreak")
    assert dao.model_status("m2") is None
    with pytest.raises(BadInputError, match="AlreadyVoted"):
        dao.suspend(g1, "m2", "jailbreak")
    dao.suspend(g3, "m2", "jailbreak")
    assert dao.model_status("m2")["state"] == "suspended" and dao.model_status("m2")["blocked"]
    dao.test_accounts = {"alice": alice}
    return w_alice, dao


def test_kill_switch_on_in_process_evm():
    w3 = Web3(EthereumTesterProvider())
    w_alice, _ = scenario(w3)
    assert w_alice == 600 * E18


def test_capped_votes_on_in_process_evm():
    w3 = Web3(EthereumTesterProvider())
    dep, alice, bob = accounts(w3, 3)
    dao = ChainDAO.deploy(w3, dep, {alice.address: 600 * E18, bob.address: 400 * E18}, [dep.address], 1,
                          voting_delay=1, voting_period=5, quorum_percent=4, timelock_delay=60, cap_bps=5000)
    for a in (alice, bob):
        send(w3, dao.token.functions.delegate(a.address), a)
    p = dao.propose(alice, "model.approve", "m7", "approve m7")
    advance(w3, blocks=2)
    assert dao.vote(alice, p["id"], "for") == 500 * E18      # 600 capped at 50 % of the 1000 supply
    assert dao.vote(bob, p["id"], "against") == 400 * E18
    assert dao.governor.functions.capBps().call() == 5000


@pytest.mark.anvil
def test_kill_switch_on_anvil():
    try:
        find_anvil()
    except Exception:  # noqa: BLE001
        pytest.skip("anvil binary missing: run `npm ci --prefix tools/anvil`")
    with AnvilNode() as node:
        w3 = Web3(Web3.HTTPProvider(node.url))
        w_alice, dao = scenario(w3)
        assert w_alice == 600 * E18
        # the DAO lifts the guardians' suspension of m2 through a full proposal
        alice = dao.test_accounts["alice"]
        p = dao.propose(alice, "suspension.lift", "m2", "lift m2")
        advance(w3, blocks=2)
        assert dao.vote(alice, p["id"], "for") == 600 * E18
        advance(w3, blocks=11)
        dao.queue(alice, p)
        advance(w3, seconds=3601, blocks=1)
        dao.execute(alice, p)
        st = dao.model_status("m2")
        assert st["state"] == "active" and not st["blocked"]


def test_artifacts_are_pinned():
    pkg = json.loads((ROOT / "contracts" / "governance" / "package.json").read_text())
    oz = pkg["dependencies"]["@openzeppelin/contracts"]
    assert oz[0].isdigit()
    lock = json.loads((ROOT / "contracts" / "governance" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/@openzeppelin/contracts"]["version"] == oz
    solc = json.loads((ROOT / "contracts" / "package.json").read_text())["dependencies"]["solc"]
    for name in ("AiGovToken", "AiGovernor", "AiTimelock", "ModelRegistry"):
        art = json.loads((BUILD / f"{name}.json").read_text())
        assert art["compiler"]["version"].startswith(solc + "+") and art["openzeppelin"] == oz
        assert len(art["deployedBytecode"]) // 2 - 1 <= 24576  # EIP-170


@pytest.mark.slow
def test_fresh_compile_matches_committed_artifacts(tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "compile-governance-contracts.sh"), str(tmp_path)],
                         check=False, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    build = BUILD
    assert sorted(p.name for p in build.glob("*.json")) == sorted(p.name for p in tmp_path.glob("*.json"))
    for p in build.glob("*.json"):
        assert json.loads(p.read_text()) == json.loads((tmp_path / p.name).read_text()), p.name
