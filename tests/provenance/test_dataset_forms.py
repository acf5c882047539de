"""Issue 17: canonical candidate forms a rights holder derives from their own copy (CSV line, JSON
object, file bytes), the signed rule, and the docs' worked examples (recomputed here)."""

import hashlib
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, ProofError
from ailedger.provenance import commit_dataset, prove_dataset, verify_dataset_proof_file

DOCS = Path(__file__).resolve().parents[2] / "docs" / "provenance.md"
PEOPLE = 'name,age,city\nAnn,30,"Paris, FR"\nBob,41,Oslo\n'


@pytest.fixture
def people(ledger, alice, tmp_path):
    p = tmp_path / "people.csv"
    p.write_text(PEOPLE)
    return commit_dataset(ledger, [str(p)], "people", alice), p


def _verify(ledger, cand):
    data, info = prove_dataset(ledger, "people", cand)
    rep = verify_dataset_proof_file(data, cand, ledger.vkey)
    assert rep["result"] == info["result"]
    return rep


def test_a_raw_csv_line_is_a_candidate(ledger, people):
    rep = _verify(ledger, b'Ann,30,"Paris, FR"\n')
    key = hashlib.sha256(b'{"age":"30","city":"Paris, FR","name":"Ann"}').hexdigest()
    assert rep["result"] == "member" and rep["key"] == key and rep["forms"] == ["csv-cells-v1"]
    assert f"member under normal form csv-cells-v1 (key = {key})" in rep["summary"]
    assert "under the committed header name,age,city" in rep["summary"]
    # with its header line, as a JSON object of strings, or re-typed with a JSON number: the same row
    for cand in (PEOPLE.splitlines()[0].encode() + b"\nBob,41,Oslo\n", b'{"name": "Bob", "age": "41", "city": "Oslo"}',
                 b'{"city": "Oslo", "name": "Bob", "age": 41}'):
        assert _verify(ledger, cand)["result"] == "member", cand


def test_a_retyped_row_gets_an_absence_that_names_its_form_and_key(ledger, people):
    rep = _verify(ledger, b'{"name": "Ann", "age": 30.0, "city": "Paris, FR"}')
    key = hashlib.sha256(b'{"age":"30.0","city":"Paris, FR","name":"Ann"}').hexdigest()
    assert rep["result"] == "absent"
    assert f"absent under normal form csv-cells-v1 (key = {key})" in rep["summary"]
    assert "a copy typed differently" in rep["summary"]


def test_a_candidate_no_committed_form_applies_to(ledger, people, tmp_path):
    with pytest.raises(BadInputError, match="csv-cells-v1"):
        prove_dataset(ledger, "people", b"\xff\xfe binary")
    with pytest.raises(BadInputError, match="csv-cells-v1"):
        prove_dataset(ledger, "people", b'{"nested": {"a": 1}}')
    # verifying some proof against such a candidate fails (exit 1), it is no "absent"
    data, _ = prove_dataset(ledger, "people", b"Ann,30,x\n")
    with pytest.raises(ProofError, match="cannot be read"):
        verify_dataset_proof_file(data, b"\xff\xfe binary", ledger.vkey)


