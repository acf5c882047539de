"""A get is optimistic: the data shards are proven end to end (their fragment headers against the codec's, the
ciphertext by every AES-GCM tag, the plaintext by its CID against the ledger's commitment, the last stripe's
padding zero) and hashed only when one of those checks fails; then the bad shard is named and replaced."""

import dataclasses
import os

import pytest

from ailedger.blobs.erasure import ISAL_HEADER
from ailedger.blobs.service import BlobService
from ailedger.errors import VerificationError


@pytest.fixture(params=[1 << 30, 0], ids=["memory", "spool"])
def svc(request, ledger, tmp_path):
    return BlobService(ledger, timeout=10, spool=tmp_path / "spool", memory=request.param)


def put3(svc, people, make_nodes, tmp_path, size=100_000):
    nodes = make_nodes(3)
    f = tmp_path / "in.bin"
    f.write_bytes(os.urandom(size))
    r = svc.put(f, [n.url for n in nodes], people["alice"], k=2, n=3, unit=8192)
    st = svc.state(r.cid)
    files = {i: next(n for n in nodes if n.url == r.placement[i]).dir / st.shards[i].sha256 for i in range(3)}
    return f, r, st, files


def flip(path, offset):
    b = bytearray(path.read_bytes())
    b[offset] ^= 0x01
    path.write_bytes(bytes(b))


def test_happy_path_hashes_no_shard(svc, people, make_nodes, tmp_path):
    f, r, _, _ = put3(svc, people, make_nodes, tmp_path)
    g = svc.get(r.cid, tmp_path / "out", people["alice"])
    assert (tmp_path / "out").read_bytes() == f.read_bytes()
    assert g.shards_used == [0, 1] and g.shards_hashed == [] and g.failures == []


@pytest.mark.parametrize("where", ["ciphertext", "header", "padding"])
def test_a_flipped_data_shard_is_named_and_the_bytes_come_back_right(svc, people, make_nodes, tmp_path, where):
    f, r, st, files = put3(svc, people, make_nodes, tmp_path)
    c = st.coding
    # 100,016 bytes of ciphertext in stripes of 2 x 8192: the last stripe holds 1,712 bytes, so the last piece of
    # data shard 1 is all padding
    assert c.size - (c.stripes - 1) * c.stripe < c.unit
    shard, offset = {"ciphertext": (0, c.piece + ISAL_HEADER + 100),  # stripe 1, inside the ciphertext
                     "header": (1, 2 * c.piece + 3),  # stripe 2's fragment header
                     "padding": (1, c.shard_size - 1)}[where]
    flip(files[shard], offset)
    g = svc.get(r.cid, tmp_path / "out", people["alice"])
    assert (tmp_path / "out").read_bytes() == f.read_bytes()
    assert shard not in g.shards_used and sorted(g.shards_used) == sorted({0, 1, 2} - {shard})
    assert g.shards_hashed == [0, 1]
    named = [x for x in g.failures if x.startswith(f"shard {shard} from {r.placement[shard]}")]
    assert len(named) == 1 and "corrupted" in named[0], g.failures
    assert not (tmp_path / "out.part").exists()


def test_a_lost_data_shard_hashes_the_other_before_decoding_with_parity(svc, people, make_nodes, tmp_path):
    f, r, _, files = put3(svc, people, make_nodes, tmp_path)
    files[0].unlink()
    g = svc.get(r.cid, tmp_path / "out", people["alice"])
    assert (tmp_path / "out").read_bytes() == f.read_bytes()
    assert g.shards_used == [1, 2] and g.shards_hashed == [1]  # the ISA-L decoder is handed checked shards only


def test_two_flipped_shards_leave_too_few_intact_ones(svc, people, make_nodes, tmp_path):
    _, r, _, files = put3(svc, people, make_nodes, tmp_path)
    flip(files[0], 5000)
    flip(files[2], 5000)
    with pytest.raises(Exception, match="intact"):
        svc.get(r.cid, tmp_path / "out", people["alice"])
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.part").exists()


def test_a_record_that_does_not_add_up_fails_as_before_and_writes_nothing(svc, people, make_nodes, tmp_path,
                                                                           monkeypatch):
    """Every shard is the one the ledger names, but the commitment is another: after hashing the shards (none
    bad) the get checks everything as it always did and fails on the commitment; no output."""
    _, r, st, _ = put3(svc, people, make_nodes, tmp_path)
    wrong = dataclasses.replace(st, commitment="00" * 32)
    monkeypatch.setattr(svc, "state", lambda cid: wrong)
    with pytest.raises(VerificationError, match="plaintext commitment"):
        svc.get(r.cid, tmp_path / "out", people["alice"])
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.part").exists()


def test_the_only_shard_flipped_is_named_in_the_error(svc, people, make_nodes, tmp_path):
    node = make_nodes(1)[0]
    f = tmp_path / "in.bin"
    f.write_bytes(os.urandom(30_000))
    r = svc.put(f, [node.url], people["alice"])
    flip(node.dir / svc.state(r.cid).shards[0].sha256, 100)
    with pytest.raises(Exception, match="intact") as ei:
        svc.get(r.cid, tmp_path / "out", people["alice"])
    assert f"shard 0 from {node.url}" in str(ei.value) and "corrupted shard" in str(ei.value)
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.part").exists()
