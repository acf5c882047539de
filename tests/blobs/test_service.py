import os

import pytest

from ailedger.blobs.service import BlobService
from ailedger.blobs.unixfs import file_cid
from ailedger.errors import BadInputError, NetworkError, NotFoundError, StorageError


@pytest.fixture
def svc(ledger, tmp_path):
    return BlobService(ledger, timeout=10, spool=tmp_path / "spool")


def src(tmp_path, size, name="in.bin"):
    p = tmp_path / name
    p.write_bytes(os.urandom(size))
    return p


def test_put_get_roundtrip_and_ledger_record(svc, people, make_nodes, tmp_path, ledger):
    nodes = make_nodes(6)
    for size in (0, 5, 300_000):
        f = src(tmp_path, size)
        r = svc.put(f, [n.url for n in nodes], people["alice"], k=3, n=6, readers=["bob"], unit=4096)
        e = ledger.entry(r.index)
        assert e.type == "blob.put" and e.body["cid"] == r.cid and e.signer == people["alice"].did
        assert e.body["coding"]["k"] == 3 and len(e.body["shards"]) == 6
        assert {x["reader"] for x in e.body["readers"]} == {people["alice"].did, people["bob"].did}
        # the public record does not reveal the plaintext CID
        assert str(file_cid(f.read_bytes())) not in str(e.body)
        out = tmp_path / "out.bin"
        g = svc.get(r.cid, out, people["bob"])
        assert out.read_bytes() == f.read_bytes()
        assert g.plaintext_cid == str(file_cid(f.read_bytes()))
    # no node holds plaintext: no shard file contains a 64-byte window of the input
    probe = f.read_bytes()[1000:1064]
    for n in nodes:
        for p in n.dir.iterdir():
            assert probe not in p.read_bytes()


def test_placement_needs_distinct_nodes(svc, people, make_nodes, tmp_path):
    nodes = make_nodes(3)
    with pytest.raises(BadInputError):
        svc.put(src(tmp_path, 10), [n.url for n in nodes] * 2, people["alice"], k=2, n=4)


def test_corrupt_and_vanishing_nodes_are_routed_around(svc, people, make_nodes, tmp_path):
    good = make_nodes(4)
    bad = make_nodes(1, fault="corrupt") + make_nodes(1, fault="vanish")
    f = src(tmp_path, 400_000)
    r = svc.put(f, [n.url for n in good + bad], people["alice"], k=3, n=6, unit=8192)
    for attempt in range(3):  # whichever shards the faulty nodes hold, the bytes come out right
        out = tmp_path / f"out{attempt}"
        g = svc.get(r.cid, out, people["alice"])
        assert out.read_bytes() == f.read_bytes()
        assert not set(g.shards_used) & {i for i, u in r.placement.items() if u in {b.url for b in bad}}


