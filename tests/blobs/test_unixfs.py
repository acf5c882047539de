import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.blobs.cid import DAG_PB, RAW, raw_cid
from ailedger.blobs.unixfs import (
    PROFILES,
    FileImporter,
    PBLink,
    PBNode,
    decode_pbnode,
    decode_unixfs,
    encode_pbnode,
    file_cid,
    read_file,
)
from ailedger.errors import BadInputError, VerificationError

SMALL = PROFILES["kubo-v1-legacy"].__class__("tiny", 8, 3)  # 8-byte chunks, 3 links: deep trees cheaply


def import_all(data, profile, pieces=(7, 1, 300)):
    imp = FileImporter(profile)
    blocks = []
    i = 0
    for p in pieces * (len(data) + 1):
        if i >= len(data):
            break
        blocks += imp.update(data[i:i + p])
        i += p
    root, rest = imp.finish()
    return root, blocks + rest


def test_single_chunk_is_raw_leaf():
    for n in (0, 1, 1 << 20):
        data = os.urandom(n)
        assert file_cid(data, "unixfs-v1-2025") == raw_cid(data)
    assert file_cid(os.urandom(256 << 10), "kubo-v1-legacy").codec == RAW
    assert file_cid(os.urandom((256 << 10) + 1), "kubo-v1-legacy").codec == DAG_PB


def test_golden_vectors_from_js_importer():
    # values printed by ipfs-unixfs-importer 17.1.1 for these deterministic inputs
    data = bytes(range(256)) * 4096 * 3 + b"tail"  # 3 MiB + 4 bytes
    assert str(file_cid(data, "unixfs-v1-2025")) == GOLDEN_V1
    assert str(file_cid(data, "kubo-v1-legacy")) == GOLDEN_KUBO


GOLDEN_V1 = "bafybeigukq5tbragg62bski7zxijbvayq2vvaf6wndtuwcialml4c7y7xu"
GOLDEN_KUBO = "bafybeiemvelfppncxxnfzfcsey5zcrumcnpe4qkyliogdsit335hoqsw7i"


@settings(max_examples=40, deadline=None)
@given(st.binary(max_size=200))
def test_read_back_any_shape(data):
    root, blocks = import_all(data, SMALL)
    store = {b.cid: b.data for b in blocks}
    assert b"".join(read_file(root, store.__getitem__)) == data
    # streaming in different piece sizes gives the same root
    assert import_all(data, SMALL, pieces=(1,))[0] == root


def test_multilevel_shape():
    data = os.urandom(8 * 10)  # 10 chunks, 3 links -> 4 nodes -> 2 nodes -> root
    root, blocks = import_all(data, SMALL)
    node = decode_pbnode({b.cid: b.data for b in blocks}[root])
    assert len(node.links) == 2
    u = decode_unixfs(node.data)
    assert u.filesize == 80 and u.blocksizes == (72, 8)


def test_pbnode_roundtrip_and_strictness():
    c = raw_cid(b"x")
    n = PBNode((PBLink(c, "", 1),), b"\x08\x02")
    raw = encode_pbnode(n)
    assert raw[0] == 0x12  # links before data
    assert decode_pbnode(raw) == n
    with pytest.raises(BadInputError):
        decode_pbnode(b"\x0a\x01\x00" + raw)  # data before link
    with pytest.raises(BadInputError):
        decode_pbnode(b"\x1a\x00")


def test_read_file_detects_tampering():
    data = os.urandom(50)
    root, blocks = import_all(data, SMALL)
    store = {b.cid: b.data for b in blocks}
    leaf = next(b.cid for b in blocks if b.cid.codec == RAW)
    store[leaf] = b"X" * 8
    with pytest.raises(VerificationError):
        b"".join(read_file(root, store.__getitem__))


def test_keep_leaves_false_gives_same_root():
    data = os.urandom(8 * 7 + 3)
    imp = FileImporter(SMALL, keep_leaves=False)
    out = imp.update(data[:20]) + imp.update(data[20:])
    root, rest = imp.finish()
    assert out == [] and root == import_all(data, SMALL)[0]
    assert all(b.cid.codec != RAW for b in rest)


def test_file_node_checks_a_unixfs_file_node_and_names_root_or_node():
    import hashlib

    from ailedger.blobs.carfile import declared_size
    from ailedger.blobs.cid import CID, SHA2_256
    from ailedger.blobs.unixfs import encode_unixfs_file, file_node

    def pb(data: bytes | None) -> tuple[CID, bytes]:
        raw = encode_pbnode(PBNode((), data))
        return CID(1, DAG_PB, SHA2_256, hashlib.sha256(raw).digest()), raw

    cid, raw = pb(encode_unixfs_file(10, [4, 6]))
    node, u, total = file_node(cid, raw)
    assert (total, u.blocksizes, node.links) == (10, (4, 6), ())
    assert declared_size(cid, raw) == 10
    cid, raw = pb(encode_unixfs_file(11, [4, 6]))
    with pytest.raises(VerificationError, match=f"^node {cid}: filesize disagrees"):
        file_node(cid, raw)
    with pytest.raises(VerificationError, match=f"^root {cid}: filesize disagrees"):
        declared_size(cid, raw)
    cid, raw = pb(b"\x08\x01")  # a UnixFS directory
    with pytest.raises(BadInputError, match=f"^root {cid} is not a UnixFS file"):
        declared_size(cid, raw)
    cid, raw = pb(None)
    with pytest.raises(BadInputError, match="has no UnixFS data"):
        file_node(cid, raw)
    other = CID(1, 0x71, SHA2_256, hashlib.sha256(b"x").digest())  # dag-cbor
    with pytest.raises(BadInputError, match=f"^block {other} is neither raw nor dag-pb"):
        file_node(other, b"x")
    with pytest.raises(BadInputError, match=f"^root block {other} is neither raw nor dag-pb"):
        declared_size(other, b"x")
