"""Commit-reveal evaluations: scores recomputed from the revealed files; late or mismatched reveals refused."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.verifiable.conftest import write


def _at(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


@pytest.fixture
def ev(iris_model, tmp_path, run):
    from ailedger.tlog.ledger import Ledger

    led_dir = tmp_path / "ledger"
    with Ledger.init(led_dir, origin="test.example/eval") as led:
        led.new_identity("owner")
        led.new_identity("lab")
        led.new_identity("mallory")
    data = tmp_path / "test.npz"
    np.savez(data, X=iris_model["x"], y=iris_model["y"])
    acc = float(np.mean(iris_model["clf"].predict(iris_model["x"]) == iris_model["y"]))
    scores = write(tmp_path / "scores.json", {"accuracy": round(acc, 6)})
    return {"dir": led_dir, "data": data, "scores": scores, "acc": acc, "tmp": tmp_path}


def _commit(run, ev, iris_model, role, out, deadline, who):
    extra = ["--model", iris_model["onnx"], "--scores", ev["scores"]] if role == "model" else ["--data", ev["data"]]
    r = run("eval", "commit", "e1", "--role", role, *extra, "--reveal-by", deadline, "--as", who, "-o", out,
            "--ledger", ev["dir"])
    assert r.exit_code == 0, r.output
    return out


def test_commit_reveal_verify(ev, iris_model, run):
    m = _commit(run, ev, iris_model, "model", ev["tmp"] / "m.open", _at(600), "owner")
    d = _commit(run, ev, iris_model, "data", ev["tmp"] / "d.open", _at(600), "lab")
    r = run("eval", "verify", "e1", "--ledger", ev["dir"])
    assert r.exit_code == 1 and "never revealed" in r.output
    assert run("eval", "reveal", m, "--as", "owner", "--ledger", ev["dir"]).exit_code == 0
    # only the committer reveals its commitment
    r = run("eval", "reveal", d, "--as", "mallory", "--ledger", ev["dir"])
    assert r.exit_code == 2 and "only the committer of entry" in r.output
    assert run("eval", "reveal", d, "--as", "lab", "--ledger", ev["dir"]).exit_code == 0
    r = run("eval", "verify", "e1", "--model", iris_model["onnx"], "--data", ev["data"], "--ledger", ev["dir"], "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert abs(res["recomputed"]["accuracy"] - ev["acc"]) < 1e-6 and res["findings"] == []
    # another test set than the committed one is a finding
    other = ev["tmp"] / "other.npz"
    np.savez(other, X=iris_model["x"][:10], y=iris_model["y"][:10])
    r = run("eval", "verify", "e1", "--model", iris_model["onnx"], "--data", other, "--ledger", ev["dir"])
    assert r.exit_code == 1 and "is not the committed one" in r.output


def test_model_commitment_names_the_registered_manifest(ev, iris_model, run):
    import shutil

    from ailedger.provenance.models import register_model
    from ailedger.tlog.ledger import Ledger

    (ev["tmp"] / "m").mkdir()
    shutil.copy(iris_model["onnx"], ev["tmp"] / "m" / "net.onnx")
    with Ledger.open(ev["dir"]) as led:
        root = register_model(led, ev["tmp"] / "m", "iris", led.identities.load("owner", None))["manifest_root"]
    r = run("eval", "commit", "e2", "--role", "model", "--model", iris_model["onnx"], "--scores", ev["scores"],
            "--manifest-root", "iris", "--reveal-by", _at(600), "--as", "owner", "-o", ev["tmp"] / "o",
            "--ledger", ev["dir"])
    assert r.exit_code == 0, r.output
    assert json.loads((ev["tmp"] / "o").read_text())["content"]["manifest_root"] == root
    r = run("eval", "commit", "e2", "--role", "model", "--model", iris_model["onnx"], "--scores", ev["scores"],
            "--manifest-root", "nosuch", "--reveal-by", _at(600), "--as", "owner", "-o", ev["tmp"] / "o2",
            "--ledger", ev["dir"])
    assert r.exit_code == 2 and "no registered model named 'nosuch'" in r.output


def test_claimed_scores_that_do_not_hold(ev, iris_model, run):
    write(ev["scores"], {"accuracy": 0.999})
    m = _commit(run, ev, iris_model, "model", ev["tmp"] / "m.open", _at(600), "owner")
    d = _commit(run, ev, iris_model, "data", ev["tmp"] / "d.open", _at(600), "lab")
    for f, who in ((m, "owner"), (d, "lab")):
        assert run("eval", "reveal", f, "--as", who, "--ledger", ev["dir"]).exit_code == 0
    r = run("eval", "verify", "e1", "--model", iris_model["onnx"], "--data", ev["data"], "--ledger", ev["dir"])
    assert r.exit_code == 1 and "claimed accuracy 0.999 differs from the recomputed" in r.output


def test_reveal_that_does_not_open_its_commitment(ev, iris_model, run):
    from ailedger.tlog.ledger import Ledger

    m = _commit(run, ev, iris_model, "model", ev["tmp"] / "m.open", _at(600), "owner")
    doc = json.loads(m.read_text())
    doc["content"]["scores"] = {"accuracy": doc["content"]["scores"]["accuracy"] + 0.01}  # another claim than the one committed
    with Ledger.open(ev["dir"]) as led:
        n = led.size
    r = run("eval", "reveal", write(ev["tmp"] / "bad.open", doc), "--as", "owner", "--ledger", ev["dir"])
    assert r.exit_code == 1 and "does not open commitment" in r.output
    with Ledger.open(ev["dir"]) as led:
        assert led.size == n


def test_reveal_after_its_deadline(ev, iris_model, run):
    from ailedger.tlog.ledger import Ledger

    m = _commit(run, ev, iris_model, "model", ev["tmp"] / "m.open", _at(1), "owner")
    time.sleep(2.1)
    with Ledger.open(ev["dir"]) as led:
        n = led.size
    r = run("eval", "reveal", m, "--as", "owner", "--ledger", ev["dir"])
    assert r.exit_code == 1 and "deadline" in r.output and "late" in r.output
    with Ledger.open(ev["dir"]) as led:
        assert led.size == n
    r = run("eval", "verify", "e1", "--ledger", ev["dir"])
    assert r.exit_code == 1 and "never revealed" in r.output


def test_bad_deadline(ev, iris_model, run):
    r = run("eval", "commit", "e1", "--role", "data", "--data", ev["data"], "--reveal-by", "tomorrow", "--as", "lab",
            "-o", ev["tmp"] / "x", "--ledger", ev["dir"])
    assert r.exit_code == 2 and "RFC 3339" in r.output


def test_late_or_early_reveals_that_reach_the_log_are_findings(ev, iris_model, run):
    """Reveals written past the CLI's checks (another writer): eval verify still finds them."""
    from ailedger.tlog.ledger import Ledger

    m = _commit(run, ev, iris_model, "model", ev["tmp"] / "m.open", _at(1), "owner")
    opening = json.loads(m.read_text())
    time.sleep(2.1)
    with Ledger.open(ev["dir"]) as led:
        led.append_record("eval.reveal", {"evaluation": "e1", "commit": opening["commit"], "salt": opening["salt"],
                                          "content": opening["content"]}, led.identities.load("owner", None),
                          terms=["eval:e1"])
    # the test set is committed only after the model's reveal: it could have been chosen against the model
    _commit(run, ev, iris_model, "data", ev["tmp"] / "d.open", _at(600), "lab")
    r = run("eval", "verify", "e1", "--ledger", ev["dir"], "--json")
    assert r.exit_code == 1
    err = json.loads(r.output.strip().splitlines()[0])["error"]
    findings = err["findings"]
    assert any("is late" in f for f in findings)
    assert any("was logged after a reveal" in f for f in findings)
