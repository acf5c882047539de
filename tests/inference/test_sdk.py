from __future__ import annotations

import json

import pytest

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, NotFoundError, ProofError, SignatureError, VerificationError
from ailedger.inference import (
    ErasedError,
    InferenceTrail,
    ModelRevokedError,
    disclose,
    erase_subject,
    is_model_revoked,
    list_records,
    receipt_proof,
    verify_disclosure,
    verify_receipt_proof,
)
from ailedger.inference.codec import ERASURE_TYPE

from .conftest import grep_tree


def _suspend(led, model="iris", reason="leaks PII"):
    """The real governance kill switch: a one-guardian DAO suspends the model."""
    from ailedger.governance import service as gov

    admin = led.identities.create("admin")
    g1 = led.identities.create("g1")
    gov.name_founders(led, [admin.did])   # the operator names who may found the DAO (log.genesis)
    gov.init_dao(led, admin, "dao", params={"guardians": [g1.did], "guardian_threshold": 1},
                 allocations={admin.did: 10})
    s1 = gov.guardian_cosign(led, g1, model, reason, "n1")
    gov.guardian_suspend(led, g1, model, reason, "n1", [s1])


def test_decorator_records_and_receipt_proves(ledger):
    import pickle

    from sklearn.datasets import load_iris

    clf = pickle.loads((ledger.path.parent / "model" / "model.pkl").read_bytes())
    X = load_iris().data
    with InferenceTrail(ledger, "iris", caller="svc-a") as trail:
        @trail.wrap(subject=lambda row: f"patient-{int(row[0] * 10)}", meta=lambda y: {"class": int(y)})
        def predict(row):
            return clf.predict([row])[0]

        ys = [predict(list(X[i])) for i in range(30)]
        receipts = []
        for i in range(3):
            predict(list(X[i]))
            receipts.append(trail.last_receipt)
        doc = receipts[-1].proof()
    assert len(ys) == 30
    res = verify_receipt_proof(json.loads(json.dumps(doc)), ledger.verifier)
    rec = res["record"]
    assert rec["model"] == "iris" and rec["caller"] == "svc-a" and rec["status"] == "ok"
    assert rec["meta"] == {"class": int(ys[2])}
    assert res["operator"] == ledger.identities.load("inference").did
    # a batch entry in the log, signed by the operator, holding the root over the records
    e = ledger.entry(res["batch_index"])
    assert e.type == "inference.batch" and e.body["count"] == doc["count"]
    assert doc["position"] < doc["count"] <= 33
    assert sum(ledger.entry(i).body["count"] for i, _ in ledger.find(type="inference.batch")) == 33
    # disclosure of that one call matches; its input is the row
    d = disclose(ledger, receipts[-1].id)
    assert json.loads(d["input"]) == list(X[2])
    assert verify_disclosure(doc, d, ledger.verifier)["disclosure"] == "matches"


def test_tampering_is_detected(ledger):
    with InferenceTrail(ledger, "iris") as trail:
        r = trail.record({"x": [1, 2]}, {"y": "a"}, subject="s1")
        trail.record({"x": [3, 4]}, {"y": "b"}, subject="s1")
    doc = receipt_proof(ledger, r.id)
    d = disclose(ledger, r.id)
    # a changed record no longer hashes into the signed batch root
    bad = dict(doc, record=doc["record"].replace('"status":"ok"', '"status":"ko"'))
    with pytest.raises(ProofError):
        verify_receipt_proof(bad, ledger.verifier)
    # a wrong position
    with pytest.raises(ProofError):
        verify_receipt_proof(dict(doc, position=1 - doc["position"]), ledger.verifier)
    # a forged batch entry (root changed) breaks the operator signature
    forged = doc["batch_entry"].replace(json.loads(doc["batch_entry"])["body"]["root"], "00" * 32)
    with pytest.raises(SignatureError):
        verify_receipt_proof(dict(doc, batch_entry=forged), ledger.verifier)
    # a disclosure with another payload or salt fails, naming what was expected
    with pytest.raises(VerificationError) as ei:
        verify_disclosure(doc, dict(d, input='{"x":[1,3]}'), ledger.verifier)
    assert ei.value.expected == json.loads(doc["record"])["in"]
    with pytest.raises(VerificationError):
        verify_disclosure(doc, dict(d, salt="00" * 16), ledger.verifier)
    # the disclosure of another receipt is refused
    with pytest.raises(VerificationError):
        verify_disclosure(doc, dict(d, receipt="0123456789ab-9"), ledger.verifier)


