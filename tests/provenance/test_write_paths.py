"""Datasets and models logged by any write path are found like those the service logged.

A curator may commit a dataset or register a model from another program: sign the entry and POST it to
`ailedger serve` (`/v1/entries`).  Readers used to find names and lineage only through index terms the
service wrote beside its own entries (``dataset:``, ``manifest:``, ``base:``, ``trained-on:``), so an
entry logged over HTTP was invisible to `find_dataset`, to the name-ownership rule (a stranger could then
take the name), to lineage and to `model verify`.  These tests run the real server."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from ailedger.encoding.records import build_entry
from ailedger.errors import ConflictError
from ailedger.provenance import (
    commit_dataset,
    find_dataset,
    find_model,
    hash_model_dir,
    lineage_graph,
    register_model,
    verify_model,
)
from ailedger.provenance.datasets import current_dataset, dataset_owner, dataset_versions
from ailedger.tlog.ledger import Ledger, entry_terms
from tests.http.helpers import Key, Server, now_str
from tests.provenance.conftest import write_safetensors


def _signed(ident, type_, body):
    return build_entry(type_, body, ident.did, now_str(), ident.sign).to_dict()


def _dataset_body(tmp_path, name):
    """The body a curator's own program would sign: here made by committing in a scratch ledger."""
    src = tmp_path / f"{name}.jsonl"
    src.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(30)))
    with Ledger.init(tmp_path / f"scratch-{name}", origin="scratch.example/x") as led:
        who = led.identities.create("curator")
        idx = commit_dataset(led, [str(src)], name, who)["index"]
        return led.entry(idx).body


def _model_dir(tmp_path, name):
    d = tmp_path / name
    d.mkdir()
    write_safetensors(d / "model.safetensors", {"w": ("F32", (8, 8), os.urandom(256))})
    return d


def _model_body(path, name, *, datasets=(), base=None):
    """A ``model.register`` body as a client computes it (the same fields `register_model` signs)."""
    m = hash_model_dir(path)
    return {"name": name,
            "manifest": {"format": "ailedger-manifest/v1", "root": m.root.hex(), "chunk_size": m.chunk_size,
                         "files": len(m.files), "bytes": m.total_bytes, "doc_sha256": "00" * 32},
            "lineage": {"datasets": list(datasets), "base_model": base, "code": None, "hyperparameters": {}},
            "metadata": {},
            "files": [{"path": f.path, "size": f.size, "root": f.root.hex()} for f in m.files]}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("write-paths")
    d = tmp / "ledger"
    with Ledger.init(d, origin="test.example/write-paths") as led:
        alice, _ = led.new_identity("alice")
    s = Server(d)
    mallory = Key("mallory")
    assert httpx.post(s.url + "/v1/identities", json=mallory.registration()).status_code == 201
    yield tmp, d, s, alice, mallory
    s.stop()


def _post(s, entry):
    return httpx.post(s.url + "/v1/entries", json=entry, timeout=30)


def test_dataset_committed_over_http_is_found_by_name_and_keeps_its_owner(served):
    tmp, d, s, alice, mallory = served
    body = _dataset_body(tmp, "corpus")
    r = _post(s, _signed(alice, "dataset.commit", body))
    assert r.status_code == 201, r.text
    idx = r.json()["index"]
    with Ledger.open(d) as led:
        assert find_dataset(led, "corpus")[0] == idx
        assert current_dataset(led, "corpus")[0] == idx
        assert dataset_versions(led, "corpus")["versions"] == [idx]
        assert dataset_owner(led, "corpus") == alice.did
        n = led.size
    # the name is alice's: a stranger's commitment under it is refused at ingest, nothing stored
    r = _post(s, mallory.entry("dataset.commit", {**body, "root": "ab" * 32}))
    assert r.status_code == 403 and r.json()["code"] == "not_authorised", r.text
    with Ledger.open(d) as led:
        assert led.size == n
        # and the service path refuses a silent re-commit of it, as for its own commits
        with pytest.raises(ConflictError, match="already committed"):
            commit_dataset(led, [str(tmp / "corpus.jsonl")], "corpus", led.identities.load("alice"))
        assert led.size == n


