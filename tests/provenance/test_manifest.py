import hashlib
import json
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError, ProofError
from ailedger.provenance.manifest import (
    Chunk,
    FileEntry,
    Manifest,
    diff_manifests,
    parse_safetensors_header,
    plan_chunks,
    verify_chunk_list,
    verify_chunk_proof,
)


def H(b):
    return hashlib.sha256(b).digest()


DATA = bytes(range(256)) * 40  # 10240 bytes


def _manifest(data=DATA, cs=4096):
    chunks = tuple(Chunk(o, n, H(data[o:o + n])) for o, n in plan_chunks(len(data), cs))
    return Manifest.build([FileEntry("a/b.bin", len(data), chunks), FileEntry("empty", 0, ())], cs)


def test_golden_roots_computed_by_hand():
    """The tree rules written out with hashlib alone (RFC 6962: 0x00 leaves, 0x01 nodes)."""
    m = _manifest()
    c = [H(DATA[0:4096]), H(DATA[4096:8192]), H(DATA[8192:])]
    lf = [H(b"\x00" + x) for x in c]
    file_root = H(b"\x01" + H(b"\x01" + lf[0] + lf[1]) + lf[2])
    assert m.files[0].root == file_root
    leaf_a = canonical_json({"chunks": 3, "path": "a/b.bin", "root": file_root.hex(), "size": 10240})
    leaf_e = canonical_json({"chunks": 0, "path": "empty", "root": H(b"").hex(), "size": 0})
    assert m.files[0].leaf_bytes == leaf_a
    assert m.root == H(b"\x01" + H(b"\x00" + leaf_a) + H(b"\x00" + leaf_e))
    assert m.root.hex() == "97e895e64d4dff68e6c9776cf3fb4077825e29f57701ca11e1ae364ea3e413ec"
    assert hashlib.sha256(m.to_bytes()).hexdigest() == "019b76aa5d8b38227c61f28bf7e980d88af37b8c1b033e316a2543ddfc9043dd"


def test_plan_chunks_cuts():
    assert plan_chunks(10, 4) == [(0, 4), (4, 4), (8, 2)]
    assert plan_chunks(10, 4, [3, 3, 9, 0, 10, 99]) == [(0, 3), (3, 4), (7, 2), (9, 1)]
    assert plan_chunks(0, 4) == []
    with pytest.raises(BadInputError):
        plan_chunks(10, 0)


def test_roundtrip_and_tamper_detection():
    m = _manifest()
    assert Manifest.from_bytes(m.to_bytes()).root == m.root
    d = json.loads(m.to_bytes())
    d["files"][0]["chunks"][1][2] = "00" * 32
    with pytest.raises(ProofError):
        Manifest.from_dict(d)
    d = json.loads(m.to_bytes())
    d["files"][0]["chunks"][1][0] += 1
    with pytest.raises(BadInputError):
        Manifest.from_dict(d)


def test_chunk_and_file_proofs():
    m = _manifest()
    p = m.chunk_proof("a/b.bin", 2)
    verify_chunk_proof(p, DATA[8192:], m.root)
    with pytest.raises(ProofError):
        verify_chunk_proof(p, DATA[8192:-1] + b"x", m.root)
    with pytest.raises(ProofError):
        verify_chunk_proof(p, DATA[8192:], H(b"other root"))
    fp = m.file_proof("a/b.bin")
    assert len(verify_chunk_list(fp, m.root)) == 3
    fp["chunk_digests"][0] = "11" * 32
    with pytest.raises(ProofError):
        verify_chunk_list(fp, m.root)


def test_diff_names_chunks():
    m1 = _manifest()
    changed = bytearray(DATA)
    changed[5000] ^= 1
    m2 = _manifest(bytes(changed))
    ds = diff_manifests(m1, m2)
    assert [(d.kind, d.chunk) for d in ds] == [("chunk", 1)]


def _st(tensors, data_len=None, extra=b""):
    h = json.dumps(tensors).encode()
    size = 8 + len(h) + (data_len if data_len is not None else 16)
    return struct.pack("<Q", len(h)), h, size


def test_safetensors_header_errors_name_the_file():
    pre, h, size = _st({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}})
    hdr = parse_safetensors_header(pre, h, size, what="m.safetensors")
    assert hdr.tensors[0].begin == 8 + len(h) and hdr.tensors[0].end == 8 + len(h) + 16
    bad = [
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 99]}},  # beyond the data
        {"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 4]}},  # reversed
        {"w": {"dtype": "F32", "shape": "x", "data_offsets": [0, 8]}},
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
         "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}},  # overlap
    ]
    for t in bad:
        pre, h, size = _st(t)
        with pytest.raises(BadInputError, match="m.safetensors"):
            parse_safetensors_header(pre, h, size, what="m.safetensors")
    with pytest.raises(BadInputError, match="does not fit"):
        parse_safetensors_header(struct.pack("<Q", 1 << 40), b"", 100, what="m.safetensors")


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.integers(min_value=1, max_value=700),
       st.lists(st.integers(min_value=0, max_value=3000), max_size=5))
def test_property_chunks_tile_and_prove(data, cs, cuts):
    plan = plan_chunks(len(data), cs, cuts)
    assert sum(n for _, n in plan) == len(data)
    assert all(0 < n <= cs for _, n in plan)
    chunks = tuple(Chunk(o, n, H(data[o:o + n])) for o, n in plan)
    m = Manifest.build([FileEntry("f", len(data), chunks)], cs)
    for i, (o, n) in enumerate(plan[:4]):
        verify_chunk_proof(m.chunk_proof("f", i), data[o:o + n], m.root)
