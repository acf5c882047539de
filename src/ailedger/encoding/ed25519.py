"""Ed25519 signature checks (RFC 8032), strict, through libsodium.

Every signature the ledger checks goes through :func:`verify`, or, for whole entries in batches (audits,
batch appends), through the C checker ``_speedups.verify_entries`` (:func:`ailedger.encoding.records.
fast_parse_entries`), which calls the same libsodium (the PyNaCl bundle, loaded by path) with the same rules.  libsodium (bundled in the PyNaCl
wheel) verifies an Ed25519 signature about twice as fast as the OpenSSL build inside the
``cryptography`` wheel on the machines we measured (see bench/RESULTS.md, "Ed25519 verification"),
and signature checks dominate appends, audits and vote tallies.

The rules are RFC 8032 section 5.1.7 with the cofactorless equation, plus libsodium's strict
refusals: ``S`` must be canonical (``S < L``), the public key must be a canonical encoding and not of
small order, and ``R`` must not be of small order.  Every signature an honest RFC 8032 signer
produces passes; the extra refusals only reject crafted keys and signatures that other strict
verifiers (and the C2SP signed-note rules) reject too.  Anything libsodium accepts, OpenSSL accepts.
"""

from __future__ import annotations

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError, CryptoError

__all__ = ["verify"]


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True when ``signature`` is a valid strict Ed25519 signature of ``message`` by ``public_key``."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        crypto_sign_open(bytes(signature) + bytes(message), bytes(public_key))
    except (BadSignatureError, CryptoError, ValueError, TypeError):
        return False
    return True
