import base64
import hashlib
import json

import pytest

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, ProofError, VerificationError
from ailedger.provenance import (
    commit_dataset,
    normalise_candidate,
    prove_dataset,
    record_key,
    smt,
    verify_dataset_proof_file,
)
from ailedger.provenance.datasets import DatasetIndex, build_index


@pytest.fixture
def jsonl(tmp_path):
    p = tmp_path / "books.jsonl"
    with open(p, "w") as f:
        f.writelines(json.dumps({"title": f"Book {i}", "id": i, "tags": ["a", "b"], "score": i / 4}) + "\n" for i in range(300))
    return p


def test_commit_prove_member_and_absent(ledger, alice, jsonl, tmp_path):
    res = commit_dataset(ledger, [str(jsonl)], "books", alice,
                         source_meta=[{"license": "CC-BY-4.0", "url": "https://example.org/books", "consent": "opt-in"}])
    assert res["records"] == 300
    e = ledger.entry(res["index"])
    assert e.type == "dataset.commit" and e.body["root"] == res["root"]
    assert e.body["sources"][0]["license"] == "CC-BY-4.0" and e.body["sources"][0]["records"] == 300
    # a rights holder's copy, spelled differently (spaces, key order): same canonical leaf
    cand = tmp_path / "mine.json"
    cand.write_text('{ "score": 10.25, "id": 41,  "title": "Book 41", "tags": ["a","b"] }')
    data, info = prove_dataset(ledger, "books", cand.read_bytes())
    assert info["result"] == "member"
    assert info["smt_proof_bytes"] < 1536
    rep = verify_dataset_proof_file(data, cand.read_bytes(), ledger.vkey)
    assert rep["ok"] and rep["result"] == "member" and rep["signer"] == alice.did
    assert rep["key"] == hashlib.sha256(canonical_json(json.loads(cand.read_text()))).hexdigest()
    # a record that is not there: absence, verified
    other = tmp_path / "other.json"
    other.write_text('{"title": "Book 41", "id": 41, "tags": ["a","b"], "score": 10.5}')
    data2, info2 = prove_dataset(ledger, "books", other.read_bytes())
    assert info2["result"] == "absent"
    assert verify_dataset_proof_file(data2, other.read_bytes(), ledger.vkey)["result"] == "absent"
    # the membership proof does not fit another candidate
    with pytest.raises(ProofError):
        verify_dataset_proof_file(data, other.read_bytes(), ledger.vkey)


def test_dishonest_curator_cannot_flip_a_member_to_absent(ledger, alice, jsonl, tmp_path):
    commit_dataset(ledger, [str(jsonl)], "books", alice)
    cand = json.dumps({"title": "Book 7", "id": 7, "tags": ["a", "b"], "score": 7 / 4}).encode()
    data, _ = prove_dataset(ledger, "books", cand)
    head, body = data.split(b"\n", 1)
    doc = json.loads(body)
    (entry,) = doc["proofs"]
    p = smt.decode_proof(base64.b64decode(entry["smt_proof"]))
    for fake in (smt.SmtProof(smt.EMPTY, p.depth, p.siblings),
                 smt.SmtProof(smt.OTHER, p.depth, p.siblings, hashlib.sha256(b"x").digest())):
        fake_entry = dict(entry, result="absent", smt_proof=base64.b64encode(smt.encode_proof(fake)).decode())
        doc2 = dict(doc, result="absent", proofs=[fake_entry])
        forged = head + b"\n" + canonical_json(doc2)
        with pytest.raises(VerificationError):
            verify_dataset_proof_file(forged, cand, ledger.vkey)
    # a claimed result that contradicts the proof is refused
    doc3 = dict(doc, result="absent")
    with pytest.raises(ProofError):
        verify_dataset_proof_file(head + b"\n" + canonical_json(doc3), cand, ledger.vkey)


