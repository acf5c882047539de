"""Issue 17: an absence proof cannot be forged for a member (whatever rule the prover picks), and
every field the verifier shows is verified (an edited one fails)."""

import base64
import hashlib
import hmac
import itertools
import json

import pytest
from click.testing import CliRunner

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import VerificationError
from ailedger.provenance import commit_dataset, prove_dataset, smt, verify_dataset_proof_file
from ailedger.provenance.datasets import open_index

V1 = "ailedger-dataset-proof/v1"


def _v1_file(ledger, idx, normalisation, key, p, result="absent", extra=None):
    """A v1 proof file exactly as the old `dataset prove --normalisation X` wrote it."""
    doc = {"type": V1, "dataset": ledger.entry(idx).body["name"], "index": idx,
           "entry": base64.b64encode(ledger.entry_bytes(idx)).decode(), "tlog_proof": ledger.prove(idx).decode(),
           "normalisation": normalisation, "leaf": ledger.entry(idx).body["leaf"], "result": result,
           "smt_proof": base64.b64encode(smt.encode_proof(p)).decode(), **(extra or {})}
    return (V1 + "\n").encode() + canonical_json(doc) + b"\n"


def _prove_key(ledger, idx, key):
    ix = open_index(ledger, idx, ledger.entry(idx).body)
    try:
        p = ix.prove(key)
        member = smt.verify_proof(ix.root, key, p)
    finally:
        ix.close()
    return p, member


@pytest.fixture
def books(ledger, alice, tmp_path):
    p = tmp_path / "books.jsonl"
    p.write_text("".join(json.dumps({"title": f"Book {i}", "id": i}) + "\n" for i in range(100)))
    res = commit_dataset(ledger, [str(p)], "books", alice)
    return res["index"], json.dumps({"title": "Book 7", "id": 7}).encode()


def test_issue_repro_bytes_normalisation_absence_for_a_member_is_refused(ledger, books, tmp_path):
    """The review's reproduction: JSONL committed with JSON normalisation, a proof made with
    normalisation "bytes" for a member said "NOT in dataset" (exit 0)."""
    idx, member = books
    key = hashlib.sha256(member).digest()  # the raw bytes, not the committed normal form
    p, is_member = _prove_key(ledger, idx, key)
    assert not is_member  # the raw-bytes key is indeed not in the tree: an honest-looking absence proof
    forged = _v1_file(ledger, idx, "bytes", key, p)
    with pytest.raises(VerificationError) as ei:
        verify_dataset_proof_file(forged, member, ledger.vkey)
    assert ei.value.expected is not None and ei.value.found == "bytes"
    # the same through the generic verifier's CLI: exit 1, not "NOT in dataset" with exit 0
    from ailedger.cli.main import main

    pf, cand, vk = tmp_path / "b.proof", tmp_path / "member.json", tmp_path / "vkey"
    pf.write_bytes(forged)
    cand.write_bytes(member)
    vk.write_text(ledger.vkey + "\n")
    r = CliRunner().invoke(main, ["verify", str(pf), "--candidate", str(cand), "--vkey", str(vk)])
    assert r.exit_code == 1, r.output
    assert "NOT in" not in r.output


def _alternative_normals(candidate: bytes) -> list[bytes]:
    """Every normal form a dishonest prover might pick for a candidate."""
    out = [candidate, candidate.strip(), candidate + b"\n"]
    try:
        v = json.loads(candidate)
        out += [canonical_json(v), json.dumps(v).encode(), json.dumps(v, sort_keys=True).encode()]
        if isinstance(v, dict):
            out.append(canonical_json({k: str(x) for k, x in v.items()}))
    except ValueError:
        pass
    return list(dict.fromkeys(out))


def _assert_never_absent(ledger, idx, candidate: bytes) -> int:
    """Try every alternative rule for a member; each proof must fail or prove membership."""
    e = ledger.entry(idx)
    secret = b"s" * 32
    tried = 0
    alternatives = []
    for normal in _alternative_normals(candidate):
        for key in (hashlib.sha256(normal).digest(), hmac.digest(secret, normal, "sha256")):
            p, is_member = _prove_key(ledger, idx, key)
            alternatives.append((key, p, "member" if is_member else "absent"))
    # v1 files (the format the old `dataset prove --normalisation X` wrote) under each normalisation and leaf mode
    for (key, p, res), norm, leaf in itertools.product(alternatives, ("bytes", "json"), ("sha256", "hmac-sha256")):
        extra = {"leaf": leaf} if leaf != e.body["leaf"] else {}
        if leaf != "sha256":
            extra["key"] = key.hex()
        tried += _check(_v1_file(ledger, idx, norm, key, p, res, extra), candidate, ledger)
    # v2 files: every reading number, every form label, with and without the stated key
    honest, _ = prove_dataset(ledger, f"#{idx}", candidate)
    good = json.loads(honest.split(b"\n", 1)[1])
    head = honest.split(b"\n", 1)[0]
    forms = ["bytes-v1", "csv-cells-v1", "json-jcs-v1", "parquet-json-v1"]
    form_sets = [[f] for f in forms] + [sorted(forms), list(good["proofs"][0]["forms"])]
    for (key, p, res), reading, fs, with_key in itertools.product(alternatives, range(4), form_sets, (True, False)):
        entry = {"reading": reading, "forms": fs, "result": res,
                 "smt_proof": base64.b64encode(smt.encode_proof(p)).decode()}
        if with_key:
            entry["key"] = key.hex()
        doc = dict(good, result=res, proofs=[entry])
        tried += _check(head + b"\n" + canonical_json(doc), candidate, ledger)
    return tried


