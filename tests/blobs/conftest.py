import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.blobs.node import StorageNode
from ailedger.tlog.identities import Identity
from ailedger.tlog.ledger import Ledger


@pytest.fixture
def allow_file(tmp_path):
    """The did:keys the test nodes take writes from (a node admits only keys its operator names)."""
    p = tmp_path / "node-writers"
    p.write_text("# did:keys that may write to the test storage nodes\n")
    return p


def admit(allow_file, *dids):
    with open(allow_file, "a") as f:
        f.write("".join(d + "\n" for d in dids))


@pytest.fixture
def ledger(tmp_path):
    led = Ledger.init(tmp_path / "ledger", origin="test.example/blobs")
    yield led
    led.close()


@pytest.fixture
def people(ledger, allow_file):
    ids = {name: ledger.new_identity(name)[0] for name in ("alice", "bob", "carol")}
    admit(allow_file, *(i.did for i in ids.values()))
    return ids


@pytest.fixture
def writer(allow_file):
    """A key the test nodes admit, for tests that talk to a node directly."""
    ident = Identity("writer", Ed25519PrivateKey.generate())
    admit(allow_file, ident.did)
    return ident


@pytest.fixture
def make_nodes(tmp_path, allow_file):
    started = []

    def make(count, prefix="n", **kw):
        kw.setdefault("allow_file", allow_file)
        out = [StorageNode(tmp_path / f"{prefix}{len(started) + i}", **kw).start() for i in range(count)]
        started.extend(out)
        return out

    yield make
    for n in started:
        try:
            n.stop()
        except Exception:  # noqa: BLE001, S110 - teardown: a node that failed must not hide the test's result
            pass
