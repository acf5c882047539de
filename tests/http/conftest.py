import pytest

from ailedger.tlog.ledger import Ledger
from tests.http.commit_helpers import init_ledger
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


@pytest.fixture(params=["sqlite", "postgres"])
def any_ledger(request, tmp_path):
    """A ledger directory on SQLite, then on PostgreSQL (a fresh schema; skipped without the server)."""
    return init_ledger(tmp_path / "ledger", request.param)
