import pytest

from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key, Server


@pytest.fixture
def ledger_dir(tmp_path):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/api").close()
    return d


@pytest.fixture
def server(ledger_dir):
    s = Server(ledger_dir)
    yield s
    s.stop()


@pytest.fixture
def alice():
    return Key("alice")