def _check(data, candidate, ledger) -> int:
    try:
        rep = verify_dataset_proof_file(data, candidate, ledger.vkey)
    except VerificationError:
        return 1
    assert rep["result"] == "member", rep["summary"]
    return 1


def test_every_alternative_rule_for_a_member_fails_or_proves_membership(ledger, alice, tmp_path):
    folder = tmp_path / "texts"
    folder.mkdir()
    for i in range(12):
        (folder / f"{i}.txt").write_bytes(f"text number {i}\n".encode())
    (folder / "doc.json").write_bytes(b'{"title": "Book 3", "id": 3}')  # a file whose bytes are also JSON
    jl = tmp_path / "books.jsonl"
    jl.write_text("".join(json.dumps({"title": f"Book {i}", "id": i}) + "\n" for i in range(40)))
    cs = tmp_path / "people.csv"
    cs.write_text("name,age\n" + "".join(f"p{i},{20 + i}\n" for i in range(30)))
    res = commit_dataset(ledger, [str(folder), str(jl), str(cs)], "mixed", alice)
    members = [b'{"id": 12, "title": "Book 12"}', (folder / "5.txt").read_bytes(), (folder / "doc.json").read_bytes(),
               b"p4,24\n", b'{"name": "p4", "age": "24"}', b'{"name": "p4", "age": 24}']
    tried = sum(_assert_never_absent(ledger, res["index"], m) for m in members)
    assert tried > 1000


def test_legacy_entry_without_rule_is_read_under_the_rule_it_implied(ledger, alice, books):
    """An entry made before the rule was recorded (no `rule`, no `form`): its sources' formats imply
    the forms; the bytes-normalisation forgery fails for it too, and honest proofs still verify."""
    idx, member = books
    body = json.loads(json.dumps(ledger.entry(idx).body))
    body.pop("rule")
    for s in body["sources"]:
        s.pop("form"), s.pop("sha256", None), s.pop("size", None)
    body["name"] = "old-books"
    body["normalisation"] = {"files": "bytes", "jsonl": "json", "csv": "json", "parquet": "json"}
    old = ledger.append_record("dataset.commit", body, alice, terms=["dataset:old-books"]).index
    key = hashlib.sha256(member).digest()
    p, _ = _prove_key(ledger, old, key)
    with pytest.raises(VerificationError):
        verify_dataset_proof_file(_v1_file(ledger, old, "bytes", key, p), member, ledger.vkey)
    data, info = prove_dataset(ledger, "old-books", member)
    rep = verify_dataset_proof_file(data, member, ledger.vkey)
    assert info["result"] == rep["result"] == "member" and "implied" in rep["rule"]["version"]
    other = b'{"title": "Book 7", "id": 8}'
    data, info = prove_dataset(ledger, "old-books", other)
    assert verify_dataset_proof_file(data, other, ledger.vkey)["result"] == "absent"


def test_absence_must_cover_every_reading(ledger, alice, tmp_path):
    """A candidate with several readings (here a file that is also JSON, in a set of files and JSON
    lines): an absence proof that leaves one reading out fails."""
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"\x00\x01")
    jl = tmp_path / "r.jsonl"
    jl.write_text('{"a": 1}\n')
    res = commit_dataset(ledger, [str(folder), str(jl)], "two", alice)
    cand = b'{"a": 2}'
    data, info = prove_dataset(ledger, "two", cand)
    assert info["result"] == "absent" and len(info["readings"]) == 2
    rep = verify_dataset_proof_file(data, cand, ledger.vkey)
    assert [r["forms"] for r in rep["readings"]] == [["bytes-v1"], ["json-jcs-v1"]]
    head, body = data.split(b"\n", 1)
    doc = json.loads(body)
    for keep in ([0], [1]):
        cut = dict(doc, proofs=[doc["proofs"][i] for i in keep])
        with pytest.raises(VerificationError, match="every reading"):
            verify_dataset_proof_file(head + b"\n" + canonical_json(cut), cand, ledger.vkey)
    assert res["forms"] == ["bytes-v1", "json-jcs-v1"]