def test_model_registered_over_http_is_in_lineage_and_verifies(served):
    tmp, d, s, alice, _ = served
    ds_body = _dataset_body(tmp, "books")
    r = _post(s, _signed(alice, "dataset.commit", ds_body))
    assert r.status_code == 201, r.text
    ds_idx = r.json()["index"]
    base_dir = _model_dir(tmp, "base-model")
    with Ledger.open(d) as led:
        base = register_model(led, base_dir, "base", led.identities.load("alice"))  # the service path
    ft_dir = _model_dir(tmp, "ft-model")
    ft_body = _model_body(ft_dir, "ft", datasets=[{"name": "books", "index": ds_idx, "root": ds_body["root"]}],
                          base={"name": "base", "index": base["index"], "manifest_root": base["manifest_root"]})
    r = _post(s, _signed(alice, "model.register", ft_body))
    assert r.status_code == 201, r.text
    ft_idx = r.json()["index"]
    with Ledger.open(d) as led:
        # the fine-tune is a descendant of its base ...
        g = lineage_graph(led, "base")
        assert f"#{ft_idx}" in {n["id"] for n in g["nodes"]}
        assert {"from": f"#{base['index']}", "to": f"#{ft_idx}", "relation": "fine-tuned from"} in g["edges"]
        # ... and its own lineage shows the dataset it was trained on
        g = lineage_graph(led, "ft")
        assert {"from": f"#{ds_idx}", "to": f"#{ft_idx}", "relation": "trained on"} in g["edges"]
        # found by its manifest root, and `model verify` of its files is an exact match
        root = ft_body["manifest"]["root"]
        assert find_model(led, root)[0] == ft_idx
        rep = verify_model(led, ft_dir)
        assert rep["ok"] and rep["name"] == "ft" and rep["record"]["index"] == ft_idx
        assert verify_model(led, ft_dir, name="ft")["ok"]
        assert verify_model(led, ft_dir, name=f"#{ft_idx}")["ok"]


def test_every_write_path_indexes_the_same_terms(tmp_path):
    """The terms of an entry depend on its signed bytes only, not on the path that wrote it."""
    with Ledger.init(tmp_path / "svc", origin="svc.example/x") as led:
        who = led.identities.create("alice")
        src = tmp_path / "x.jsonl"
        src.write_text('{"a": 1}\n')
        ds = commit_dataset(led, [str(src)], "x", who)
        m = register_model(led, _model_dir(tmp_path, "m1"), "m1", who, datasets=["x"])
        ft = register_model(led, _model_dir(tmp_path, "m2"), "m2", who, datasets=["x"], base="m1")
        for idx in (ds["index"], m["index"], ft["index"]):
            stored = _terms_of(led, idx)
            assert stored == set(entry_terms(led.entry(idx))), idx


def _terms_of(led, idx):
    """Every index term the store lists entry ``idx`` under (read back through the store's own lookup)."""
    e = led.entry(idx)
    cands = set(entry_terms(e))
    cands |= {f"dataset:{e.body.get('name')}", f"model:{e.body.get('name')}", f"dataset-root:{e.body.get('root')}",
              f"manifest:{(e.body.get('manifest') or {}).get('root')}"}
    lin = e.body.get("lineage") or {}
    cands |= {f"trained-on:{x['name']}" for x in lin.get("datasets") or []}
    if lin.get("base_model"):
        cands.add(f"base:{lin['base_model']['name']}")
    return {t for t in cands if led.store.find(t, idx - 1, 1) == [idx]}


def test_entries_indexed_by_older_rules_are_still_found(tmp_path):
    """Ledgers indexed before every path wrote the artifact terms: a dataset the service committed when
    only ``dataset:`` was written, a model POSTed when only ``name:``/``hash:`` were."""
    from ailedger.tlog.merkle import leaf_hash
    from ailedger.tlog.stores import LeafRow

    body = _dataset_body(tmp_path, "old")
    with Ledger.init(tmp_path / "l", origin="old.example/x") as led:
        alice, _ = led.new_identity("alice")
        e = led.make_entry("dataset.commit", body, alice)
        old = [f"type:{e.type}", f"signer:{e.signer}", "dataset:old"]
        ds_idx = led.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), tuple(old))])[0].index
        mdir = _model_dir(tmp_path, "mm")
        mb = _model_body(mdir, "mm")
        e = led.make_entry("model.register", mb, alice)
        root = mb["manifest"]["root"]
        between = [f"type:{e.type}", f"signer:{e.signer}", "name:mm", f"hash:{root}"]
        m_idx = led.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), tuple(between))])[0].index
        assert find_dataset(led, "old")[0] == ds_idx
        assert find_model(led, root)[0] == m_idx
        rep = verify_model(led, mdir)
        assert rep["ok"] and rep["record"]["index"] == m_idx
