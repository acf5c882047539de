"""The guard's DAO is the governance timelock (OpenZeppelin Governor + TimelockController, docs/governance.md):
a policy change happens only by an executed proposal; the deployer, the agent or a voter acting alone is refused."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from ailedger.defi.chain import E18, GuardRefused, deploy, fund, policy_call, send
from ailedger.errors import BadInputError
from ailedger.governance.chain import ChainDAO, advance


def test_policy_change_needs_an_executed_proposal():
    w3 = Web3(EthereumTesterProvider())
    dep, alice, bob, kill, agent = (Account.create() for _ in range(5))
    fund(w3, [a.address for a in (dep, alice, bob, kill, agent)])
    dao = ChainDAO.deploy(w3, dep, {alice.address: 600 * E18, bob.address: 400 * E18}, [dep.address], 1,
                          voting_delay=1, voting_period=5, quorum_percent=4, timelock_delay=60)
    for a in (alice, bob):
        send(w3, dao.token.functions.delegate(a.address), a)
    deny = deploy(w3, dep, "DenyList", dao.timelock.address)
    guard = deploy(w3, dep, "AgentGuard", dao.timelock.address, kill.address, agent.address, deny.address, 100)
    token = deploy(w3, dep, "TestToken", "Token A", "TKA")

    for who in (dep, alice, agent):  # nobody acting alone changes the policy
        with pytest.raises(GuardRefused, match="NotDao"):
            send(w3, guard.functions.setAllowance(token.address, 500 * E18, 86400), who)
    with pytest.raises(BadInputError, match="not a guard policy function"):
        policy_call(guard, "execute", token.address, b"")

    t, v, c = policy_call(guard, "setAllowance", token.address, 500 * E18, 86400)
    desc = "agent guard: cap token A at 500 per day"
    rcpt = send(w3, dao.governor.functions.propose(t, v, c, desc), alice)
    pid = dao.governor.events.ProposalCreated().process_receipt(rcpt)[0]["args"]["proposalId"]
    p = {"id": pid, "targets": t, "values": v, "calldatas": c, "description": desc}
    advance(w3, blocks=2)
    dao.vote(alice, pid, "for")
    dao.vote(bob, pid, "against")
    advance(w3, blocks=6)
    assert dao.state(pid) == "succeeded"
    dao.queue(alice, p)
    with pytest.raises(BadInputError, match="would revert"):  # the timelock has not passed
        dao.execute(alice, p)
    assert guard.functions.allowances(token.address).call()[0] == 0
    advance(w3, seconds=61, blocks=1)
    dao.execute(bob, p)  # anyone executes once the timelock passed
    assert guard.functions.allowances(token.address).call()[0] == 500 * E18
