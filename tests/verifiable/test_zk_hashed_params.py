"""Private weights: with hashed parameters the verifier learns only the Poseidon hash of the weights, which the
proof carries and which must equal the one logged in model.zk.  A second key set-up (~30 s): slow."""

from __future__ import annotations

import copy

import pytest

from ailedger.errors import VerificationError

pytestmark = pytest.mark.slow


def test_hashed_params(tmp_path):
    from ailedger.provenance.models import register_model
    from ailedger.tlog.ledger import Ledger
    from ailedger.verifiable.onnxmlp import mlp_to_onnx
    from ailedger.verifiable.zk import prove_call, setup_circuit, verify_zk
    from tests.verifiable.conftest import train_iris

    clf, xte, _ = train_iris(hidden=4)
    (tmp_path / "m").mkdir()
    mlp_to_onnx(clf, tmp_path / "m" / "net.onnx")
    with Ledger.init(tmp_path / "ledger", origin="test.example/zk-params") as led:
        owner, _ = led.new_identity("owner")
        register_model(led, tmp_path / "m", "iris4", owner)
        s = setup_circuit(led, tmp_path / "m" / "net.onnx", "iris4", owner, param_visibility="hashed",
                          calibration=xte[:2].tolist())
        body = led.entry(s["index"]).body
        assert body["circuit"]["instances"] == {"input": 1, "params": 1, "output": 1}
        b = prove_call(led, "iris4", xte[0].tolist())
        assert b["proof"]["instances"][0][1] == body["params_hash"]
        assert verify_zk(led, b)["ok"]
        bad = copy.deepcopy(b)
        bad["proof"]["instances"][0][1] = bad["proof"]["instances"][0][0]
        with pytest.raises(VerificationError, match="parameter hash is not the one logged"):
            verify_zk(led, bad)
