"""Client-side encryption of blobs and key wrapping to readers.

* Content: a fresh 256-bit key per object; the plaintext is cut into 1 MiB segments, each sealed
  with AES-256-GCM. Nonce = segment index (8 bytes, big-endian) || last-segment flag (1 byte) ||
  3 zero bytes, so segments cannot be reordered, dropped or the stream truncated without a tag
  failing (the STREAM construction of Hoang-Reyhanitabar-Rogaway-Vizar). A key is never reused.
* Plaintext commitment: SHA-256("ailedger/blob-commit/v1" || salt || CID-bytes), salt derived
  from the object key with HKDF, so only readers can open it and nobody can guess-and-check a
  known file against the public ledger.
* Key wrap: each reader is an Ed25519 ``did:key``; the key is wrapped to the X25519 key obtained
  from it by the standard birational map (RFC 7748 section 4.1; the same conversion libsodium's
  crypto_sign_ed25519_pk_to_curve25519 and age's ssh-ed25519 recipients use). Per wrap: a fresh
  ephemeral X25519 key, HKDF-SHA256 over the shared secret, AES-256-GCM over the object key with
  the object's ciphertext CID and the reader's DID as associated data.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ailedger.encoding.identity import public_key_from_did
from ailedger.errors import BadInputError, VerificationError

__all__ = [
    "SEGMENT",
    "TAG",
    "Decryptor",
    "Encryptor",
    "WrappedKey",
    "ciphertext_size",
    "new_key",
    "plaintext_commitment",
    "unwrap_key",
    "wrap_key",
    "x25519_public_from_ed25519",
]

SEGMENT = 1 << 20
TAG = 16
_P = 2**255 - 19


def new_key() -> bytes:
    return os.urandom(32)


def ciphertext_size(plain_size: int, segment: int = SEGMENT) -> int:
    nseg = max(1, -(-plain_size // segment))
    return plain_size + TAG * nseg


def _nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(8, "big") + (b"\x01" if last else b"\x00") + b"\0\0\0"


_AAD = b"ailedger/blob/v1"


def _segments(st: Any, data: bytes | bytearray | memoryview, size: int,
              seal: Callable[[bytes | bytearray | memoryview], bytes]) -> bytes:
    """Cut ``st._buf`` + ``data`` into whole segments of ``size`` bytes, each passed to ``seal`` (which
    numbers it by ``st._index``), keeping back at least one byte; segments come straight from ``data``
    where they can (no copy)."""
    mv = memoryview(data).cast("B")
    out: list[bytes] = []
    if st._buf:
        need = size - len(st._buf)
        if len(mv) <= need:
            st._buf += mv
            return b""
        st._buf += mv[:need]
        mv = mv[need:]
        out.append(seal(st._buf))
        st._buf = bytearray()
        st._index += 1
    while len(mv) > size:
        out.append(seal(mv[:size]))
        mv = mv[size:]
        st._index += 1
    st._buf += mv
    return out[0] if len(out) == 1 else b"".join(out)


class Encryptor:
    """Feed plaintext with ``update``; get ciphertext bytes back. ``finish`` seals the last segment."""

    def __init__(self, key: bytes, segment: int = SEGMENT) -> None:
        self._aead = AESGCM(key)
        self._seg = segment
        self._buf = bytearray()
        self._index = 0

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        # at least one byte is always kept back, so the final segment is sealed by finish()
        return _segments(self, data, self._seg, lambda seg: self._aead.encrypt(_nonce(self._index, False), seg, _AAD))

    def finish(self) -> bytes:
        ct = self._aead.encrypt(_nonce(self._index, True), bytes(self._buf), _AAD)
        self._buf = bytearray()
        return ct


class Decryptor:
    """Feed ciphertext; get authenticated plaintext back. Raises VerificationError on any bad tag,
    and on a stream that ends without its sealed last segment."""

    def __init__(self, key: bytes, segment: int = SEGMENT) -> None:
        self._aead = AESGCM(key)
        self._seg = segment + TAG
        self._buf = bytearray()
        self._index = 0

    def _open(self, ct: bytes | bytearray | memoryview, last: bool) -> bytes:
        try:
            return self._aead.decrypt(_nonce(self._index, last), ct, _AAD)
        except InvalidTag:
            raise VerificationError(
                f"ciphertext segment {self._index} fails authentication (wrong key or altered data)",
                expected="valid AES-GCM tag", found="invalid tag", segment=self._index,
            ) from None

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        return _segments(self, data, self._seg, lambda seg: self._open(seg, False))

    def finish(self) -> bytes:
        if len(self._buf) < TAG:
            raise VerificationError("ciphertext is truncated", expected=f">= {TAG} bytes", found=len(self._buf))
        pt = self._open(bytes(self._buf), True)
        self._buf = bytearray()
        return pt


def _hkdf(secret: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(secret)


def plaintext_commitment(key: bytes, plain_cid_bytes: bytes) -> bytes:
    salt = _hkdf(key, b"", b"ailedger/blob-commit-salt/v1")
    return hashlib.sha256(b"ailedger/blob-commit/v1" + salt + plain_cid_bytes).digest()


def x25519_public_from_ed25519(ed_pub: bytes) -> bytes:
    """u = (1 + y) / (1 - y) mod p (RFC 7748 4.1, Montgomery u from Edwards y)."""
    if len(ed_pub) != 32:
        raise BadInputError("an Ed25519 public key is 32 bytes", field="reader")
    y = int.from_bytes(ed_pub, "little") & ((1 << 255) - 1)
    if y >= _P or y == 1:
        raise BadInputError("Ed25519 public key cannot be converted to X25519", field="reader")
    u = (1 + y) * pow(1 - y, _P - 2, _P) % _P
    return u.to_bytes(32, "little")


def x25519_private_from_ed25519(key: Ed25519PrivateKey) -> X25519PrivateKey:
    seed = key.private_bytes_raw()
    return X25519PrivateKey.from_private_bytes(hashlib.sha512(seed).digest()[:32])


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str, what: str) -> bytes:
    try:
        return base64.b64decode(s, validate=True)
    except (ValueError, TypeError):
        raise BadInputError(f"{what} is not base64", field=what) from None


@dataclass(frozen=True)
class WrappedKey:
    reader: str  # did:key
    epk: str  # base64 ephemeral X25519 public key
    wrapped: str  # base64 AES-GCM(KEK, object key)

    def to_dict(self) -> dict[str, str]:
        return {"reader": self.reader, "epk": self.epk, "wrapped": self.wrapped}

    @staticmethod
    def from_dict(d: dict[str, str]) -> WrappedKey:
        try:
            return WrappedKey(str(d["reader"]), str(d["epk"]), str(d["wrapped"]))
        except (KeyError, TypeError):
            raise BadInputError("malformed wrapped key entry", field="readers") from None


def _kek(shared: bytes, epk: bytes, rpk: bytes) -> bytes:
    return _hkdf(shared, epk + rpk, b"ailedger/blob-key-wrap/v1")


def wrap_key(key: bytes, reader_did: str, binding: bytes) -> WrappedKey:
    rpk = x25519_public_from_ed25519(public_key_from_did(reader_did))
    eph = X25519PrivateKey.generate()
    epk = eph.public_key().public_bytes_raw()
    shared = eph.exchange(X25519PublicKey.from_public_bytes(rpk))
    wrapped = AESGCM(_kek(shared, epk, rpk)).encrypt(b"\0" * 12, key, binding + reader_did.encode())
    return WrappedKey(reader_did, _b64(epk), _b64(wrapped))


def unwrap_key(entry: WrappedKey, private_key: Ed25519PrivateKey, binding: bytes) -> bytes:
    xpriv = x25519_private_from_ed25519(private_key)
    rpk = xpriv.public_key().public_bytes_raw()
    epk = _unb64(entry.epk, "epk")
    try:
        shared = xpriv.exchange(X25519PublicKey.from_public_bytes(epk))
        return AESGCM(_kek(shared, epk, rpk)).decrypt(b"\0" * 12, _unb64(entry.wrapped, "wrapped"),
                                                    binding + entry.reader.encode())
    except (InvalidTag, ValueError):
        raise VerificationError(f"the object key wrapped for {entry.reader} does not open with this identity",
                                expected=entry.reader, found="key unwrap failed") from None


def iter_chunks(data: bytes, size: int) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]
