import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.blobs import crypto
from ailedger.encoding.identity import did_from_public_key
from ailedger.errors import VerificationError


def roundtrip(data, seg, piece=7):
    key = crypto.new_key()
    e = crypto.Encryptor(key, seg)
    ct = b"".join(e.update(data[i:i + piece]) for i in range(0, len(data), piece)) + e.finish()
    assert len(ct) == crypto.ciphertext_size(len(data), seg)
    d = crypto.Decryptor(key, seg)
    pt = b"".join(d.update(ct[i:i + 5]) for i in range(0, len(ct), 5)) + d.finish()
    return key, ct, pt


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=200), st.integers(min_value=1, max_value=40))
def test_stream_roundtrip(data, seg):
    assert roundtrip(data, seg)[2] == data


def test_stream_detects_reorder_truncation_and_flips():
    data = os.urandom(100)
    key, ct, _ = roundtrip(data, 10)
    seg = 26
    cases = {
        "flip": ct[:30] + bytes([ct[30] ^ 1]) + ct[31:],
        "truncate": ct[: seg * 3],  # drops the sealed last segment
        "swap": ct[seg:2 * seg] + ct[:seg] + ct[2 * seg:],
        "short": ct[:5],
    }
    for name, bad in cases.items():
        d = crypto.Decryptor(key, 10)
        with pytest.raises(VerificationError):
            d.update(bad)
            d.finish()
        assert name


def test_x25519_conversion_matches_private_derivation():
    for _ in range(5):
        k = Ed25519PrivateKey.generate()
        pub = crypto.x25519_public_from_ed25519(k.public_key().public_bytes_raw())
        assert crypto.x25519_private_from_ed25519(k).public_key().public_bytes_raw() == pub


def test_wrap_unwrap_only_for_the_reader():
    alice, eve = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    did = did_from_public_key(alice.public_key().public_bytes_raw())
    key = crypto.new_key()
    w = crypto.wrap_key(key, did, b"object-1")
    assert crypto.unwrap_key(w, alice, b"object-1") == key
    with pytest.raises(VerificationError):
        crypto.unwrap_key(w, eve, b"object-1")
    with pytest.raises(VerificationError):
        crypto.unwrap_key(w, alice, b"object-2")  # a wrap cannot be moved to another object
    assert crypto.wrap_key(key, did, b"object-1") != w  # fresh ephemeral key each time


def test_commitment_depends_on_key_and_cid():
    k1, k2 = crypto.new_key(), crypto.new_key()
    assert crypto.plaintext_commitment(k1, b"cid") != crypto.plaintext_commitment(k2, b"cid")
    assert crypto.plaintext_commitment(k1, b"cid") != crypto.plaintext_commitment(k1, b"cie")
