"""The EIP-4626 vault: its interface and rounding, the second position valued at the NAV, and the rebalance
path that only the guard may take, within the guard's caps, allow list, slippage bound and pause."""

from __future__ import annotations

import pytest
from web3.logs import DISCARD

from ailedger.defi.actions import calldata
from ailedger.defi.chain import send_unchecked
from ailedger.rwa.chain import E18, SWAP, TokenRefused, send, status


def swap_intent(v, token, amount, min_out=None, to=None):
    if min_out is None:
        min_out = v.vault.functions.getAmountOut(token.address, amount).call() * 997 // 1000
    return {"kind": "swap", "selector": "0x" + SWAP.hex(), "target": v.vault.address.lower(),
            "token_in": token.address.lower(), "amount": str(amount), "min_out": str(min_out),
            "to": (to or v.guard.address).lower()}


def through_guard(v, it, who=None):
    return v.guard.functions.execute(v.vault.address, calldata(it)), who or v.agent


def refused(v, fn, who):
    with pytest.raises(TokenRefused) as ei:
        send(v.w3, fn, who)
    assert send_unchecked(v.w3, fn, who)["status"] == 0  # the chain reverts it, not the sender's code
    return ei.value.details["reason"]


def test_erc4626_interface_and_rounding(vault):
    v = vault
    f = v.vault.functions
    a = v.alice.address
    assert f.asset().call() == v.stable.address
    assert f.totalAssets().call() == 100_000 * E18 and f.totalSupply().call() == 100_000 * E18
    send(v.w3, v.stable.functions.mint(a, 1000 * E18), v.dao)
    send(v.w3, v.stable.functions.approve(v.vault.address, 2**256 - 1), v.alice)
    # the NAV moves: the vault's asset-token position is valued at it
    send(v.w3, *through_guard(v, swap_intent(v, v.stable, 10_000 * E18)))
    send(v.w3, v.desk.functions.postNav(1_300_000_000_000_000_000), v.dao)
    s = status(v)
    assert int(s["total_assets"]) == int(s["stable"]) + int(s["rwa"]) * 13 // 10
    shares = f.previewDeposit(777 * E18).call()
    assert shares == f.convertToShares(777 * E18).call()
    rcpt = send(v.w3, f.deposit(777 * E18, a), v.alice)
    ev = v.vault.events.Deposit().process_receipt(rcpt, errors=DISCARD)[0]["args"]
    assert (ev["sender"], ev["owner"], ev["assets"], ev["shares"]) == (a, a, 777 * E18, shares)
    # mint rounds assets up, withdraw rounds shares up, redeem rounds assets down (EIP-4626: favour the vault)
    need = f.previewMint(10**18 + 1).call()
    assert need >= f.convertToAssets(10**18 + 1).call()
    send(v.w3, f.mint(10**18 + 1, a), v.alice)
    burn = f.previewWithdraw(5 * E18).call()
    assert burn >= f.convertToShares(5 * E18).call()
    before = f.balanceOf(a).call()
    rcpt = send(v.w3, f.withdraw(5 * E18, a, a), v.alice)
    ev = v.vault.events.Withdraw().process_receipt(rcpt, errors=DISCARD)[0]["args"]
    assert ev["assets"] == 5 * E18 and ev["shares"] == burn == before - f.balanceOf(a).call()
    got = f.previewRedeem(E18).call()
    assert got <= f.convertToAssets(E18).call() + 1
    send(v.w3, f.redeem(E18, a, a), v.alice)
    # withdrawals are paid in the stable only, up to what the vault holds
    assert f.maxWithdraw(v.dao.address).call() <= v.stable.functions.balanceOf(v.vault.address).call()
    too_much = f.maxWithdraw(v.dao.address).call() + 1
    assert refused(v, f.withdraw(too_much, v.dao.address, v.dao.address), v.dao).startswith("ExceedsMax(")
    # a spender needs an allowance of shares
    assert refused(v, f.redeem(E18, v.alice.address, v.dao.address), v.alice).startswith("InsufficientAllowance(")


def test_a_rebalance_through_the_guard_moves_the_position(vault):
    v = vault
    send(v.w3, *through_guard(v, swap_intent(v, v.stable, 5_000 * E18)))
    s = status(v)
    assert int(s["stable"]) == 95_000 * E18 and int(s["rwa"]) == 5_000 * E18 * 9990 // 10000
    assert s["cap_left"]["stable"] == str(15_000 * E18)
    send(v.w3, *through_guard(v, swap_intent(v, v.rwa, 1_000 * E18)))
    assert status(v)["cap_left"]["rwa"] == str(19_000 * E18)


def test_only_the_guard_calls_the_vaults_swap(vault):
    v = vault
    for who in (v.agent, v.dao, v.alice):
        direct = v.vault.functions.swap(v.stable.address, E18, 0, who.address)
        assert refused(v, direct, who).startswith("NotManager(")


def test_beyond_the_caps_is_reverted_by_the_guard(vault):
    v = vault
    assert refused(v, *through_guard(v, swap_intent(v, v.stable, 20_001 * E18))).startswith("OverCap(")
    send(v.w3, *through_guard(v, swap_intent(v, v.stable, 15_000 * E18)))
    assert refused(v, *through_guard(v, swap_intent(v, v.stable, 5_001 * E18))).startswith("OverCap(")
    v.w3.provider.ethereum_tester.time_travel(v.w3.eth.get_block("latest")["timestamp"] + 86400 + 1)
    send(v.w3, *through_guard(v, swap_intent(v, v.stable, 5_001 * E18)))  # a new period


def test_while_the_kill_switch_is_pulled_every_rebalance_is_refused(vault):
    v = vault
    send(v.w3, v.guard.functions.pause(), v.kill)
    assert refused(v, *through_guard(v, swap_intent(v, v.stable, E18))) == "GuardPaused()"
    assert refused(v, v.guard.functions.unpause(), v.kill).startswith("NotDao(")
    send(v.w3, v.guard.functions.unpause(), v.dao)
    send(v.w3, *through_guard(v, swap_intent(v, v.stable, E18)))


def test_slippage_proceeds_and_off_list_calls_are_refused(vault):
    v = vault
    assert refused(v, *through_guard(v, swap_intent(v, v.stable, E18, min_out=0))).startswith("SlippageTooHigh(")
    assert refused(v, *through_guard(v, swap_intent(v, v.stable, E18, to=v.alice.address))).startswith(
        "SanctionedAddress(")  # the guard's name for proceeds that would leave it
    it = swap_intent(v, v.stable, E18)
    it["target"] = v.desk.address.lower()  # the desk itself is not an allowed target
    fn = v.guard.functions.execute(v.desk.address, calldata(it))
    assert refused(v, fn, v.agent).startswith("TargetNotAllowed(")
    assert refused(v, *through_guard(v, swap_intent(v, v.stable, E18), who=v.alice)).startswith("NotAgent(")
