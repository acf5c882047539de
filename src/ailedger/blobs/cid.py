"""Content identifiers as IPFS writes them: unsigned varints, multihash, multibase and CID v0/v1.

Specs followed (facts, not code): multiformats unsigned-varint, multihash, multibase
(``b`` = RFC 4648 base32 lower case without padding, ``z`` = base58btc), multicodec table
(raw 0x55, dag-pb 0x70, dag-cbor 0x71, sha2-256 0x12, identity 0x00) and the CID spec
(CIDv0 is a bare sha2-256 multihash rendered in base58btc; CIDv1 is
``<version><codec><multihash>`` rendered with a multibase prefix).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from ailedger.encoding.identity import b58decode as _b58decode
from ailedger.encoding.identity import b58encode as _b58encode
from ailedger.errors import BadInputError, VerificationError

__all__ = [
    "CID",
    "DAG_CBOR",
    "DAG_PB",
    "IDENTITY",
    "RAW",
    "SHA2_256",
    "b32decode",
    "b32encode",
    "b58decode",
    "b58encode",
    "decode_varint",
    "encode_varint",
    "raw_cid",
    "verify_block",
]

RAW = 0x55
DAG_PB = 0x70
DAG_CBOR = 0x71
SHA2_256 = 0x12
IDENTITY = 0x00

_Buf = bytes | bytearray | memoryview

_CODEC_NAMES = {RAW: "raw", DAG_PB: "dag-pb", DAG_CBOR: "dag-cbor"}
_MAX_VARINT_BYTES = 9  # multiformats caps unsigned varints at 63 bits
MAX_CID_TEXT = 512  # a CIDv1 with a 64-byte digest is about 115 characters


def encode_varint(n: int) -> bytes:
    """Unsigned LEB128 varint (multiformats unsigned-varint)."""
    if n < 0:
        raise BadInputError("varint must not be negative", field="varint", found=n)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def decode_varint(buf: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """Decode a varint at ``offset``; returns (value, new offset). Rejects truncated and non-minimal forms."""
    value = 0
    shift = 0
    i = offset
    while True:
        if i >= len(buf):
            raise BadInputError("truncated varint", field="varint", offset=offset)
        if i - offset >= _MAX_VARINT_BYTES:
            raise BadInputError("varint longer than 9 bytes", field="varint", offset=offset)
        b = buf[i]
        value |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            if b == 0 and i - offset > 1:
                raise BadInputError("non-minimal varint encoding", field="varint", offset=offset)
            return value, i
        shift += 7


def b32encode(data: bytes) -> str:
    """RFC 4648 base32, lower case, no padding (multibase ``b`` without the prefix)."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def b32decode(s: str) -> bytes:
    pad = "=" * (-len(s) % 8)
    try:
        return base64.b32decode(s.upper() + pad)
    except (ValueError, TypeError) as e:
        raise BadInputError(f"not valid base32: {e}", field="cid") from None


def b58encode(data: bytes) -> str:
    return _b58encode(data)


def b58decode(s: str) -> bytes:
    try:
        return _b58decode(s)
    except BadInputError as exc:
        raise BadInputError(f"not valid base58btc: {exc.message}", field="cid") from None


@dataclass(frozen=True)
class CID:
    """A content identifier. ``digest`` is the multihash digest (for sha2-256, 32 bytes)."""

    version: int
    codec: int
    hash_code: int
    digest: bytes

    def __post_init__(self) -> None:
        if self.version not in (0, 1):
            raise BadInputError(f"unsupported CID version {self.version}", field="cid")
        if self.version == 0 and (self.codec != DAG_PB or self.hash_code != SHA2_256 or len(self.digest) != 32):
            raise BadInputError("CIDv0 must be dag-pb with a 32-byte sha2-256 multihash", field="cid")

    @property
    def multihash(self) -> bytes:
        return encode_varint(self.hash_code) + encode_varint(len(self.digest)) + self.digest

    @property
    def bytes(self) -> bytes:
        """Binary form (what dag-pb links and CAR files carry)."""
        if self.version == 0:
            return self.multihash
        return encode_varint(1) + encode_varint(self.codec) + self.multihash

    @property
    def codec_name(self) -> str:
        return _CODEC_NAMES.get(self.codec, hex(self.codec))

    def encode(self) -> str:
        """String form: base58btc for v0, multibase base32 (``b...``) for v1, as IPFS prints them."""
        if self.version == 0:
            return b58encode(self.multihash)
        return "b" + b32encode(self.bytes)

    def __str__(self) -> str:
        return self.encode()

    def to_v1(self) -> CID:
        return CID(1, self.codec, self.hash_code, self.digest)

    @staticmethod
    def from_bytes(buf: _Buf, offset: int = 0) -> tuple[CID, int]:
        """Parse a binary CID at ``offset``; returns (cid, new offset)."""
        if len(buf) - offset >= 2 and buf[offset] == 0x12 and buf[offset + 1] == 0x20:
            end = offset + 34
            if end > len(buf):
                raise BadInputError("truncated CIDv0", field="cid")
            return CID(0, DAG_PB, SHA2_256, bytes(buf[offset + 2 : end])), end
        version, i = decode_varint(buf, offset)
        if version != 1:
            raise BadInputError(f"unsupported CID version {version}", field="cid")
        codec, i = decode_varint(buf, i)
        hash_code, i = decode_varint(buf, i)
        length, i = decode_varint(buf, i)
        if i + length > len(buf):
            raise BadInputError("truncated multihash in CID", field="cid")
        return CID(1, codec, hash_code, bytes(buf[i : i + length])), i + length

    @staticmethod
    def decode(s: str) -> CID:
        """Parse a CID string (``Qm...`` v0, ``b...`` base32 v1, ``z...`` base58btc v1)."""
        if not isinstance(s, str) or not s:
            raise BadInputError("empty CID", field="cid")
        if len(s) > MAX_CID_TEXT:  # base58 decoding is quadratic in the length: refuse absurd ones first
            raise BadInputError(f"CID text of {len(s)} characters is too long (at most {MAX_CID_TEXT})",
                                field="cid")
        if len(s) == 46 and s.startswith("Qm"):
            raw = b58decode(s)
        elif s[0] in "bB":
            raw = b32decode(s[1:])
        elif s[0] == "z":
            raw = b58decode(s[1:])
        else:
            raise BadInputError(f"unsupported multibase prefix {s[0]!r} in CID {s!r}", field="cid")
        cid, end = CID.from_bytes(raw)
        if end != len(raw):
            raise BadInputError(f"trailing bytes after CID {s!r}", field="cid")
        return cid


def raw_cid(data: bytes | bytearray | memoryview) -> CID:
    """CIDv1 of a raw block (codec 0x55, sha2-256)."""
    return CID(1, RAW, SHA2_256, hashlib.sha256(data).digest())


def verify_block(cid: CID, data: bytes | bytearray | memoryview) -> None:
    """Raise :class:`VerificationError` unless ``data`` hashes to ``cid``'s multihash."""
    if cid.hash_code == SHA2_256:
        found = hashlib.sha256(data).digest()
    elif cid.hash_code == IDENTITY:
        found = bytes(data)
    else:
        raise VerificationError(
            f"block {cid}: unsupported multihash code {hex(cid.hash_code)}", expected="sha2-256",
            found=hex(cid.hash_code),
        )
    if found != cid.digest:
        raise VerificationError(
            f"block does not match its CID {cid}", expected=cid.digest.hex(), found=found.hex(), cid=str(cid)
        )
