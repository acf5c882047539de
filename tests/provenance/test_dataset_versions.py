"""Issue 17: re-committing under a taken name is refused; a new version must name the one it
supersedes, only the name's owner may make one, and proofs / `dataset show` show both versions."""

import base64
import json

import pytest
from click.testing import CliRunner

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import ConflictError, NotAuthorisedError, NotFoundError, VerificationError
from ailedger.provenance import commit_dataset, find_dataset, prove_dataset, verify_dataset_proof_file


@pytest.fixture
def two_files(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(20)))
    b.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(10, 40)))
    return a, b


def _dv():
    # imported per test, so the tests of the behaviour itself run (and fail) on code without these names
    from ailedger.provenance import datasets

    return datasets


def _raw_record(ledger, type_, body, ident, terms):
    """Into the store as another writer (an older log, another program) would put it: no ingest checks."""
    from ailedger.tlog.ledger import entry_terms
    from ailedger.tlog.merkle import leaf_hash
    from ailedger.tlog.stores import LeafRow

    e = ledger.make_entry(type_, body, ident)
    return ledger.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e, terms))])[0].index


def _leftovers(ledger):
    return [x.name for x in (ledger.path / "artifacts" / "datasets").iterdir() if x.name.startswith("staging")]


def test_recommit_under_a_taken_name_is_refused(ledger, alice, two_files):
    a, b = two_files
    first = commit_dataset(ledger, [str(a)], "corpus", alice)
    n = ledger.size
    with pytest.raises(ConflictError, match=r"already committed .*#0.*--supersedes corpus"):
        commit_dataset(ledger, [str(b)], "corpus", alice)
    assert ledger.size == n and not _leftovers(ledger)
    assert find_dataset(ledger, "corpus")[0] == first["index"]
    assert _dv().dataset_owner(ledger, "corpus") == alice.did and _dv().dataset_owner(ledger, "nope") is None


def test_new_version_records_what_it_supersedes_and_only_the_owner_may(ledger, alice, two_files):
    a, b = two_files
    bob = ledger.identities.create("bob")
    v1 = commit_dataset(ledger, [str(a)], "corpus", alice)
    n = ledger.size
    with pytest.raises(ConflictError, match="only did:key:.*may commit a new version"):
        commit_dataset(ledger, [str(b)], "corpus", bob, supersedes="corpus")
    with pytest.raises(NotFoundError):
        commit_dataset(ledger, [str(b)], "other", alice, supersedes="other")
    assert ledger.size == n and not _leftovers(ledger)
    v2 = commit_dataset(ledger, [str(b)], "corpus", alice, supersedes="corpus")
    assert v2["supersedes"] == {"index": v1["index"], "root": v1["root"]}
    assert ledger.entry(v2["index"]).body["supersedes"] == {"index": v1["index"], "root": v1["root"]}
    # a stale reference (not the current version) is refused
    with pytest.raises(ConflictError, match="not the current version"):
        commit_dataset(ledger, [str(a)], "corpus", alice, supersedes=f"#{v1['index']}")
    v3 = commit_dataset(ledger, [str(a)], "corpus", alice, supersedes=v2["root"])
    assert _dv().dataset_versions(ledger, "corpus")["versions"] == [v1["index"], v2["index"], v3["index"]]
    assert find_dataset(ledger, "corpus")[0] == v3["index"]


def test_a_substitute_entry_is_not_a_version(ledger, alice, two_files):
    """An entry signed by someone else under the name (appended around commit_dataset) is ignored by
    name lookups, refused by prove, and listed as rejected."""
    a, _ = two_files
    bob = ledger.identities.create("bob")
    v1 = commit_dataset(ledger, [str(a)], "corpus", alice)
    body = dict(ledger.entry(v1["index"]).body, root="00" * 32)
    with pytest.raises(NotAuthorisedError):  # refused at ingest (docs/authority.md) ...
        ledger.append_record("dataset.commit", body, bob, terms=["dataset:corpus"])
    sub = _raw_record(ledger, "dataset.commit", body, bob, ["dataset:corpus"])  # ... and ignored if it got in
    body2 = dict(ledger.entry(v1["index"]).body, supersedes={"index": 99, "root": "11" * 32})
    stray = ledger.append_record("dataset.commit", body2, alice, terms=["dataset:corpus"]).index
    v = _dv().dataset_versions(ledger, "corpus")
    assert v["versions"] == [v1["index"]] and [r["index"] for r in v["rejected"]] == [sub, stray]
    assert find_dataset(ledger, "corpus")[0] == v1["index"]
    with pytest.raises(ConflictError, match="not a version"):
        prove_dataset(ledger, f"#{sub}", b'{"i": 1}')
    assert _dv().dataset_owner(ledger, "corpus") == alice.did


