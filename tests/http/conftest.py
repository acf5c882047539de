import subprocess

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


@pytest.fixture
def small_disk(tmp_path):
    """A 1.5 MiB tmpfs (a disk that fills up); skipped where mounting needs root it does not have."""
    d = tmp_path / "disk"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1536k", "tmpfs", str(d)], capture_output=True,
                       check=False)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): " + r.stderr.decode().strip())
    yield d
    subprocess.run(["umount", "-l", str(d)], check=False)
