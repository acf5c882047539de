"""Fixtures: the market on the in-process EVM (web3's EthereumTesterProvider) and a ledger with a model."""

from __future__ import annotations

import pytest
from eth_account import Account
from web3 import EthereumTesterProvider, Web3

from ailedger.defi.chain import fund, setup_market
from ailedger.tlog.ledger import Ledger


@pytest.fixture(scope="session")
def _market():
    w3 = Web3(EthereumTesterProvider())
    dao, kill, agent, other = (Account.create() for _ in range(4))
    fund(w3, [dao.address, kill.address, agent.address, other.address])
    m = setup_market(w3, dao, kill, agent)
    m.other = other  # type: ignore[attr-defined]
    return m


@pytest.fixture
def market(_market):
    """The deployed market, reset to its state after deployment for every test (an EVM snapshot)."""
    tester = _market.w3.provider.ethereum_tester
    snap = tester.take_snapshot()
    yield _market
    tester.revert_to_snapshot(snap)


@pytest.fixture
def led(tmp_path):
    lg = Ledger.init(tmp_path / "l", origin="test.example/defi")
    alice = lg.identities.create("alice")
    lg.append_record("model.register", {"name": "trader", "manifest": {"root": "ab" * 32}}, alice)
    yield lg, alice
    lg.close()