def test_model_lineage_names_the_real_version_not_a_substitute(ledger, alice, two_files, tmp_path):
    from ailedger.provenance import register_model

    a, _ = two_files
    bob = ledger.identities.create("bob")
    v1 = commit_dataset(ledger, [str(a)], "corpus", alice)
    body = dict(ledger.entry(v1["index"]).body, root="00" * 32)
    _raw_record(ledger, "dataset.commit", body, bob, ["dataset:corpus"])
    m = tmp_path / "m"
    m.mkdir()
    (m / "w.bin").write_bytes(b"w" * 100)
    res = register_model(ledger, m, "m", alice, datasets=["corpus"])
    (ref,) = ledger.entry(res["index"]).body["lineage"]["datasets"]
    assert ref == {"name": "corpus", "index": v1["index"], "root": v1["root"]}


def test_version_chain_rule():
    b0 = {"root": "r0", "rule": {}}
    assert _dv().version_chain([(0, "A", b0), (3, "A", {"root": "r1", "rule": {}, "supersedes": {"index": 0, "root": "r0"}}),
                          (5, "B", {"root": "r2", "rule": {}, "supersedes": {"index": 3, "root": "r1"}}),
                          (6, "A", {"root": "r3", "rule": {}}),
                          (7, "A", {"root": "r4", "rule": {}, "supersedes": {"index": 0, "root": "r0"}}),
                          (8, "A", {"root": "r5"})])["versions"] == [0, 3, 8]


def test_proofs_show_both_versions(ledger, alice, two_files):
    a, b = two_files
    v1 = commit_dataset(ledger, [str(a)], "corpus", alice)
    v2 = commit_dataset(ledger, [str(b)], "corpus", alice, supersedes="corpus")
    cand = b'{"i": 5}'  # only in the first version
    data, info = prove_dataset(ledger, f"#{v1['index']}", cand)
    assert info["result"] == "member" and info["superseded_by"] == v2["index"]
    rep = verify_dataset_proof_file(data, cand, ledger.vkey)
    assert rep["version"]["superseded_by"]["index"] == v2["index"]
    assert f"superseded by #{v2['index']} (root {v2['root']})" in rep["summary"]
    assert "version:    1 of 2" in rep["summary"]
    data, info = prove_dataset(ledger, "corpus", cand)
    rep = verify_dataset_proof_file(data, cand, ledger.vkey)
    assert rep["result"] == "absent" and rep["index"] == v2["index"]
    assert f"supersedes #{v1['index']} (root {v1['root']})" in rep["summary"] and "2 of 2" in rep["summary"]
    # a versions list holding another dataset's entry does not verify
    head, body = data.split(b"\n", 1)
    doc = json.loads(body)
    other = commit_dataset(ledger, [str(a)], "elsewhere", alice)
    doc["versions"] = [{"entry": base64.b64encode(ledger.entry_bytes(other["index"])).decode(),
                        "tlog_proof": ledger.prove(other["index"]).decode()}]
    with pytest.raises(VerificationError):
        verify_dataset_proof_file(head + b"\n" + canonical_json(doc), cand, ledger.vkey)


def test_cli_recommit_exit_2_and_show(tmp_path, two_files):
    from ailedger.cli.main import main
    from ailedger.tlog.ledger import Ledger

    lg = Ledger.init(tmp_path / "ledger", origin="test.example/ledger")
    lg.identities.create("alice")
    lg.identities.create("bob")
    lg.close()
    env = {"AILEDGER_LEDGER": str(tmp_path / "ledger")}
    a, b = two_files

    def run(*args):
        return CliRunner().invoke(main, list(args), env=env)

    assert run("dataset", "commit", str(a), "--name", "c", "--as", "alice").exit_code == 0
    r = run("dataset", "commit", str(b), "--name", "c", "--as", "alice")
    assert r.exit_code == 2 and "already committed" in r.output and "--supersedes c" in r.output
    r = run("dataset", "commit", str(b), "--name", "c", "--as", "bob", "--supersedes", "c")
    assert r.exit_code == 2 and "only did:key:" in r.output
    r = run("dataset", "commit", str(b), "--name", "c", "--as", "alice", "--supersedes", "c")
    assert r.exit_code == 0 and "supersedes #0" in r.output
    r = run("dataset", "show", "#0")
    assert r.exit_code == 0, r.output
    assert "version 1: #0" in r.output and "version 2: #1" in r.output and "WARNING: entry #0 is not the current" in r.output
    r = run("dataset", "show", "c", "--json")
    assert json.loads(r.output)["current"] is True
    cand = tmp_path / "c.json"
    cand.write_text('{"i": 3}')
    r = run("dataset", "prove", "#0", str(cand), "-o", str(tmp_path / "p"))
    assert r.exit_code == 0 and "superseded by #1" in r.output
