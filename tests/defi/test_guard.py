"""The guard contract refuses, by itself, every call outside the DAO's policy; only the DAO changes the policy;
the kill switch pauses."""

from __future__ import annotations

import pytest

from ailedger.defi.actions import calldata
from ailedger.defi.chain import E18, GuardRefused, send, send_unchecked

SINK = "0x" + "11" * 20


def transfer(m, amount, to=SINK, token=0):
    return {"kind": "transfer", "selector": "0xa9059cbb", "target": m.tokens[token].address.lower(), "to": to,
            "amount": str(amount)}


def swap(m, amount, min_out=None, to=None):
    ta = m.tokens[0]
    if min_out is None:
        min_out = m.amm.functions.getAmountOut(ta.address, amount).call() * 995 // 1000
    return {"kind": "swap", "selector": "0xf3e6ea8a", "target": m.amm.address.lower(),
            "token_in": ta.address.lower(), "amount": str(amount), "min_out": str(min_out),
            "to": (to or m.guard.address).lower()}


def execute(m, it, who=None):
    return m.guard.functions.execute(m.w3.to_checksum_address(it["target"]), calldata(it)), who or m.agent


def refused(m, it, who=None):
    fn, acct = execute(m, it, who)
    with pytest.raises(GuardRefused) as ei:
        send(m.w3, fn, acct)
    # and sent anyway (no simulation), the chain itself reverts it
    assert send_unchecked(m.w3, fn, acct)["status"] == 0
    return ei.value.details["reason"]


def test_within_policy_passes_and_moves_funds(market):
    m = market
    before = m.tokens[1].functions.balanceOf(m.guard.address).call()
    fn, acct = execute(m, swap(m, 100 * E18))
    assert send(m.w3, fn, acct)["status"] == 1
    assert m.tokens[1].functions.balanceOf(m.guard.address).call() > before
    send(m.w3, *execute(m, transfer(m, 10 * E18)))
    assert m.tokens[0].functions.balanceOf(SINK).call() == 10 * E18


def test_over_cap_in_one_period_is_refused_then_resets(market):
    m = market
    send(m.w3, *execute(m, transfer(m, 600 * E18)))
    assert refused(m, transfer(m, 500 * E18)).startswith("OverCap(")
    send(m.w3, *execute(m, transfer(m, 400 * E18)))  # exactly the cap
    assert refused(m, transfer(m, 1)).startswith("OverCap(")
    tester = m.w3.provider.ethereum_tester
    tester.time_travel(m.w3.eth.get_block("latest")["timestamp"] + 86400 + 1)
    send(m.w3, *execute(m, transfer(m, 500 * E18)))  # a new period


def test_swaps_count_against_the_cap_of_the_token_in(market):
    m = market
    send(m.w3, *execute(m, swap(m, 900 * E18)))
    assert refused(m, transfer(m, 200 * E18)).startswith("OverCap(")
    send(m.w3, *execute(m, transfer(m, 200 * E18, token=1)))  # the other token has its own cap


def test_off_list_target_and_selector_are_refused(market):
    m = market
    it = transfer(m, 1)
    it["kind"], it["selector"] = "approve", "0x095ea7b3"  # approve is not allow-listed on the token
    assert refused(m, it).startswith("TargetNotAllowed(")
    other = transfer(m, 1)
    other["target"] = m.deny.address.lower()  # not an allowed target at all
    assert refused(m, other).startswith("TargetNotAllowed(")


def test_sanctioned_recipient_is_refused(market):
    m = market
    send(m.w3, m.deny.functions.addToSanctionsList([m.w3.to_checksum_address(SINK)]), m.dao)
    assert m.deny.functions.isSanctioned(m.w3.to_checksum_address(SINK)).call()
    assert refused(m, transfer(m, E18)).startswith("SanctionedAddress(")


def test_slippage_bound_and_proceeds_stay_in_the_guard(market):
    m = market
    assert refused(m, swap(m, 100 * E18, min_out=0)).startswith("SlippageTooHigh(")
    assert refused(m, swap(m, 100 * E18, to=SINK)).startswith("SanctionedAddress(")


def test_only_the_agent_calls_execute(market):
    m = market
    assert refused(m, transfer(m, E18), who=m.other).startswith("NotAgent(")


def test_policy_changes_only_by_the_dao(market):
    m = market
    g, t = m.guard, m.tokens[0].address
    for fn, who in ((g.functions.setAllowance(t, 10**30, 86400), m.agent),
                    (g.functions.setAllowed(m.deny.address, bytes.fromhex("a9059cbb"), True), m.other),
                    (g.functions.setMaxSlippage(10000), m.kill),
                    (g.functions.unpause(), m.kill),
                    (m.deny.functions.removeFromSanctionsList([t]), m.agent)):
        with pytest.raises(GuardRefused, match="NotDao"):
            send(m.w3, fn, who)
    assert refused(m, transfer(m, 5000 * E18)).startswith("OverCap(")
    send(m.w3, g.functions.setAllowance(t, 10_000 * E18, 86400), m.dao)  # the DAO raises the cap
    send(m.w3, *execute(m, transfer(m, 5000 * E18)))


def test_kill_switch_pauses_only_the_dao_unpauses(market):
    m = market
    with pytest.raises(GuardRefused, match="NotKillSwitch"):
        send(m.w3, m.guard.functions.pause(), m.agent)
    send(m.w3, m.guard.functions.pause(), m.kill)
    assert refused(m, transfer(m, E18)).startswith("GuardPaused")
    with pytest.raises(GuardRefused, match="NotDao"):
        send(m.w3, m.guard.functions.unpause(), m.kill)
    send(m.w3, m.guard.functions.unpause(), m.dao)
    send(m.w3, *execute(m, transfer(m, E18)))


def test_guard_gas_overhead_is_bounded(market):
    """The guard's checks cost gas on top of a direct call; measured, not assumed."""
    m = market
    guarded = send(m.w3, *execute(m, transfer(m, E18)))["gasUsed"]
    send(m.w3, m.tokens[0].functions.mint(m.other.address, 10 * E18), m.dao)
    direct = send(m.w3, m.tokens[0].functions.transfer(m.w3.to_checksum_address(SINK), E18), m.other)["gasUsed"]
    assert direct < guarded < direct + 100_000
