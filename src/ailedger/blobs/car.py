"""CAR v1 (Content Addressable aRchive) encoding and decoding.

Format (IPLD CARv1 spec): ``varint(len(header)) header`` where header is the dag-cbor map
``{"roots": [CID...], "version": 1}``, followed by sections ``varint(len(cid)+len(data)) cid data``.
dag-cbor: map keys sorted length-first then bytewise, CIDs as tag 42 over bytes ``0x00 || cid``.

Pure: the decoder works on a byte source callable (``read(n) -> bytes``) so the caller owns I/O;
every block is checked against its CID before it is handed out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ailedger.blobs.cid import CID, decode_varint, encode_varint, verify_block
from ailedger.blobs.unixfs import Block
from ailedger.errors import BadInputError, VerificationError

__all__ = [
    "MAX_SECTION",
    "decode_header",
    "encode_header",
    "encode_section",
    "iter_sections",
    "read_car_bytes",
]

MAX_SECTION = 64 << 20  # refuse absurd section lengths before allocating


# --- minimal dag-cbor (just what a CAR header needs) ---------------------------------------------


def _cbor_head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, width in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * width):
            return bytes([major << 5 | extra]) + n.to_bytes(width, "big")
    raise BadInputError("integer too large for CBOR", field="cbor")


def _cbor(obj: Any) -> bytes:
    if isinstance(obj, bool) or obj is None:
        raise BadInputError("unsupported CBOR value", field="cbor")
    if isinstance(obj, int):
        return _cbor_head(0, obj) if obj >= 0 else _cbor_head(1, -1 - obj)
    if isinstance(obj, CID):
        raw = b"\x00" + obj.bytes
        return b"\xd8\x2a" + _cbor_head(2, len(raw)) + raw
    if isinstance(obj, bytes):
        return _cbor_head(2, len(obj)) + obj
    if isinstance(obj, str):
        b = obj.encode("utf-8")
        return _cbor_head(3, len(b)) + b
    if isinstance(obj, list):
        return _cbor_head(4, len(obj)) + b"".join(_cbor(x) for x in obj)
    if isinstance(obj, dict):
        keys = sorted(obj, key=lambda k: (len(k.encode()), k.encode()))
        return _cbor_head(5, len(obj)) + b"".join(_cbor(k) + _cbor(obj[k]) for k in keys)
    raise BadInputError(f"unsupported CBOR type {type(obj).__name__}", field="cbor")


def _cbor_decode(buf: bytes, i: int = 0, depth: int = 0) -> tuple[Any, int]:
    if depth > 16:
        raise BadInputError("CBOR nested too deeply", field="car header")
    if i >= len(buf):
        raise BadInputError("truncated CBOR", field="car header")
    ib = buf[i]
    major, info = ib >> 5, ib & 31
    i += 1
    if info < 24:
        n = info
    elif info in (24, 25, 26, 27):
        w = 1 << (info - 24)
        if i + w > len(buf):
            raise BadInputError("truncated CBOR", field="car header")
        n = int.from_bytes(buf[i : i + w], "big")
        i += w
    else:
        raise BadInputError("indefinite-length or reserved CBOR item", field="car header")
    if major == 0:
        return n, i
    if major == 1:
        return -1 - n, i
    if major in (2, 3):
        if i + n > len(buf):
            raise BadInputError("truncated CBOR string", field="car header")
        raw = bytes(buf[i : i + n])
        if major == 2:
            return raw, i + n
        try:
            return raw.decode("utf-8"), i + n
        except UnicodeDecodeError:
            raise BadInputError("CBOR text string is not UTF-8", field="car header") from None
    if major == 4:
        items = []
        for _ in range(n):
            v, i = _cbor_decode(buf, i, depth + 1)
            items.append(v)
        return items, i
    if major == 5:
        d: dict[Any, Any] = {}
        for _ in range(n):
            k, i = _cbor_decode(buf, i, depth + 1)
            if not isinstance(k, str):  # dag-cbor: map keys are text strings
                raise BadInputError("CBOR map key is not a text string", field="car header")
            if k in d:
                raise BadInputError(f"CBOR map repeats the key {k[:40]!r}", field="car header")
            v, i = _cbor_decode(buf, i, depth + 1)
            d[k] = v
        return d, i
    if major == 6:
        v, i = _cbor_decode(buf, i, depth + 1)
        if n != 42 or not isinstance(v, bytes) or not v or v[0] != 0:
            raise BadInputError(f"unsupported CBOR tag {n}", field="car header")
        cid, end = CID.from_bytes(v, 1)
        if end != len(v):
            raise BadInputError("trailing bytes in CID link", field="car header")
        return cid, i
    raise BadInputError("unsupported CBOR major type", field="car header")


# --- CAR ----------------------------------------------------------------------------------------


def encode_header(roots: list[CID]) -> bytes:
    h = _cbor({"roots": list(roots), "version": 1})
    return encode_varint(len(h)) + h


def encode_section(block: Block) -> bytes:
    c = block.cid.bytes
    return encode_varint(len(c) + len(block.data)) + c + block.data


def _read_varint(read: Callable[[int], bytes], what: str) -> int | None:
    buf = bytearray()
    while True:
        b = read(1)
        if not b:
            if buf:
                raise BadInputError(f"truncated varint in {what}", field="car")
            return None
        buf += b
        if not b[0] & 0x80:
            return decode_varint(bytes(buf))[0]
        if len(buf) >= 9:
            raise BadInputError(f"varint too long in {what}", field="car")


def _read_exact(read: Callable[[int], bytes], n: int, what: str) -> bytes:
    out = bytearray()
    while len(out) < n:
        b = read(n - len(out))
        if not b:
            raise BadInputError(f"truncated {what}: wanted {n} bytes, got {len(out)}", field="car")
        out += b
    return bytes(out)


def decode_header(read: Callable[[int], bytes]) -> list[CID]:
    n = _read_varint(read, "header length")
    if n is None or n == 0:
        raise BadInputError("not a CAR file: empty header", field="car")
    if n > 1 << 20:
        raise BadInputError(f"CAR header of {n} bytes is too large", field="car")
    raw = _read_exact(read, n, "CAR header")
    h, end = _cbor_decode(raw)
    if end != len(raw) or not isinstance(h, dict):
        raise BadInputError("CAR header is not a single CBOR map", field="car")
    if h.get("version") != 1:
        raise BadInputError(f"unsupported CAR version {h.get('version')!r} (only v1)", field="car")
    roots = h.get("roots")
    if not isinstance(roots, list) or not all(isinstance(r, CID) for r in roots):
        raise BadInputError("CAR header roots must be a list of CIDs", field="car")
    return roots


def iter_sections(read: Callable[[int], bytes], verify: bool = True) -> Iterator[Block]:
    """Yield the blocks after the header; each is checked against its CID (VerificationError)."""
    index = 0
    while True:
        n = _read_varint(read, "section length")
        if n is None:
            return
        if n == 0 or n > MAX_SECTION:
            raise BadInputError(f"CAR section {index} has invalid length {n}", field="car", section=index)
        raw = _read_exact(read, n, f"CAR section {index}")
        cid, off = CID.from_bytes(raw)
        data = raw[off:]
        if verify:
            try:
                verify_block(cid, data)
            except VerificationError as e:
                raise VerificationError(
                    f"CAR section {index}: block does not match its CID {cid}",
                    expected=e.expected, found=e.found, section=index, cid=str(cid),
                ) from None
        yield Block(cid, data)
        index += 1


def read_car_bytes(data: bytes) -> tuple[list[CID], list[Block]]:
    pos = 0

    def read(n: int) -> bytes:
        nonlocal pos
        out = data[pos : pos + n]
        pos += len(out)
        return out

    roots = decode_header(read)
    return roots, list(iter_sections(read))