def test_shard_rotting_on_disk_is_detected(svc, people, make_nodes, tmp_path):
    nodes = make_nodes(5)
    f = src(tmp_path, 200_000)
    r = svc.put(f, [n.url for n in nodes], people["alice"], k=2, n=5, unit=4096)
    # corrupt the shard files of shards 0, 1 and 2 (both data shards): only two intact shards are left
    by_url = {n.url: n for n in nodes}
    rotten = [by_url[r.placement[i]] for i in (0, 1, 2)]
    for n in rotten:
        for p in n.dir.iterdir():
            if len(p.name) == 64:
                b = bytearray(p.read_bytes())
                b[len(b) // 2] ^= 0xFF
                p.write_bytes(bytes(b))
    out = tmp_path / "out"
    g = svc.get(r.cid, out, people["alice"])
    assert out.read_bytes() == f.read_bytes() and sorted(g.shards_used) == [3, 4]
    audit = svc.audit(r.cid, challenges=200)
    assert sum(not a["ok"] for a in audit.values()) >= 1
    # a fourth rotten node: fewer than k intact shards -> refused, and no output file is left behind
    for p in by_url[r.placement[3]].dir.iterdir():
        if len(p.name) == 64:
            p.write_bytes(os.urandom(p.stat().st_size))
    out2 = tmp_path / "out2"
    with pytest.raises(NetworkError) as ei:
        svc.get(r.cid, out2, people["alice"])
    assert "intact" in str(ei.value)
    assert not out2.exists() and not (tmp_path / "out2.part").exists()


def test_full_node_is_replaced_by_a_spare(svc, people, make_nodes, tmp_path):
    nodes = make_nodes(4) + make_nodes(1, capacity=10)
    f = src(tmp_path, 100_000)
    r = svc.put(f, [n.url for n in nodes], people["alice"], k=2, n=4, unit=4096)
    assert nodes[4].url not in r.placement.values()  # the full node never ends up holding a shard
    assert all("full" in x for x in r.retried)
    # no spare at all: a clear error, nothing recorded, the shards already placed are deleted again
    before = svc.ledger.size
    held = {n.url: {p.name for p in n.dir.iterdir()} for n in nodes}
    with pytest.raises(StorageError) as ei:
        svc.put(f, [n.url for n in nodes], people["alice"], k=2, n=5, unit=4096)
    assert "full" in str(ei.value)
    assert svc.ledger.size == before
    assert {n.url: {p.name for p in n.dir.iterdir()} for n in nodes} == held


def test_revoked_reader_is_refused(svc, people, make_nodes, tmp_path, ledger):
    nodes = make_nodes(3)
    f = src(tmp_path, 10_000)
    r = svc.put(f, [n.url for n in nodes], people["alice"], k=2, n=3, readers=["bob", "carol"])
    svc.get(r.cid, tmp_path / "b1", people["bob"])
    idx, readers = svc.set_readers(r.cid, people["alice"], remove_=["bob"])
    assert people["bob"].did not in readers and people["carol"].did in readers
    assert ledger.entry(idx).type == "blob.readers"
    with pytest.raises(BadInputError) as ei:
        svc.get(r.cid, tmp_path / "b2", people["bob"])
    assert "not a reader" in str(ei.value)
    assert not (tmp_path / "b2").exists()
    svc.get(r.cid, tmp_path / "c1", people["carol"])  # the others still read (re-wrapped key)
    with pytest.raises(BadInputError):
        svc.set_readers(r.cid, people["carol"], add=["bob"])  # only the owner changes readers
    svc.set_readers(r.cid, people["alice"], add=["bob"])
    svc.get(r.cid, tmp_path / "b3", people["bob"])
    assert (tmp_path / "b3").read_bytes() == f.read_bytes()


def test_repair_after_nodes_disappear(svc, people, make_nodes, tmp_path, ledger):
    nodes = make_nodes(8)
    f = src(tmp_path, 250_000)
    r = svc.put(f, [n.url for n in nodes], people["alice"], k=3, n=8, unit=4096)
    for n in nodes[:4]:
        n.stop()
    spares = make_nodes(4, prefix="spare")
    rep = svc.repair(r.cid, people["bob"], [n.url for n in spares])  # a repairer needs no key
    assert len(rep.rebuilt) == 4 and set(rep.rebuilt.values()) == {n.url for n in spares}
    assert ledger.entry(rep.index).type == "blob.repair"
    assert all(a["ok"] for a in svc.audit(r.cid).values())
    for n in nodes[4:7]:
        n.stop()  # only one original left; the rebuilt shards carry the object
    out = tmp_path / "out"
    svc.get(r.cid, out, people["alice"])
    assert out.read_bytes() == f.read_bytes()
    with pytest.raises(StorageError) as ei:  # three shards lost again and no spare node offered
        svc.repair(r.cid, people["alice"])
    assert "give more --nodes" in str(ei.value)


def test_unknown_cid(svc, people):
    with pytest.raises(NotFoundError):
        svc.state("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
    with pytest.raises(BadInputError):
        svc.state("not-a-cid")


def test_stalled_node_does_not_hold_up_a_get(svc, people, make_nodes, tmp_path):
    import time

    good = make_nodes(3)
    hang = make_nodes(2, fault="hang")
    f = src(tmp_path, 300_000)
    r = svc.put(f, [n.url for n in good + hang], people["alice"], k=3, n=5, unit=8192)
    out = tmp_path / "out"
    t0 = time.monotonic()
    svc.get(r.cid, out, people["alice"])
    assert out.read_bytes() == f.read_bytes()
    assert time.monotonic() - t0 < 8  # the stalled transfers are cut once k good shards are in (timeout is 10 s)


def test_rotate_retires_the_old_key_and_shards(svc, people, make_nodes, tmp_path, ledger):
    nodes = make_nodes(4)
    f = src(tmp_path, 120_000)
    r = svc.put(f, [n.url for n in nodes], people["alice"], k=2, n=4, readers=["bob", "carol"], unit=8192)
    old_names = {p.name for n in nodes for p in n.dir.iterdir() if len(p.name) == 64}
    rot = svc.rotate(r.cid, people["alice"], remove_=["bob"])
    assert rot["new"] != r.cid and rot["deleted"] == 4 and not rot["not_deleted"]
    assert ledger.entry(rot["index"]).type == "blob.supersede"
    held = {p.name for n in nodes for p in n.dir.iterdir() if len(p.name) == 64}
    assert not held & old_names  # the old ciphertext is gone from every node
    with pytest.raises(NotFoundError) as ei:
        svc.get(r.cid, tmp_path / "x", people["carol"])
    assert rot["new"] in str(ei.value)
    with pytest.raises(BadInputError):
        svc.get(rot["new"], tmp_path / "b", people["bob"])
    svc.get(rot["new"], tmp_path / "c", people["carol"])
    assert (tmp_path / "c").read_bytes() == f.read_bytes()
    assert svc.state(r.cid).superseded_by == rot["new"]


def test_put_by_a_revoked_identity_leaves_no_shards(svc, people, make_nodes, tmp_path, ledger):
    nodes = make_nodes(3)
    ledger.revoke_identity("carol")
    with pytest.raises(BadInputError):
        svc.put(src(tmp_path, 5000), [n.url for n in nodes], people["carol"], k=2, n=3)
    assert [p for n in nodes for p in n.dir.iterdir()] == []


@pytest.mark.parametrize("memory", [0, 1 << 30])
def test_spooled_and_in_memory_shards_give_the_same_blob(ledger, people, make_nodes, tmp_path, memory):
    """memory=0: every shard goes through spool files (put and get); a large budget: none does. Both store
    and read back the same bytes, and the spool folder is left empty."""
    svc = BlobService(ledger, timeout=10, spool=tmp_path / "spool", memory=memory)
    nodes = make_nodes(4)
    f = src(tmp_path, 700_000)
    r = svc.put(f, [n.url for n in nodes], people["alice"], k=3, n=4, unit=65536)
    out = tmp_path / "out.bin"
    svc.get(r.cid, out, people["alice"])
    assert out.read_bytes() == f.read_bytes()
    # a lost data shard: the get decodes from the parity shard
    holder = next(n for n in nodes if n.url == r.placement[0])
    (holder.dir / svc.state(r.cid).shards[0].sha256).unlink()
    g = svc.get(r.cid, out, people["alice"])
    assert out.read_bytes() == f.read_bytes() and g.shards_used == [1, 2, 3]
    assert list((tmp_path / "spool").iterdir()) == []


def test_shard_sink_pieces_whatever_the_read_sizes():
    """A memory sink hands out piece s of a shard, whether reads came in piece sizes (chunk s itself, no
    copy) or in any other sizes (a join, redone when more bytes arrived)."""
    from ailedger.blobs.client import ShardSink

    data = os.urandom(10 * 1000)
    aligned = ShardSink(len(data), chunk=1000)
    for i in range(0, len(data), 1000):
        aligned.write(data[i : i + 1000])
    assert all(aligned.piece(s, 1000) is aligned.chunks[s] for s in range(10))
    odd = ShardSink(len(data), chunk=1000)
    odd.write(data[:1500])
    assert bytes(odd.piece(0, 1000)) == data[:1000]
    odd.write(data[1500:])
    assert [bytes(odd.piece(s, 1000)) for s in range(10)] == [data[i : i + 1000] for i in range(0, len(data), 1000)]
    odd.discard()
    assert odd.piece(0, 1000) is None
