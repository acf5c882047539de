"""EZKL proofs bound to a registered model: set-up, prove, verify-zk, and every bad input of issue 23."""

from __future__ import annotations

import copy
import json

import pytest

from ailedger.errors import NotAuthorisedError, ProofError, VerificationError
from tests.verifiable.conftest import write


def _ledger(zk_env):
    from ailedger.tlog.ledger import Ledger

    return Ledger.open(zk_env["ledger"])


def test_setup_logs_the_binding(zk_env):
    s = zk_env["setup"]
    with _ledger(zk_env) as led:
        e = led.entry(s["index"])
        reg = led.entry(e.body["model_index"])
    assert e.type == "model.zk" and e.body["model"] == "iris"
    assert e.body["manifest_root"] == reg.body["manifest"]["root"]
    assert e.body["vk_sha256"] == s["vk_sha256"] and len(s["vk_sha256"]) == 64
    assert e.body["visibility"] == {"input": "hashed", "output": "hashed", "params": "fixed"}
    assert e.body["circuit"]["instances"] == {"input": 1, "params": 0, "output": 1}
    assert e.body["srs"]["kind"] == "local-test-only"


def test_prove_and_verify(zk_env, proven, run):
    # the circuit's output matches the model's own logits (quantised)
    logits = zk_env["clf"].predict_proba(zk_env["x"][:1])
    assert int(max(range(3), key=lambda i: proven["output"][i])) == int(logits.argmax())
    r = run("inference", "verify-zk", zk_env["root"] / "proof.json", "--ledger", zk_env["ledger"], "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.strip().splitlines()[-1])
    assert res["ok"] and res["model"] == "iris" and res["receipt"] == proven["receipt"]
    with _ledger(zk_env) as led:
        from ailedger.verifiable.zk import _record
        rec = _record(led, proven["receipt"])
    assert rec["meta"]["zk"]["proof"] == proven["proof_sha256"]
    assert rec["meta"]["zk"]["in"] == [proven["proof"]["instances"][0][0]]


def test_uncovered_fields_are_not_read(zk_env, proven, tmp_path, run):
    b = copy.deepcopy(proven)
    b["proof"]["pretty_public_inputs"]["processed_outputs"] = [["0x01"]]
    b["proof"]["hex_proof"] = "0x00"
    r = run("inference", "verify-zk", write(tmp_path / "p.json", b), "--ledger", zk_env["ledger"])
    assert r.exit_code == 0, r.output


def test_public_output_differs_from_the_commitment(zk_env, proven, tmp_path, run):
    b = copy.deepcopy(proven)
    b["proof"]["instances"][0][-1] = b["proof"]["instances"][0][0]
    r = run("inference", "verify-zk", write(tmp_path / "p.json", b), "--ledger", zk_env["ledger"])
    assert r.exit_code == 1
    assert "public output differs from the commitment" in r.output


def test_proof_for_another_model(zk_env, proven, tmp_path, run):
    from ailedger.inference.sdk import InferenceTrail

    with _ledger(zk_env) as led, InferenceTrail(led, "other", mode="durable") as t:
        rid = str(t.record([1.0, 2.0, 3.0, 4.0], [0.0, 1.0, 0.0]))
    b = copy.deepcopy(proven)
    b["receipt"] = rid
    r = run("inference", "verify-zk", write(tmp_path / "p.json", b), "--ledger", zk_env["ledger"])
    assert r.exit_code == 1
    assert "is for model iris's circuit" in r.output and "logged for model other" in r.output


def test_verifying_key_not_in_the_log(zk_env, proven, tmp_path, run):
    vk = zk_env["ledger"] / "zk" / zk_env["setup"]["vk_sha256"][:32] / "vk.key"
    fake = tmp_path / "vk.key"
    fake.write_bytes(vk.read_bytes()[:-1] + bytes([vk.read_bytes()[-1] ^ 1]))
    r = run("inference", "verify-zk", zk_env["root"] / "proof.json", "--vk", fake, "--ledger", zk_env["ledger"])
    assert r.exit_code == 1
    assert "verifying key is not the one logged" in r.output and "in no model.zk entry of this log" in r.output


def test_a_bad_proof_logged_by_anyone_still_fails(zk_env, proven, tmp_path):
    from ailedger.verifiable.zk import proof_digest, verify_zk

    b = copy.deepcopy(proven)
    p = b["proof"]["proof"]
    b["proof"]["proof"] = (p[:10] + ("0" if p[10] != "0" else "1") + p[11:]) if isinstance(p, str) else \
        [p[0] ^ 1, *p[1:]]
    with _ledger(zk_env) as led:
        with pytest.raises(VerificationError, match="not the one logged for call"):
            verify_zk(led, b)
        # an inference.zk statement (anyone may log one) naming the tampered proof: EZKL itself refuses it
        led.append_record("inference.zk", {"receipt": b["receipt"], "model": "iris", "setup": b["setup"],
                                           "proof_sha256": proof_digest(b["proof"])},
                          led.identities.load("mallory", None), terms=[f"receipt:{b['receipt']}"])
        with pytest.raises(ProofError, match="does not verify"):
            verify_zk(led, b)


def test_revoked_model(zk_env, proven, run):
    with _ledger(zk_env) as led:
        owner = led.identities.load("owner", None)
        led.append_record("model.revoke", {"model": "iris", "reason": "test"}, owner)
    try:
        r = run("inference", "verify-zk", zk_env["root"] / "proof.json", "--ledger", zk_env["ledger"])
        assert r.exit_code == 1
        assert "model iris is revoked" in r.output
        r = run("model", "zk-setup", zk_env["onnx"], "--name", "iris", "--as", "owner", "--ledger", zk_env["ledger"])
        assert r.exit_code == 1 and "no circuit may be bound" in r.output
    finally:
        with _ledger(zk_env) as led:
            led.append_record("model.reinstate", {"model": "iris"}, led.identities.load("owner", None))
    assert run("inference", "verify-zk", zk_env["root"] / "proof.json", "--ledger", zk_env["ledger"]).exit_code == 0


def test_only_the_owner_binds_a_circuit(zk_env):
    with _ledger(zk_env) as led:
        body = dict(led.entry(zk_env["setup"]["index"]).body)
        n = led.size
        with pytest.raises(NotAuthorisedError, match="only the owner of model iris may bind a circuit"):
            led.append_record("model.zk", body, led.identities.load("mallory", None))
        assert led.size == n


def test_onnx_file_not_of_the_model(zk_env, run):
    r = run("model", "zk-setup", zk_env["other_onnx"], "--name", "iris", "--as", "owner",
            "--ledger", zk_env["ledger"])
    assert r.exit_code == 1 and "is not a file of registered model iris" in r.output


def test_malformed_bundle_is_bad_input(zk_env, tmp_path, run):
    r = run("inference", "verify-zk", write(tmp_path / "p.json", {"format": "x"}), "--ledger", zk_env["ledger"])
    assert r.exit_code == 2 and "not an ailedger-zk-proof/v1 document" in r.output


def test_setup_index_that_is_no_circuit(zk_env, proven, tmp_path, run):
    b = copy.deepcopy(proven)
    b["setup"] = 0
    r = run("inference", "verify-zk", write(tmp_path / "p.json", b), "--ledger", zk_env["ledger"])
    assert r.exit_code == 1 and "names no circuit of this log" in r.output


def test_auditor_without_the_records_uses_the_receipt_proof(zk_env, proven, tmp_path, run):
    """A copy of the log and the circuit files, without the operator's record store: the bundle's receipt proof
    gives the record, checked against the log's key."""
    import shutil

    copy_dir = tmp_path / "auditor"
    shutil.copytree(zk_env["ledger"], copy_dir, ignore=shutil.ignore_patterns("inference"))
    assert not (copy_dir / "inference").exists()
    r = run("inference", "verify-zk", zk_env["root"] / "proof.json", "--ledger", copy_dir)
    assert r.exit_code == 0, r.output
    b = copy.deepcopy(proven)
    rec = json.loads(b["receipt_proof"]["record"])
    rec["meta"]["zk"]["out"] = rec["meta"]["zk"]["in"]  # a record the batch does not hold
    b["receipt_proof"]["record"] = json.dumps(rec, sort_keys=True, separators=(",", ":"))
    r = run("inference", "verify-zk", write(tmp_path / "p.json", b), "--ledger", copy_dir)
    assert r.exit_code == 1 and "the record is not in the signed batch" in r.output