def test_erasure_keeps_records_verifiable_and_removes_payloads(ledger):
    secret_in = "Jane Q. Example, born 1970-01-01, diagnosis ZX-4411"
    secret_out = "approve-loan-7731-for-Jane"
    with InferenceTrail(ledger, "iris", mode="durable") as trail:
        r1 = trail.record({"note": secret_in}, {"decision": secret_out}, subject="jane")
        r2 = trail.record({"note": "other person"}, {"decision": "deny"}, subject="joe")
    doc1 = receipt_proof(ledger, r1.id)
    # payload text never appears in clear anywhere under the ledger directory
    for needle in (secret_in, secret_out, "other person"):
        assert grep_tree(ledger.path, needle.encode()) == []
    assert disclose(ledger, r1.id)["input"] == canonical_json({"note": secret_in}).decode()
    rep = erase_subject(ledger, "jane")
    assert rep["records"] == 1 and rep["receipts"] == [r1.id] and rep["key_destroyed"] is True
    e = ledger.entry(rep["log_index"])
    assert e.type == ERASURE_TYPE and e.body["records"] == 1 and "jane" not in json.dumps(e.body)
    with pytest.raises(NotFoundError):
        disclose(ledger, r1.id)
    # the record and its proof still verify; the other subject is untouched
    assert verify_receipt_proof(doc1, ledger.verifier)["ok"]
    assert disclose(ledger, r2.id)["output"] == '{"decision":"deny"}'
    # erasing again finds nothing more but is still logged
    again = erase_subject(ledger, "jane")
    assert again["records"] == 0 and again["key_destroyed"] is False
    for f in ("keys.db", "payloads.db"):
        assert b"jane" not in (ledger.path / "inference" / f).read_bytes()


def test_erased_error_when_key_gone_but_ciphertext_left(ledger):
    with InferenceTrail(ledger, "iris", mode="durable") as trail:
        r = trail.record([1], [2], subject="ann")
    from ailedger.inference.payloads import PayloadStore

    ps = PayloadStore(ledger.path)
    ps.keys.execute("DELETE FROM subject_keys")  # key destroyed, ciphertext left behind
    ps.close()
    with pytest.raises(ErasedError):
        disclose(ledger, r.id)


def test_unknown_and_revoked_models_are_refused(ledger):
    size = ledger.size
    with pytest.raises(NotFoundError, match="no registered model"):
        InferenceTrail(ledger, "nope")
    with pytest.raises(BadInputError):
        InferenceTrail(ledger, "iris", mode="sometimes")
    trail = InferenceTrail(ledger, "iris", revocation_check=0.05)
    ok = trail.wrap(lambda x: x * 2)
    assert ok(2) == 4
    trail.flush()
    assert is_model_revoked(ledger, "iris") is None
    _suspend(ledger)
    reason = is_model_revoked(ledger, "iris")
    assert reason and "suspended" in reason
    import time

    deadline = time.time() + 5
    while trail._revoked is None and time.time() < deadline:
        trail.flush()
        time.sleep(0.05)
    calls = []
    f = trail.wrap(lambda x: calls.append(x) or x)
    with pytest.raises(ModelRevokedError):
        f(1)
    assert calls == []  # the model was not called, and no record claims it was
    trail.close()
    assert [it["record"]["status"] for it in list_records(ledger, "iris")] == ["ok"]
    with pytest.raises(ModelRevokedError):
        InferenceTrail(ledger, "iris")
    assert ledger.size > size


def test_failed_call_is_recorded_as_error_and_context_manager(ledger):
    with InferenceTrail(ledger, "iris") as trail:
        @trail.wrap
        def boom(x):
            raise ValueError("secret detail")

        with pytest.raises(ValueError):
            boom(1)
        with trail.call([5.1, 3.5, 1.4, 0.2], subject="s") as c:
            c.output = "setosa"
            c.meta = {"score": 0.97}
        with pytest.raises(BadInputError), trail.call([1]):
            pass
    recs = {it["receipt"]: it["record"] for it in list_records(ledger, "iris")}
    assert len(recs) == 2
    err = next(r for r in recs.values() if r["status"] == "error")
    assert err["out"] is None and err["meta"] == {"error": "ValueError"}
    assert "secret detail" not in json.dumps(err)
    assert recs[c.receipt.id]["meta"] == {"score": 0.97}


def test_show_filters_by_time_and_proofs(ledger):
    with InferenceTrail(ledger, "iris") as trail:
        for i in range(5):
            trail.record(i, i + 1)
    items = list_records(ledger, "iris", proofs=True)
    assert len(items) == 5
    for it in items:
        assert verify_receipt_proof(it["proof"], ledger.verifier)["receipt"] == it["receipt"]
    t2 = items[2]["record"]["time"]
    later = list_records(ledger, "iris", t_from=t2)
    assert [it["receipt"] for it in later] == [it["receipt"] for it in items if it["record"]["time"] >= t2]
    assert list_records(ledger, "iris", t_to="2000-01-01") == []
    assert list_records(ledger, "other") == []
    with pytest.raises(BadInputError):
        list_records(ledger, "iris", t_from="yesterday")
    from ailedger.inference import render_html

    html = render_html(items, title="t", vkey=ledger.vkey)
    assert "data:image/png;base64," in html and items[0]["receipt"] in html
    from ailedger.inference.report import render_pdf

    pdf = ledger.path.parent / "r.pdf"
    render_pdf(items, str(pdf), title="t", vkey=ledger.vkey)
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 5000


