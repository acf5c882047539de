"""The encoding layer: what an entry is, byte for byte (pure: no I/O, no clock).

RFC 8785 canonical JSON, signed entries (type, v, time, signer, body, sig), did:key identities, every
Ed25519 check (strict RFC 8032 through libsodium), entry times, fast leaf reads and batch hashing.

The names below are this folder's public interface; they load on first use, so importing a module of
the folder does not load the rest.  Other modules keep their names but are not promised to stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.encoding.canonical import canonical_json, parse_json
    from ailedger.encoding.identity import did_from_public_key, public_key_from_did, verify_did_signature
    from ailedger.encoding.leaves import LightEntry, verify_leaf
    from ailedger.encoding.records import SignedEntry, build_entry, parse_entry, unsigned_bytes
    from ailedger.encoding.times import iso, time_ms

_LAZY = {
    "canonical_json": "ailedger.encoding.canonical",
    "parse_json": "ailedger.encoding.canonical",
    "SignedEntry": "ailedger.encoding.records",
    "build_entry": "ailedger.encoding.records",
    "parse_entry": "ailedger.encoding.records",
    "unsigned_bytes": "ailedger.encoding.records",
    "did_from_public_key": "ailedger.encoding.identity",
    "public_key_from_did": "ailedger.encoding.identity",
    "verify_did_signature": "ailedger.encoding.identity",
    "iso": "ailedger.encoding.times",
    "time_ms": "ailedger.encoding.times",
    "LightEntry": "ailedger.encoding.leaves",
    "verify_leaf": "ailedger.encoding.leaves",
}

__all__ = [
    "LightEntry", "SignedEntry", "build_entry", "canonical_json", "did_from_public_key", "iso",
    "parse_entry", "parse_json", "public_key_from_did", "time_ms", "unsigned_bytes",
    "verify_did_signature", "verify_leaf",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
