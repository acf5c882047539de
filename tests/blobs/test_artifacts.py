"""model/dataset push and pull through their ledger records (services/blobs/artifacts.py)."""

import json
import os

import pytest

from ailedger.blobs.artifacts import pull_dataset, pull_model, push_dataset, push_model
from ailedger.errors import VerificationError
from ailedger.provenance import commit_dataset, register_model


def make_model(d):
    (d / "sub").mkdir(parents=True)
    (d / "config.json").write_text('{"layers": 2}')
    (d / "weights.bin").write_bytes(os.urandom(300_000))
    (d / "sub" / "tok.txt").write_text("a b c\n")
    return d


def same_tree(a, b):
    fa = sorted(str(p.relative_to(a)) for p in a.rglob("*"))
    fb = sorted(str(p.relative_to(b)) for p in b.rglob("*"))
    return fa == fb and all((a / r).read_bytes() == (b / r).read_bytes() for r in fa if (a / r).is_file())


def test_model_push_pull(ledger, people, make_nodes, tmp_path):
    nodes = [n.url for n in make_nodes(4)]
    m = make_model(tmp_path / "m")
    register_model(ledger, m, "tiny", people["alice"])
    r = push_model(ledger, "tiny", str(m), nodes, people["alice"], k=2, n=4, readers=["bob"])
    assert ledger.entry(r["attach_index"]).type == "blob.attach"
    out = tmp_path / "pulled"
    got = pull_model(ledger, "tiny", str(out), people["bob"])
    assert got["verified"] and same_tree(m, out)
    # a local copy that differs from the registration is not stored
    (m / "weights.bin").write_bytes(os.urandom(10))
    with pytest.raises(VerificationError):
        push_model(ledger, "tiny", str(m), nodes, people["alice"], k=2, n=4)


def test_dataset_push_pull(ledger, people, make_nodes, tmp_path):
    nodes = [n.url for n in make_nodes(3)]
    src = tmp_path / "data.jsonl"
    src.write_text("".join(json.dumps({"id": i, "text": f"row {i}"}) + "\n" for i in range(50)))
    commit_dataset(ledger, [str(src)], "rows", people["alice"], workers=1)
    push_dataset(ledger, "rows", [str(src)], nodes, people["alice"], k=2, n=3)
    out = tmp_path / "pulled"
    r = pull_dataset(ledger, "rows", str(out), people["alice"])
    assert r["verified"] and (out / "data.jsonl").read_bytes() == src.read_bytes()
    other = tmp_path / "other.jsonl"
    other.write_text('{"id": 1}\n')
    with pytest.raises(VerificationError):
        push_dataset(ledger, "rows", [str(other)], nodes, people["alice"], k=2, n=3)


def test_pull_refuses_a_blob_that_is_not_the_registered_model(ledger, people, make_nodes, tmp_path):
    nodes = [n.url for n in make_nodes(3)]
    a, b = make_model(tmp_path / "a"), make_model(tmp_path / "b")
    ra = register_model(ledger, a, "model-a", people["alice"])
    register_model(ledger, b, "model-b", people["alice"])
    rb = push_model(ledger, "model-b", str(b), nodes, people["alice"], k=2, n=3)
    # someone attaches model-b's stored copy to model-a's record
    ledger.append_record("blob.attach", {"artifact": "model", "name": "model-a", "record": ra["index"],
                                         "cid": rb["cid"], "put": rb["put_index"]}, people["alice"],
                         terms=[f"attach:model:{ra['index']}"])
    out = tmp_path / "pulled"
    with pytest.raises(VerificationError):
        pull_model(ledger, "model-a", str(out), people["alice"])
    assert not out.exists() and not (tmp_path / "pulled.part").exists()