def test_snapshot_mode_freezes_mutable_inputs(ledger):
    with InferenceTrail(ledger, "iris", snapshot=True) as trail:
        x = [1, 2, 3]
        r = trail.record(x, {"y": 1})
        x.append(4)
    assert disclose(ledger, r.id)["input"] == "[1,2,3]"


def test_audit_and_signatures_still_pass(ledger):
    with InferenceTrail(ledger, "iris") as trail:
        for i in range(100):
            trail.record({"i": i}, i)
    rep = ledger.audit(signatures=True)
    assert rep.ok, rep.problems


def test_writer_failure_fails_closed(ledger):
    """The operator key is revoked in the ledger: the batch cannot be logged, and from then on the
    trail refuses calls before the model runs (no unlogged decisions)."""
    import time

    from ailedger.errors import StorageError

    trail = InferenceTrail(ledger, "iris", flush_interval=0.02)
    calls = []
    f = trail.wrap(lambda x: calls.append(x) or x)
    f(1)
    trail.flush()
    ledger.revoke_identity("inference", reason="key leaked")
    f(2)
    with pytest.raises(StorageError):
        trail.flush()
    deadline = time.time() + 5
    while trail._error is None and time.time() < deadline:
        time.sleep(0.01)
    with pytest.raises(StorageError, match="refused"):
        f(3)
    assert calls == [1, 2] and trail.stats["failed_records"] == 1
    trail._stop = True
    # the revoked operator cannot be used again; another operator can, and its records are proven
    with pytest.raises(BadInputError, match="revoked"):
        InferenceTrail(ledger, "iris")
    with InferenceTrail(ledger, "iris", operator="inference-2") as t2:
        r = t2.record(4, 8)
    assert verify_receipt_proof(receipt_proof(ledger, r.id), ledger.verifier)["ok"]
    # the batch signed by the revoked key never reaches the log; resolving its receipts says why
    rid2 = [it["receipt"] for it in list_records(ledger, "iris") if it["batch_index"] is None]
    assert len(rid2) == 1
    with pytest.raises(BadInputError, match="revoked"):
        receipt_proof(ledger, rid2[0])


def test_concurrent_callers_every_receipt_resolves(ledger):
    import threading

    from ailedger.inference.payloads import inference_dir
    from ailedger.inference.store import RecordStore

    out: list[str] = []
    lock = threading.Lock()
    with InferenceTrail(ledger, "iris", flush_interval=0.005, max_batch=64, max_pending=256) as trail:
        f = trail.wrap(lambda x: x + 1, subject=lambda x: f"s{x % 5}")

        def worker(k):
            mine = []
            for i in range(300):
                f(k * 1000 + i)
                mine.append(trail.last_receipt.id)
            with lock:
                out.extend(mine)

        ts = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    assert len(set(out)) == 1800
    rs = RecordStore(inference_dir(ledger.path))
    try:
        for rid in out:
            got = rs.record(rid)
            assert got is not None and json.loads(got[0])["id"] == rid
    finally:
        rs.close()
    for rid in out[::300]:
        assert verify_receipt_proof(receipt_proof(ledger, rid), ledger.verifier)["ok"]
        assert disclose(ledger, rid)["receipt"] == rid


def test_erasure_overwrites_key_and_ciphertext_bytes(ledger):
    from ailedger.inference.payloads import PayloadStore

    with InferenceTrail(ledger, "iris", mode="durable") as trail:
        for i in range(20):
            trail.record({"i": i}, {"o": i}, subject="zoe")
        trail.record({"i": -1}, {"o": -1}, subject="yan")
    ps = PayloadStore(ledger.path)
    ref = ps.subject_ref("zoe")
    key = bytes(ps.keys.execute("SELECT key FROM subject_keys WHERE ref=?", (ref,)).fetchone()[0])
    cts = [bytes(c) for (c,) in ps.db.execute("SELECT ct FROM groups WHERE ref=?", (ref,))]
    ps.close()
    assert cts
    erase_subject(ledger, "zoe")
    d = ledger.path / "inference"
    blobs = b"".join(p.read_bytes() for p in d.iterdir() if p.is_file())
    assert key not in blobs and ref.encode() not in (d / "payloads.db").read_bytes()
    assert not any(ct[:64] in blobs for ct in cts)