def test_files_csv_parquet_and_duplicates(ledger, alice, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(20):
        (folder / f"{i}.png").write_bytes(b"PNG" + bytes([i]) * 50)
    (folder / "dup.png").write_bytes(b"PNG" + bytes([3]) * 50)
    csvp = tmp_path / "rows.csv"
    csvp.write_text("name,age\nann,30\nbob,41\n\"c, d\",5\n")
    pqp = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3], "s": ["a", "b", None]}), pqp, row_group_size=2)
    res = commit_dataset(ledger, [str(folder), str(csvp), str(pqp)], "mixed", alice)
    assert res["records_in"] == 21 + 3 + 3 and res["duplicates"] == 1
    # file record: raw bytes; sha256sum of the file is its key
    img = (folder / "5.png").read_bytes()
    data, info = prove_dataset(ledger, "mixed", img)
    assert info["result"] == "member"
    assert verify_dataset_proof_file(data, img, ledger.vkey)["key"] == hashlib.sha256(img).hexdigest()
    # CSV row given as header + row, or as JSON
    for c in (b"name,age\n\"c, d\",5\n", b'{"age": "5", "name": "c, d"}'):
        data, info = prove_dataset(ledger, "mixed", c)
        assert info["result"] == "member", c
        assert verify_dataset_proof_file(data, c, ledger.vkey)["result"] == "member"
    data, info = prove_dataset(ledger, "mixed", b'{"s": null, "x": 3}')
    assert info["result"] == "member"


def test_private_mode(ledger, alice, jsonl):
    res = commit_dataset(ledger, [str(jsonl)], "secret-books", alice, private=True)
    assert ledger.entry(res["index"]).body["leaf"] == "hmac-sha256"
    cand = json.dumps({"title": "Book 3", "id": 3, "tags": ["a", "b"], "score": 0.75}).encode()
    data, info = prove_dataset(ledger, "secret-books", cand)
    assert info["result"] == "member"
    rep = verify_dataset_proof_file(data, cand, ledger.vkey)
    assert rep["result"] == "member" and "curator" in rep["note"]
    # the public key of the record is not what was committed
    assert rep["key"] != record_key(normalise_candidate(cand, "json")).hex()


def test_bad_records_name_file_and_line_and_log_nothing(ledger, alice, tmp_path):
    n0 = ledger.size
    p = tmp_path / "bad.jsonl"
    p.write_text('{"a": 1}\n{"a": 2}\n{"a": \n{"a": 4}\n')
    with pytest.raises(BadInputError, match=r"bad.jsonl line 3"):
        commit_dataset(ledger, [str(p)], "bad", alice)
    c = tmp_path / "bad.csv"
    c.write_text("a,b\n1,2\n3\n")
    with pytest.raises(BadInputError, match=r"bad.csv line 3"):
        commit_dataset(ledger, [str(c)], "bad", alice)
    e = tmp_path / "empty"
    e.mkdir()
    with pytest.raises(BadInputError, match="no files"):
        commit_dataset(ledger, [str(e)], "bad", alice)
    z = tmp_path / "z.jsonl"
    z.write_text("\n\n")
    with pytest.raises(BadInputError, match="no records"):
        commit_dataset(ledger, [str(z)], "bad", alice)
    bp = tmp_path / "broken.parquet"
    bp.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(BadInputError, match="broken.parquet"):
        commit_dataset(ledger, [str(bp)], "bad", alice)
    nu = tmp_path / "latin1.jsonl"
    nu.write_bytes(b'{"a": 1}\n{"a": "caf\xe9"}\n')
    with pytest.raises(BadInputError, match=r"latin1.jsonl line 2"):
        commit_dataset(ledger, [str(nu)], "bad", alice)
    nan = tmp_path / "nan.jsonl"
    nan.write_text('{"a": 1}\n{"a": NaN}\n')
    with pytest.raises(BadInputError, match=r"nan.jsonl line 2"):
        commit_dataset(ledger, [str(nan)], "bad", alice)
    t = tmp_path / "notes.txt"
    t.write_text("x")
    with pytest.raises(BadInputError, match="unknown record format"):
        commit_dataset(ledger, [str(t)], "bad", alice)
    assert ledger.size == n0
    assert not any(x.name.startswith("staging") for x in (ledger.path / "artifacts" / "datasets").iterdir())


