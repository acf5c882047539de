from __future__ import annotations

import shutil

import pytest


@pytest.fixture(scope="session")
def private_template(tmp_path_factory):
    """A ledger with owner/client/helper identities and both digits models registered, built once."""
    from ailedger.private.digits import save_model, train
    from ailedger.provenance.models import register_model
    from ailedger.tlog.ledger import Ledger

    root = tmp_path_factory.mktemp("private-template")
    led = Ledger.init(root / "ledger", origin="test.example/private")
    owner, _ = led.new_identity("owner")
    led.new_identity("client")
    led.new_identity("helper")
    for kind in ("logreg", "mlp"):
        save_model(train(kind), root / kind)
        register_model(led, root / kind, f"digits-{kind}", owner)
    led.close()
    return root


@pytest.fixture
def workdir(private_template, tmp_path):
    for name in ("ledger", "logreg", "mlp"):
        shutil.copytree(private_template / name, tmp_path / name)
    return tmp_path


@pytest.fixture
def ledger(workdir):
    from ailedger.tlog.ledger import Ledger

    led = Ledger.open(workdir / "ledger")
    yield led
    led.close()


@pytest.fixture(scope="session")
def keys():
    from ailedger.private.fhe import keygen

    return keygen()


@pytest.fixture(scope="session")
def other_keys():
    from ailedger.private.fhe import keygen

    return keygen()


@pytest.fixture(scope="session")
def digits_test():
    from ailedger.private.digits import test_split

    _, Xte, _, yte = test_split()
    return Xte, yte
