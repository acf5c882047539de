"""Ed25519 identities named by ``did:key`` (multicodec ed25519-pub 0xed01, base58btc)."""

from __future__ import annotations

from ailedger.encoding import ed25519
from ailedger.errors import BadInputError, SignatureError

__all__ = ["b58decode", "b58encode", "did_from_public_key", "public_key_from_did", "verify_did_signature"]

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(_ALPHABET)}
_ED25519_PUB = b"\xed\x01"
_MAX_DID_LEN = 64


def b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(_ALPHABET[r])
    pad = len(data) - len(data.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


def b58decode(s: str) -> bytes:
    n = 0
    for c in s:
        if c not in _INDEX:
            raise BadInputError(f"character {c!r} is not base58btc")
        n = n * 58 + _INDEX[c]
    pad = len(s) - len(s.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body


def did_from_public_key(public_key: bytes) -> str:
    if len(public_key) != 32:
        raise BadInputError("an Ed25519 public key is 32 bytes", field="public_key", found=len(public_key))
    return "did:key:z" + b58encode(_ED25519_PUB + public_key)


_did_cache: dict[str, bytes] = {}


def public_key_from_did(did: str) -> bytes:
    if not isinstance(did, str):
        raise BadInputError("signer must be an Ed25519 did:key string", field="signer")
    pk = _did_cache.get(did)
    if pk is not None:
        return pk
    # an Ed25519 did:key is 56 characters; base58 decoding is quadratic, so the length is
    # checked first (a 64 KB "did" would otherwise cost half a second of CPU per entry)
    if not isinstance(did, str) or not did.startswith("did:key:z") or len(did) > _MAX_DID_LEN:
        raise BadInputError(f"{did[:80]!r} is not an Ed25519 did:key", field="signer")
    raw = b58decode(did[len("did:key:z") :])
    if len(raw) != 34 or raw[:2] != _ED25519_PUB:
        raise BadInputError(f"{did!r} is not an Ed25519 did:key", field="signer")
    if len(_did_cache) > 100_000:
        _did_cache.clear()
    _did_cache[did] = raw[2:]
    return raw[2:]


def verify_did_signature(did: str, message: bytes, signature: bytes) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is did's Ed25519 signature on ``message``
    (strict RFC 8032 rules, see :mod:`ailedger.encoding.ed25519`)."""
    if not ed25519.verify(public_key_from_did(did), message, signature):
        raise SignatureError(f"signature does not verify for {did}", expected=did, found="invalid signature") from None