def _edits(doc, ledger):
    """(what, edited doc) for every field the verifier shows or uses."""
    other_idx = doc["index"] - 1
    yield "index", dict(doc, index=doc["index"] + 1)
    yield "index (another real entry)", dict(doc, index=other_idx)
    yield "index (string)", dict(doc, index=str(doc["index"]))
    yield "index (boolean)", dict(doc, index=True)  # the entry is #1, and True == 1 in Python
    yield "dataset", dict(doc, dataset="something-else")
    yield "result", dict(doc, result="absent" if doc["result"] == "member" else "member")
    e0 = doc["proofs"][0]
    yield "reading", dict(doc, proofs=[dict(e0, reading=e0["reading"] + 1)])
    yield "forms", dict(doc, proofs=[dict(e0, forms=["bytes-v1"])])
    yield "key", dict(doc, proofs=[dict(e0, key=hashlib.sha256(b"x").hexdigest())])
    yield "entry result", dict(doc, proofs=[dict(e0, result="absent" if e0["result"] == "member" else "member")])
    p = smt.decode_proof(base64.b64decode(e0["smt_proof"]))
    sib = list(p.siblings)
    sib[0] = hashlib.sha256(b"y").digest()
    yield "smt_proof", dict(doc, proofs=[dict(e0, smt_proof=base64.b64encode(
        smt.encode_proof(smt.SmtProof(p.kind, p.depth, tuple(sib), p.other_key))).decode())])
    yield "added leaf", dict(doc, leaf="hmac-sha256")
    yield "added normalisation", dict(doc, normalisation="bytes")
    yield "added records", dict(doc, records=1)
    yield "added note", dict(doc, proofs=[dict(e0, note="trust me")])
    yield "tlog_proof of another entry", dict(doc, tlog_proof=ledger.prove(other_idx).decode())
    yield "entry of another dataset", dict(doc, entry=base64.b64encode(ledger.entry_bytes(other_idx)).decode(),
                                           tlog_proof=ledger.prove(other_idx).decode())


@pytest.mark.parametrize("which", ["member", "absent"])
def test_every_displayed_field_is_verified(ledger, alice, tmp_path, which):
    from ailedger.cli.main import main

    a = tmp_path / "a.jsonl"
    a.write_text('{"x": 1}\n{"x": 2}\n')
    commit_dataset(ledger, [str(a)], "first", alice)
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(30)))
    commit_dataset(ledger, [str(b)], "second", alice)
    cand = b'{"i": 3}' if which == "member" else b'{"i": 300}'
    data, _ = prove_dataset(ledger, "second", cand)
    rep = verify_dataset_proof_file(data, cand, ledger.vkey)
    assert rep["result"] == which and rep["index"] == 1 and f"#{rep['index']} " in rep["summary"]
    head, body = data.split(b"\n", 1)
    doc = json.loads(body)
    (tmp_path / "c").write_bytes(cand)
    (tmp_path / "vk").write_text(ledger.vkey + "\n")
    n = 0
    for what, edited in _edits(doc, ledger):
        forged = head + b"\n" + canonical_json(edited)
        with pytest.raises(VerificationError):
            verify_dataset_proof_file(forged, cand, ledger.vkey)
            pytest.fail(f"edited {what} still verifies")
        (tmp_path / "p").write_bytes(forged)
        r = CliRunner().invoke(main, ["verify", str(tmp_path / "p"), "--candidate", str(tmp_path / "c"),
                                      "--vkey", str(tmp_path / "vk")])
        assert r.exit_code == 1, (what, r.output)
        n += 1
    assert n == 17


def test_summary_shows_only_verified_values(ledger, alice, tmp_path):
    """Each value printed is the signed entry's, the inclusion proof's or recomputed from the candidate."""
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(30)))
    res = commit_dataset(ledger, [str(b)], "second", alice)
    cand = b'{"i":  3}'
    data, _ = prove_dataset(ledger, "second", cand)
    rep = verify_dataset_proof_file(data, cand, ledger.vkey)
    e = ledger.entry(res["index"])
    key = hashlib.sha256(canonical_json({"i": 3})).hexdigest()
    s = rep["summary"]
    assert f"dataset second ({e.body['records']} records, root {e.body['root']})" in s
    assert f"#{res['index']} (dataset.commit) signed by {e.signer} at {e.time}" in s
    assert f"member under normal form json-jcs-v1 (key = {key})" in s