def test_sharded_build_equals_single(tmp_path, jsonl):
    """Partitioning (the shards hashed by separate processes) does not change the root."""
    roots = set()
    for P, w in ((1, 1), (3, 2), (5, 2)):
        info = build_index([str(jsonl)], tmp_path / f"ix{P}", partitions_log2=P, workers=w)
        roots.add(info["root"])
        ix = DatasetIndex(tmp_path / f"ix{P}")
        assert ix.root.hex() == info["root"]
        ix.close()
    keys = sorted({record_key(canonical_json(json.loads(l))) for l in jsonl.read_text().splitlines()})
    assert roots == {smt.subtree_root(keys).hex()}


def test_fast_path_equals_canonical_json(tmp_path):
    """The orjson fast path and the exact path give the same leaves, line by line."""
    lines = [
        '{"b": 1, "a": [true, false, null], "c": {"z": "x", "y": -0}}',
        '{"t": "tab\\tnewline\\nquote\\"slash\\/bs\\\\"}',
        '{"u": "caf\u00e9 \u2028 \u00ff", "k\u00e9y": 2}',
        '{"big": 123456789012345678901234567890, "neg": -9223372036854775809}',
        '{"f": 1.0, "g": 1e21, "h": 0.1, "i": 5e-7}',
        '{"esc": "\\u0001\\u001f\\ud83d\\ude00", "\\u00e9": 1}',
        '{"emoji": "\U0001F600", "\U0001F600": "key"}',
        '  {"space": "around"}  ',
        '{"crlf": 1}\r',
        '[1, 2, "three"]',
        '"just a string"',
        '42',
    ]
    p = tmp_path / "t.jsonl"
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = build_index([str(p)], tmp_path / "ix", workers=1)
    expected = sorted({record_key(canonical_json(json.loads(l))) for l in lines})
    assert info["root"] == smt.subtree_root(expected).hex()


def test_shards_hashed_apart_combine(ledger, alice, tmp_path):
    """Two shards hashed separately (as on two machines) commit to the root of the whole set."""
    from ailedger.provenance.datasets import hash_shard

    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(120)))
    b.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(100, 200)))  # 20 shared records
    hash_shard([str(a)], tmp_path / "sa", partitions_log2=2, workers=1)
    hash_shard([str(b)], tmp_path / "sb", partitions_log2=2, workers=1)
    res = commit_dataset(ledger, [], "sharded", alice, shards=[tmp_path / "sa", tmp_path / "sb"])
    whole = build_index([str(a), str(b)], tmp_path / "whole", partitions_log2=2, workers=1)
    assert res["root"] == whole["root"] and res["records"] == 200 and res["duplicates"] == 20
    data, info = prove_dataset(ledger, "sharded", b'{"i": 150}')
    assert info["result"] == "member" and verify_dataset_proof_file(data, b'{"i": 150}', ledger.vkey)["ok"]
    # shards with different partition counts are refused, nothing logged
    hash_shard([str(a)], tmp_path / "sc", partitions_log2=3, workers=1)
    n = ledger.size
    with pytest.raises(BadInputError, match="partition"):
        commit_dataset(ledger, [], "bad", alice, shards=[tmp_path / "sa", tmp_path / "sc"])
    assert ledger.size == n


def test_fast_path_failure_after_many_lines_counts_every_record_once(tmp_path):
    """A line the fast path refuses (whitespace only) far into a block, after several batch-hash slices:
    the block is redone on the exact path and no record is counted twice."""
    n = 5000
    recs = [json.dumps({"i": i, "s": "x" * (i % 7)}) for i in range(n)]
    with_blank = recs[:4321] + ["   "] + recs[4321:]
    p = tmp_path / "blank.jsonl"
    p.write_text("\n".join(with_blank) + "\n")
    info = build_index([str(p)], tmp_path / "ix", workers=1)
    assert info["records_in"] == n
    expected = sorted({record_key(canonical_json(json.loads(r))) for r in recs})
    assert info["root"] == smt.subtree_root(expected).hex()
