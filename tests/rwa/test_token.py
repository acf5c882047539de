"""The permissioned asset token refuses, by itself, every move to a holder the identity registry has not
verified (transfer, transferFrom, mint, forced transfer), frozen holders, paused transfers and moves the
compliance rules forbid; the vault's shares follow the same rule."""

from __future__ import annotations

import pytest

from ailedger.defi.chain import send_unchecked
from ailedger.rwa.chain import COUNTRY, E18, TokenRefused, send


def refused(v, fn, who):
    with pytest.raises(TokenRefused) as ei:
        send(v.w3, fn, who)
    # sent anyway (no simulation), the chain reverts it: the refusal is the token's own
    assert send_unchecked(v.w3, fn, who)["status"] == 0
    return ei.value.details["reason"]


def test_transfer_to_a_verified_holder_passes(vault):
    v = vault
    send(v.w3, v.rwa.functions.transfer(v.alice.address, 10 * E18), v.dao)
    assert v.rwa.functions.balanceOf(v.alice.address).call() == 10 * E18
    assert v.rwa.functions.canTransfer(v.dao.address, v.alice.address, E18).call()


def test_transfer_to_an_unverified_holder_is_reverted_by_the_token(vault):
    v = vault
    s = v.stranger.address
    assert not v.registry.functions.isVerified(s).call()
    assert not v.rwa.functions.canTransfer(v.dao.address, s, E18).call()
    assert refused(v, v.rwa.functions.transfer(s, E18), v.dao).lower() == f"unverifiedholder({s.lower()})"
    assert v.rwa.functions.balanceOf(s).call() == 0


def test_transfer_from_mint_and_forced_transfer_check_the_receiver_too(vault):
    v = vault
    s = v.stranger.address
    send(v.w3, v.rwa.functions.approve(v.alice.address, 100 * E18), v.dao)
    assert refused(v, v.rwa.functions.transferFrom(v.dao.address, s, E18), v.alice).startswith("UnverifiedHolder(")
    assert refused(v, v.rwa.functions.mint(s, E18), v.dao).startswith("UnverifiedHolder(")
    assert refused(v, v.rwa.functions.forcedTransfer(v.dao.address, s, E18), v.dao).startswith("UnverifiedHolder(")
    send(v.w3, v.rwa.functions.transferFrom(v.dao.address, v.alice.address, E18), v.alice)  # a verified one


def test_removed_or_expired_verification_stops_transfers(vault):
    v = vault
    send(v.w3, v.rwa.functions.transfer(v.alice.address, 5 * E18), v.dao)
    send(v.w3, v.registry.functions.deleteIdentity(v.alice.address), v.dao)
    assert refused(v, v.rwa.functions.transfer(v.alice.address, E18), v.dao).startswith("UnverifiedHolder(")
    now = v.w3.eth.get_block("latest")["timestamp"]
    s = v.stranger.address
    send(v.w3, v.registry.functions.registerIdentity(s, s, COUNTRY, now + 100), v.dao)
    send(v.w3, v.rwa.functions.transfer(s, E18), v.dao)
    v.w3.provider.ethereum_tester.time_travel(now + 1000)
    assert refused(v, v.rwa.functions.transfer(s, E18), v.dao).startswith("UnverifiedHolder(")


def test_frozen_paused_and_compliance(vault):
    v = vault
    a = v.alice.address
    send(v.w3, v.rwa.functions.setAddressFrozen(a, True), v.dao)
    assert refused(v, v.rwa.functions.transfer(a, E18), v.dao).startswith("FrozenHolder(")
    send(v.w3, v.rwa.functions.setAddressFrozen(a, False), v.dao)
    send(v.w3, v.rwa.functions.pause(), v.dao)
    assert refused(v, v.rwa.functions.transfer(a, E18), v.dao) == "TokenPaused()"
    send(v.w3, v.rwa.functions.unpause(), v.dao)
    send(v.w3, v.compliance.functions.setCountryBlocked(COUNTRY, True), v.dao)
    assert refused(v, v.rwa.functions.transfer(a, E18), v.dao).startswith("TransferNotCompliant(")
    send(v.w3, v.compliance.functions.setCountryBlocked(COUNTRY, False), v.dao)
    send(v.w3, v.compliance.functions.setMaxBalance(2 * E18), v.dao)
    send(v.w3, v.rwa.functions.transfer(a, 2 * E18), v.dao)
    assert refused(v, v.rwa.functions.transfer(a, 1), v.dao).startswith("TransferNotCompliant(")


def test_only_the_owner_and_agents_administer(vault):
    v = vault
    s, a = v.stranger, v.alice.address
    assert refused(v, v.registry.functions.registerIdentity(s.address, s.address, COUNTRY, 0), s).startswith(
        "NotRegistryAgent(")
    assert refused(v, v.rwa.functions.mint(a, E18), s).startswith("NotTokenAgent(")
    assert refused(v, v.rwa.functions.addAgent(s.address), s).startswith("NotOwner(")
    assert refused(v, v.compliance.functions.setMaxBalance(1), s).startswith("NotDao(")
    assert refused(v, v.vault.functions.setManager(s.address), s).startswith("NotDao(")


def test_vault_shares_go_only_to_verified_holders(vault):
    v = vault
    s = v.stranger.address
    assert v.vault.functions.maxDeposit(s).call() == 0 and v.vault.functions.maxMint(s).call() == 0
    assert v.vault.functions.maxDeposit(v.alice.address).call() == 2**256 - 1
    send(v.w3, v.stable.functions.mint(v.dao.address, 10 * E18), v.dao)
    send(v.w3, v.stable.functions.approve(v.vault.address, 10 * E18), v.dao)
    assert refused(v, v.vault.functions.deposit(E18, s), v.dao).startswith("UnverifiedHolder(")
    assert refused(v, v.vault.functions.transfer(s, E18), v.dao).startswith("UnverifiedHolder(")
    send(v.w3, v.vault.functions.transfer(v.alice.address, E18), v.dao)
