"""One ledger with a registered iris MLP (4-8-3) and its EZKL circuit, set up once per session (the key
set-up is the slow part, ~15 s); tests that change state use their own copies or undo what they do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("ezkl")


def train_iris(hidden: int = 8, seed: int = 0):
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    clf = MLPClassifier(hidden_layer_sizes=(hidden,), max_iter=3000, random_state=seed).fit(xtr, ytr)
    return clf, xte, yte


@pytest.fixture(scope="session")
def iris_model(tmp_path_factory):
    """The iris MLP (4-8-3) trained now, as ONNX: no circuit (the eval tests need only this)."""
    from ailedger.verifiable.onnxmlp import mlp_to_onnx

    root = tmp_path_factory.mktemp("iris")
    clf, xte, yte = train_iris()
    mlp_to_onnx(clf, root / "net.onnx")
    return {"onnx": root / "net.onnx", "x": xte, "y": yte, "clf": clf}


@pytest.fixture(scope="session")
def zk_env(tmp_path_factory):
    from ailedger.provenance.models import register_model
    from ailedger.tlog.ledger import Ledger
    from ailedger.verifiable.onnxmlp import mlp_to_onnx
    from ailedger.verifiable.zk import setup_circuit

    root = tmp_path_factory.mktemp("zk")
    led = Ledger.init(root / "ledger", origin="test.example/zk")
    owner, _ = led.new_identity("owner")
    led.new_identity("mallory")
    led.new_identity("inference")
    clf, xte, yte = train_iris()
    (root / "iris").mkdir()
    mlp_to_onnx(clf, root / "iris" / "net.onnx")
    register_model(led, root / "iris", "iris", owner)
    other, _, _ = train_iris(hidden=6, seed=1)
    (root / "other").mkdir()
    mlp_to_onnx(other, root / "other" / "net.onnx")
    register_model(led, root / "other", "other", owner)
    setup = setup_circuit(led, root / "iris" / "net.onnx", "iris", owner, calibration=xte[:4].tolist())
    (root / "x0.json").write_text(json.dumps(xte[0].tolist()))
    led.close()
    return {"root": root, "ledger": root / "ledger", "setup": setup, "onnx": root / "iris" / "net.onnx",
            "other_onnx": root / "other" / "net.onnx", "x": xte, "y": yte, "clf": clf}


@pytest.fixture(scope="session")
def proven(zk_env):
    """One call of iris, run, proven and logged (the proof bundle, as `inference prove` writes it)."""
    from ailedger.tlog.ledger import Ledger
    from ailedger.verifiable.zk import prove_call

    with Ledger.open(zk_env["ledger"]) as led:
        res = prove_call(led, "iris", zk_env["x"][0].tolist())
    p = zk_env["root"] / "proof.json"
    p.write_text(json.dumps(res))
    return res


def cli(*args: object):
    from click.testing import CliRunner

    from ailedger.cli.main import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def run():
    return cli


def write(path: Path, doc: object) -> Path:
    path.write_text(json.dumps(doc))
    return path