def test_the_commit_signs_its_rule_headers_and_digests(ledger, people):
    res, path = people
    b = ledger.entry(res["index"]).body
    assert b["rule"] == {"version": "ailedger-dataset-rule/v1", "key": "sha256", "forms": ["csv-cells-v1"]}
    (s,) = b["sources"]
    assert s["form"] == "csv-cells-v1" and s["header"] == ["name", "age", "city"]
    assert s["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest() and s["size"] == len(path.read_bytes())


def test_jsonl_text_and_image_forms(ledger, alice, tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "hello.txt").write_bytes(b"hello world\n")
    (folder / "pixel.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    jl = tmp_path / "books.jsonl"
    jl.write_text('{"title": "Dune", "year": 1965, "price": 9.5}\n')
    commit_dataset(ledger, [str(folder), str(jl)], "mixed", alice)

    def check(cand):
        data, _ = prove_dataset(ledger, "mixed", cand)
        return verify_dataset_proof_file(data, cand, ledger.vkey)

    rep = check(b'{ "title": "Dune", "year": 1965, "price": 9.50 }')
    assert rep["result"] == "member" and rep["forms"] == ["json-jcs-v1"]
    assert check(b"hello world\n")["key"] == hashlib.sha256(b"hello world\n").hexdigest()
    assert check(b"\x89PNG\r\n\x1a\n")["result"] == "member"
    rep = check(b"hello world")  # no final newline: other bytes
    assert rep["result"] == "absent"
    assert f"absent under normal form bytes-v1 (key = {hashlib.sha256(b'hello world').hexdigest()})" in rep["summary"]


def test_cli_record_option(tmp_path):
    from ailedger.cli.main import main
    from ailedger.tlog.ledger import Ledger

    lg = Ledger.init(tmp_path / "ledger", origin="test.example/ledger")
    lg.identities.create("alice")
    vk = tmp_path / "vkey"
    vk.write_text(lg.vkey + "\n")
    lg.close()
    env = {"AILEDGER_LEDGER": str(tmp_path / "ledger")}
    p = tmp_path / "people.csv"
    p.write_text(PEOPLE)
    run = CliRunner().invoke
    assert run(main, ["dataset", "commit", str(p), "--name", "people", "--as", "alice"], env=env).exit_code == 0
    pf = tmp_path / "p"
    r = run(main, ["dataset", "prove", "people", "--record", 'Ann,30,"Paris, FR"', "-o", str(pf)], env=env)
    assert r.exit_code == 0 and "member under normal form csv-cells-v1" in r.output, r.output
    r = run(main, ["dataset", "verify", str(pf), "--record", 'Ann,30,"Paris, FR"', "--vkey", str(vk)], env=env)
    assert r.exit_code == 0 and "IS in dataset people" in r.output, r.output
    r = run(main, ["dataset", "verify", str(pf), "--record", "Ann,31,x", "--vkey", str(vk)], env=env)
    assert r.exit_code == 1
    r = run(main, ["dataset", "prove", "people", "--record", "one field", "-o", str(tmp_path / "q")], env=env)
    assert r.exit_code == 2 and "not a record under any normal form" in r.output and not (tmp_path / "q").exists()
    r = run(main, ["dataset", "prove", "people", "-o", str(tmp_path / "q2")], env=env)
    assert r.exit_code == 2 and "FILE or as --record" in r.output and not (tmp_path / "q2").exists()


def _docs_examples():
    """The worked examples of docs/provenance.md: (input as the rights holder has it, normal form)."""
    return [
        ("csv", b'Ann,30,"Paris, FR"', b'{"age":"30","city":"Paris, FR","name":"Ann"}'),
        ("csv", b'{"name": "Ann", "age": 30, "city": "Paris, FR"}', b'{"age":"30","city":"Paris, FR","name":"Ann"}'),
        ("csv", b'{"name": "Ann", "age": 30.0, "city": "Paris, FR"}',
         b'{"age":"30.0","city":"Paris, FR","name":"Ann"}'),
        ("jsonl", b'{ "title": "Dune", "year": 1965, "price": 9.50 }', b'{"price":9.5,"title":"Dune","year":1965}'),
        ("text", b"hello world\n", b"hello world\n"),
        ("image", b"\x89PNG\r\n\x1a\n", b"\x89PNG\r\n\x1a\n"),
    ]


def test_docs_worked_examples_are_what_the_code_computes():
    from ailedger.provenance.dataset_rule import FORM_BYTES, FORM_CSV, FORM_JSON, Rule, readings

    docs = DOCS.read_text()
    rules = {"csv": Rule("sha256", (FORM_CSV,), (("name", "age", "city"),)), "jsonl": Rule("sha256", (FORM_JSON,)),
             "text": Rule("sha256", (FORM_BYTES,)), "image": Rule("sha256", (FORM_BYTES,))}
    for kind, given, normal in _docs_examples():
        (r,) = readings(given, rules[kind])
        assert r.normal == normal, (kind, given)
        key = hashlib.sha256(r.normal).hexdigest()
        assert key in docs, f"docs/provenance.md lacks the key {key} of the {kind} example {given!r}"
        if kind in ("csv", "jsonl"):
            assert r.normal.decode() in docs, r.normal
    # every 64-hex key in the worked-examples section is one of these
    section = docs.split("#### Worked examples", 1)[1].split("\n### ", 1)[0]
    computed = {hashlib.sha256(n).hexdigest() for _, _, n in _docs_examples()}
    assert set(re.findall(r"\b[0-9a-f]{64}\b", section)) == computed
    assert canonical_json(json.loads(b'{"b": 1, "a": 2}')) == b'{"a":2,"b":1}'


def test_shards_from_an_older_version_are_refused(ledger, alice, tmp_path):
    """A shard without the CSV header / file digest the signed rule and Croissant need: hash it again."""
    from ailedger.provenance.datasets import hash_shard

    p = tmp_path / "people.csv"
    p.write_text(PEOPLE)
    hash_shard([str(p)], tmp_path / "s", partitions_log2=1, workers=1)
    meta = json.loads((tmp_path / "s" / "shard.json").read_text())
    assert meta["sources"][0]["header"] == ["name", "age", "city"]
    del meta["sources"][0]["header"]
    (tmp_path / "s" / "shard.json").write_text(json.dumps(meta))
    n = ledger.size
    with pytest.raises(BadInputError, match="older version"):
        commit_dataset(ledger, [], "people", alice, shards=[tmp_path / "s"])
    assert ledger.size == n
