import os

import pytest

from ailedger.blobs.car import encode_header, encode_section, read_car_bytes
from ailedger.blobs.cid import raw_cid
from ailedger.blobs.unixfs import FileImporter
from ailedger.errors import BadInputError, VerificationError


def make_car(data, profile="kubo-v1-legacy"):
    imp = FileImporter(profile)
    blocks = imp.update(data)
    root, rest = imp.finish()
    blocks += rest
    return root, blocks, encode_header([root]) + b"".join(encode_section(b) for b in blocks)


def test_header_golden():
    # dag-cbor {"roots":[cid],"version":1}: keys length-first, CID as tag 42 over 0x00||cid
    c = raw_cid(b"")
    h = encode_header([c])
    body = h[1:]
    assert h[0] == len(body)
    assert body.startswith(b"\xa2\x65roots\x81\xd8\x2a\x58\x25\x00" + c.bytes)
    assert body.endswith(b"\x67version\x01")


def test_roundtrip():
    root, blocks, car = make_car(os.urandom(600_000))
    roots, got = read_car_bytes(car)
    assert roots == [root] and got == blocks


def test_tampered_block_is_refused():
    _root, blocks, car = make_car(os.urandom(600_000))
    i = car.index(blocks[1].data[:32])
    bad = car[:i] + bytes([car[i] ^ 1]) + car[i + 1:]
    with pytest.raises(VerificationError) as ei:
        read_car_bytes(bad)
    assert "section 1" in str(ei.value)


def test_garbage_is_refused():
    for bad in [b"", b"\x05abc", b"\x01\xa0", encode_header([raw_cid(b"")])[:-1]]:
        with pytest.raises(BadInputError):
            read_car_bytes(bad)
    # truncated section
    _, _, car = make_car(b"hello")
    with pytest.raises(BadInputError):
        read_car_bytes(car[:-1])
