"""Batch SHA-256 (dataset record keys): FIPS 180-2 examples, agreement with hashlib at every length
around the block and padding boundaries, on both C code paths and the hashlib fallback."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from ailedger.encoding import fasthash

FIPS = [
    (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    (b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
]


def _impls():
    out = [("hashlib", fasthash._sha256_many_hashlib, None)]
    try:
        from ailedger.encoding import _speedups
    except ImportError:
        return out
    out.append(("c-portable", _speedups.sha256_many, True))
    out.append(("c-default", _speedups.sha256_many, False))
    return out


@pytest.fixture(params=_impls(), ids=lambda p: p[0])
def impl(request):
    _name, fn, portable = request.param
    if portable is not None:
        from ailedger.encoding import _speedups

        _speedups._set_portable(portable)
        yield fn
        _speedups._set_portable(False)
    else:
        yield fn


def test_fips_examples(impl):
    got = impl([m for m, _ in FIPS])
    assert [got[i:i + 32].hex() for i in range(0, len(got), 32)] == [d for _, d in FIPS]


def test_matches_hashlib_at_every_length(impl):
    rnd = random.Random(7)
    items = [bytes(rnd.getrandbits(8) for _ in range(n)) for n in range(260)]
    items += [os.urandom(n) for n in (1000, 4095, 4096, 65536 + 3)]
    got = impl(items)
    assert got == b"".join(hashlib.sha256(x).digest() for x in items)
    assert impl([]) == b""


def test_bytes_like_items(impl):
    items = [bytearray(b"abc"), memoryview(b"xabcx")[1:4], b"abc"]
    got = impl(items)
    assert got == hashlib.sha256(b"abc").digest() * 3


def test_a_single_flipped_bit_changes_the_digest(impl):
    base = bytearray(os.urandom(100))
    d0 = impl([bytes(base)])
    for bit in (0, 7, 8 * 55, 8 * 63 + 1, 8 * 99 + 7):
        b = bytearray(base)
        b[bit // 8] ^= 1 << (bit % 8)
        assert impl([bytes(b)]) != d0


def test_bad_items_are_refused():
    try:
        from ailedger.encoding import _speedups
    except ImportError:
        pytest.skip("the C module is not built")
    with pytest.raises(TypeError):
        _speedups.sha256_many([b"ok", "text is not bytes"])
    with pytest.raises(TypeError):
        _speedups.sha256_many(5)


def test_the_c_module_is_built_here():
    """CI builds the C module (a compiler is part of the setup); if this fails the dataset figures
    in bench/RESULTS.md do not apply to this install."""
    assert fasthash.IMPLEMENTATION.startswith("c/"), fasthash.IMPLEMENTATION
