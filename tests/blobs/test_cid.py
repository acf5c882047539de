import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger.blobs.cid import (
    CID,
    DAG_PB,
    RAW,
    SHA2_256,
    b32decode,
    b32encode,
    b58decode,
    b58encode,
    decode_varint,
    encode_varint,
    raw_cid,
    verify_block,
)
from ailedger.errors import BadInputError, VerificationError


def test_known_vectors():
    # "hello\n" as a raw-leaf CIDv1 (the well-known ipfs/kubo value) and the empty raw block
    assert str(raw_cid(b"hello\n")) == "bafkreicysg23kiwv34eg2d7qweipxwosdo2py4ldv42nbauguluen5v6am"
    assert str(raw_cid(b"")) == "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    # CIDv0 of the empty UnixFS directory (well-known)
    v0 = CID.decode("QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn")
    assert v0.version == 0 and v0.codec == DAG_PB and str(v0) == "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    assert str(v0.to_v1()) == "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"


@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_varint_roundtrip(n):
    b = encode_varint(n)
    assert decode_varint(b) == (n, len(b))


def test_varint_rejects_bad():
    with pytest.raises(BadInputError):
        decode_varint(b"\x80")
    with pytest.raises(BadInputError):
        decode_varint(b"\x80\x00")  # non-minimal
    with pytest.raises(BadInputError):
        encode_varint(-1)


@given(st.binary(max_size=64))
def test_bases_roundtrip(b):
    assert b32decode(b32encode(b)) == b
    assert b58decode(b58encode(b)) == b


@given(st.binary(max_size=300), st.sampled_from([RAW, DAG_PB]))
def test_cid_roundtrip(data, codec):
    c = CID(1, codec, SHA2_256, hashlib.sha256(data).digest())
    assert CID.decode(str(c)) == c
    assert CID.decode("z" + b58encode(c.bytes)) == c
    assert CID.from_bytes(c.bytes + b"xx") == (c, len(c.bytes))


def test_bad_cids():
    for s in ["", "x123", "bafy!!", "Qm" + "1" * 44, "b" + b32encode(b"\x02\x55\x12\x20" + bytes(32))]:
        with pytest.raises(BadInputError):
            CID.decode(s)
    with pytest.raises(BadInputError):
        CID.decode("b" + b32encode(raw_cid(b"x").bytes[:-1]))  # truncated digest


def test_verify_block():
    c = raw_cid(b"abc")
    verify_block(c, b"abc")
    with pytest.raises(VerificationError) as ei:
        verify_block(c, b"abd")
    assert ei.value.expected == c.digest.hex()
