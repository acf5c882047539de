"""`--store blob:URL`: a run's updates kept in ailedger's blob store (encrypted, content-addressed, every
CID logged beside its update) and `fl replay` reading them back; a tampered blob names client and round."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ailedger.blobs.node import StorageNode
from ailedger.blobs.service import BlobService
from ailedger.cli.main import main
from ailedger.federated.audit import replay, run_view
from ailedger.federated.blobstore import BlobUpdateStore
from ailedger.federated.dp import DPConfig
from ailedger.federated.params import serialize
from ailedger.federated.service import run_simulation, store_for

PORTS = range(18810, 18840)  # lane fl2: 18800-18899


@pytest.fixture()
def node(tmp_path, server):
    """A storage node on loopback that takes writes from the run's server."""
    for port in PORTS:
        try:
            n = StorageNode(tmp_path / "node", port=port, allow=[server.did]).start()
        except OSError:
            continue
        yield n
        n.stop()
        return
    pytest.fail("no free port for the storage node in 18810-18839")


def _run(led, *args, code=0):
    r = CliRunner().invoke(main, ["--ledger", str(led), *map(str, args)])
    assert r.exit_code == code, (r.output, r.exception)
    return r


def _shards(node):
    return [p for p in node.dir.iterdir() if len(p.name) == 64]


def test_cli_blob_store_run_replay_and_tampered_blob(ledger, server, node):
    led = ledger.path
    out = json.loads(_run(led, "fl", "run", "--clients", 4, "--rounds", 2, "--poisoned", 1, "--attack", "scale",
                          "--strategy", "median", "--store", f"blob:{node.url}", "--json").stdout)
    run = out["run"]
    assert out["store"] == f"blob:{node.url}" and out["encrypted"]
    v = run_view(ledger, run)
    assert v.body["store"] == "blob"
    svc = BlobService(ledger)
    cids = [v.body["init_blob"]] + [c["blob"] for _, b in v.rounds for c in b["clients"]]
    assert len(cids) == 1 + 4 * 2 and len(set(cids)) == len(cids)
    for cid in cids:  # each a blob.put by the server, its key wrapped for the server only
        st = svc.state(cid)
        assert st.owner == server.did and st.reader_dids == [server.did]
    # the node holds ciphertext only: no stored update appears in plain
    plain = store_for(ledger, run, ident=server)
    first = v.rounds[0][1]["clients"][0]
    update = plain.get_update(1, first["did"])
    assert all(update[:64] not in p.read_bytes() for p in _shards(node))
    plain.close()
    assert "updates kept in the blob store (encrypted)" in _run(led, "fl", "show", run).stdout
    assert json.loads(_run(led, "fl", "show", run, "--json").stdout)["store"] == "blob"
    rep = json.loads(_run(led, "fl", "replay", run, "--json").stdout)
    assert rep["ok"] and rep["rounds"] == 2 and rep["final_root"] == out["final_root"]
    # flip one byte of the shard that holds round 2's update of one client: replay names client and round
    victim = sorted(c["did"] for c in v.rounds[1][1]["clients"])[1]
    cid = next(c["blob"] for c in v.rounds[1][1]["clients"] if c["did"] == victim)
    shard = node.dir / svc.state(cid).shards[0].sha256
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    shard.write_bytes(bytes(raw))
    size = ledger.size
    r = _run(led, "fl", "replay", run, code=1)
    assert f"round 2: the stored update of client {victim}: blob {cid} could not be read back intact" in r.stderr
    assert "corrupted shard" in r.stderr
    assert ledger.size == size


def test_blob_store_with_dp_and_a_reader(ledger, server, node):
    auditor, _ = ledger.new_identity("auditor")
    outsider, _ = ledger.new_identity("outsider")
    s = run_simulation(ledger, server, clients=3, rounds=2, poisoned=0, dp=DPConfig(1.0, 1.0, 1e-5),
                       blob_nodes=[node.url], blob_readers=["auditor"])
    v = run_view(ledger, s["run"])
    assert all((b["dp"] or {}).get("noise_blob") for _, b in v.rounds)
    st = store_for(ledger, s["run"], ident=auditor)  # a named reader replays without the server's key
    try:
        assert replay(ledger, s["run"], st)["final_root"] == s["final_root"]
    finally:
        st.close()
    st = store_for(ledger, s["run"], ident=outsider)
    try:
        with pytest.raises(Exception) as ei:
            replay(ledger, s["run"], st)
        assert ei.value.code == "bad_input" and "is not a reader of blob" in ei.value.message
        assert ei.value.message.startswith("initial model:")
    finally:
        st.close()


def test_a_blob_swapped_for_another_update_is_caught_by_its_digest(ledger, server, node):
    """A log whose CID points at intact bytes that are not the signed update: the digest check names it."""
    s = run_simulation(ledger, server, clients=3, rounds=1, poisoned=0, blob_nodes=[node.url])
    st = store_for(ledger, s["run"], ident=server)
    assert isinstance(st, BlobUpdateStore)
    did, other = sorted(s["clients"])[:2]
    st.refs[f"r1/{did}"] = st.refs[f"r1/{other}"]
    try:
        with pytest.raises(Exception, match=f"round 1: the stored update of client {did} does not match its logged"):
            replay(ledger, s["run"], st)
    finally:
        st.close()


def test_blob_store_bad_input(ledger, server, node, tmp_path):
    led = ledger.path
    r = _run(led, "fl", "run", "--clients", 3, "--rounds", 1, "--store", "blob:", code=2)
    assert "--store blob: needs at least one storage node URL" in r.stderr
    r = _run(led, "fl", "run", "--clients", 3, "--rounds", 1, "--store", "blob:ftp://127.0.0.1:1", code=2)
    assert "storage node URL must look like http://HOST:PORT" in r.stderr
    r = _run(led, "fl", "run", "--clients", 3, "--rounds", 1, "--reader", "x", code=2)
    assert "--reader is for the blob store" in r.stderr
    assert not list(ledger.find(type="fl.run")) and not list(ledger.find(type="blob.put"))
    s = run_simulation(ledger, server, clients=3, rounds=1, poisoned=0, blob_nodes=[node.url])
    r = _run(led, "fl", "replay", s["run"], "--store", tmp_path / "d", code=2)
    assert "keeps its updates in the blob store, not in a folder" in r.stderr
    with pytest.raises(Exception, match="reading them needs an identity"):
        store_for(ledger, s["run"])
    st = BlobUpdateStore(ledger, server)
    with pytest.raises(Exception, match="needs at least one storage node"):
        st.put_update(1, server.did, serialize([b"x"]))
    st.close()
