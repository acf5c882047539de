"""Fixtures: the vault on the in-process EVM (web3's EthereumTesterProvider), reset per test by a snapshot, and
a ledger with the vault policy registered as a model."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from ailedger.defi.chain import fund
from ailedger.rwa.agent import policy_root
from ailedger.rwa.chain import deploy_vault
from ailedger.tlog.ledger import Ledger


@pytest.fixture(scope="session")
def _vault():
    w3 = Web3(EthereumTesterProvider())
    dao, kill, agent, alice, stranger = (Account.create() for _ in range(5))
    fund(w3, [a.address for a in (dao, kill, agent, alice, stranger)])
    v = deploy_vault(w3, dao, kill, agent, cap=20_000 * 10**18, holders=(alice.address,))
    v.alice, v.stranger = alice, stranger  # type: ignore[attr-defined]
    v.deployed_block = w3.eth.block_number + 1  # type: ignore[attr-defined]
    return v


@pytest.fixture
def vault(_vault):
    tester = _vault.w3.provider.ethereum_tester
    snap = tester.take_snapshot()
    yield _vault
    tester.revert_to_snapshot(snap)


@pytest.fixture
def led(tmp_path):
    lg = Ledger.init(tmp_path / "l", origin="test.example/rwa")
    op = lg.identities.create("operator")
    lg.append_record("model.register", {"name": "vol-target", "manifest": {"root": policy_root()}}, op)
    yield lg, op
    lg.close()
