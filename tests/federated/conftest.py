from __future__ import annotations

import pytest

pytest.importorskip("flwr")

from ailedger.tlog.ledger import Ledger


@pytest.fixture()
def ledger(tmp_path):
    led = Ledger.init(tmp_path / "led", "example.org/fl-test")
    yield led
    led.close()


@pytest.fixture()
def server(ledger):
    ident, _ = ledger.new_identity("fl-server")
    return ident
