"""Strict Ed25519 verification (libsodium): RFC 8032 vectors, agreement with OpenSSL on honest
signatures, and the crafted cases the strict rules refuse."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.encoding import ed25519

# RFC 8032 section 7.1, TEST 1 and TEST 2 (secret key, public key, message, signature).
RFC8032 = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
]
L = 2**252 + 27742317777372353535851937790883648493


@pytest.mark.parametrize("sk,pk,msg,sig", RFC8032)
def test_rfc8032_vectors(sk: str, pk: str, msg: str, sig: str) -> None:
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sk))
    assert key.public_key().public_bytes_raw().hex() == pk
    assert key.sign(bytes.fromhex(msg)).hex() == sig
    assert ed25519.verify(bytes.fromhex(pk), bytes.fromhex(msg), bytes.fromhex(sig))
    bad = bytearray(bytes.fromhex(sig))
    bad[0] ^= 1
    assert not ed25519.verify(bytes.fromhex(pk), bytes.fromhex(msg), bytes(bad))
    assert not ed25519.verify(bytes.fromhex(pk), bytes.fromhex(msg) + b"x", bytes.fromhex(sig))


def test_agrees_with_openssl_on_honest_signatures() -> None:
    for i in range(200):
        key = Ed25519PrivateKey.generate()
        pub = key.public_key()
        msg = os.urandom(i)
        sig = key.sign(msg)
        assert ed25519.verify(pub.public_bytes_raw(), msg, sig)
        other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        assert not ed25519.verify(other, msg, sig)


def test_non_canonical_s_refused() -> None:
    """S + L is the same scalar mod L; RFC 8032 requires S < L (malleability)."""
    _sk, pk, msg, sig = RFC8032[1]
    raw = bytes.fromhex(sig)
    s = int.from_bytes(raw[32:], "little") + L
    forged = raw[:32] + s.to_bytes(32, "little")
    assert not ed25519.verify(bytes.fromhex(pk), bytes.fromhex(msg), forged)


def test_small_order_key_refused() -> None:
    """The neutral point as key with R = neutral and S = 0 satisfies the cofactorless equation for
    every message; a strict verifier refuses small-order keys and R."""
    neutral = (1).to_bytes(32, "little")
    assert not ed25519.verify(neutral, b"any message", neutral + bytes(32))


@pytest.mark.parametrize("pk_len,sig_len", [(31, 64), (33, 64), (32, 63), (32, 65), (0, 0)])
def test_wrong_lengths_refused(pk_len: int, sig_len: int) -> None:
    assert not ed25519.verify(bytes(pk_len), b"m", bytes(sig_len))
