"""Three-party MPC inference (MPyC on 127.0.0.1:18320-18399): agreement, commitments, audit, faults."""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal

import pytest

from ailedger.errors import BadInputError, NetworkError, VerificationError
from ailedger.private import audit_run, registered_model, run_mpc
from ailedger.private.mpc import COMMIT_TYPE


def _ids(ledger):
    return tuple(ledger.identities.load(n) for n in ("owner", "client", "helper"))


def _commits(ledger):
    return [e for _, e in ledger.find(type=COMMIT_TYPE)]


@pytest.mark.parametrize(("kind", "port"), [("logreg", 18320), ("mlp", 18325)])
def test_three_parties_agree_with_plaintext_and_each_logs_a_commitment(ledger, workdir, digits_test, kind, port):
    Xte, _ = digits_test
    reg = registered_model(ledger, f"digits-{kind}", workdir / kind)
    row = 5
    res = run_mpc(ledger, reg, Xte[row], base_port=port, identities=_ids(ledger))
    assert res["class"] == int(reg.model.predict(Xte[row:row + 1])[0])
    commits = _commits(ledger)
    assert [e.body["role"] for e in commits] == ["owner", "client", "helper"]
    assert [e.signer for e in commits] == [i.did for i in _ids(ledger)]
    owner = commits[0].body
    assert owner["manifest_root"] == reg.manifest_root and owner["model_index"] == reg.index
    assert all(e.body["run"] == res["run"] for e in commits)
    audit = audit_run(ledger, res["run"], reg)
    assert audit["ok"] and audit["model"] == f"digits-{kind}"


def test_the_audit_fails_for_another_model(ledger, workdir, digits_test):
    Xte, _ = digits_test
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")
    res = run_mpc(ledger, reg, Xte[3], base_port=18360, identities=_ids(ledger))  # docs: 18330
    other = registered_model(ledger, "digits-mlp", workdir / "mlp")
    with pytest.raises(VerificationError, match="names model manifest"):
        audit_run(ledger, res["run"], other)
    # a folder that claims the registered manifest but holds other weights
    with pytest.raises(VerificationError, match="not the weights file the owner committed to"):
        audit_run(ledger, res["run"], dataclasses.replace(reg, folder=workdir / "mlp"))
    with pytest.raises(BadInputError, match="no mpc.commit entries"):
        audit_run(ledger, "0" * 32, reg)


def test_an_owner_sharing_other_weights_than_the_registered_model_is_caught(ledger, workdir, digits_test, tmp_path):
    """The owner's party reads a tampered weights file while the run binds the registered model: the
    fingerprint the parties open does not match, the run fails and nothing is logged."""
    import numpy as np

    Xte, _ = digits_test
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")
    bad = tmp_path / "tampered"
    shutil.copytree(workdir / "logreg", bad)
    with np.load(bad / "weights.npz") as z:
        arrays = {k: z[k].copy() for k in z.files}
    arrays["W0"][10, 3] += 0.25
    with open(bad / "weights.npz", "wb") as f:
        np.savez(f, **arrays)
    size = ledger.size
    with pytest.raises(VerificationError, match="fingerprint mismatch"):
        run_mpc(ledger, dataclasses.replace(reg, folder=bad), Xte[0], base_port=18335, identities=_ids(ledger))
    assert ledger.size == size and _commits(ledger) == []


def test_a_party_dropping_out_aborts_the_run_and_nothing_is_logged(ledger, workdir, digits_test):
    Xte, _ = digits_test
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")
    size = ledger.size

    def kill_helper(pids):
        os.kill(pids[2], signal.SIGKILL)

    with pytest.raises(NetworkError, match=r"MPC party 2 \(helper\) dropped out .*nothing was logged"):
        run_mpc(ledger, reg, Xte[0], base_port=18340, identities=_ids(ledger), on_started=kill_helper)
    assert ledger.size == size and _commits(ledger) == []


def test_a_party_that_never_answers_hits_the_deadline(ledger, workdir, digits_test):
    Xte, _ = digits_test
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")

    def stall_client(pids):
        os.kill(pids[1], signal.SIGSTOP)  # alive but silent; killed by the abort

    with pytest.raises(NetworkError, match=r"deadline waiting for party .*1 \(client\)"):
        run_mpc(ledger, reg, Xte[0], base_port=18345, identities=_ids(ledger), on_started=stall_client, timeout=2)
    assert _commits(ledger) == []


def test_bad_input_is_refused_before_any_party_starts(ledger, workdir):
    reg = registered_model(ledger, "digits-logreg", workdir / "logreg")
    with pytest.raises(BadInputError, match="64 numbers"):
        run_mpc(ledger, reg, [0.1] * 63, identities=_ids(ledger))
    with pytest.raises(BadInputError, match="base_port"):
        run_mpc(ledger, reg, [0.1] * 64, base_port=80, identities=_ids(ledger))
