import pytest

from ailedger.services.blobs.node import StorageNode
from ailedger.services.ledger import Ledger


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.init(tmp_path / "ledger", origin="test.example/blobs")
    yield led
    led.close()


@pytest.fixture
def people(ledger):
    return {name: ledger.new_identity(name)[0] for name in ("alice", "bob", "carol")}


@pytest.fixture
def make_nodes(tmp_path):
    started = []

    def make(count, prefix="n", **kw):
        out = [StorageNode(tmp_path / f"{prefix}{len(started) + i}", **kw).start() for i in range(count)]
        started.extend(out)
        return out

    yield make
    for n in started:
        try:
            n.stop()
        except Exception:
            pass
