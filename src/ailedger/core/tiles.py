"""C2SP tlog-tiles: tile coordinates, paths and entry bundles (tile height 8, width 256)."""

from __future__ import annotations

import re

from ailedger.core.errors import BadInputError

__all__ = ["TILE_HEIGHT", "TILE_WIDTH", "encode_index", "tile_path", "parse_tile_path", "entry_bundle",
           "split_entry_bundle"]

TILE_HEIGHT = 8
TILE_WIDTH = 256


def encode_index(n: int) -> str:
    """Tile index as path segments of three digits, all but the last prefixed by ``x``."""
    if n < 0:
        raise BadInputError("tile index must not be negative")
    s = str(n)
    s = "0" * (-len(s) % 3) + s
    parts = [s[i : i + 3] for i in range(0, len(s), 3)]
    return "/".join(["x" + p for p in parts[:-1]] + [parts[-1]])


def tile_path(level: int | str, n: int, width: int = TILE_WIDTH) -> str:
    if not 1 <= width <= TILE_WIDTH:
        raise BadInputError("tile width must be 1..256")
    p = f"tile/{level}/{encode_index(n)}"
    if width < TILE_WIDTH:
        p += f".p/{width}"
    return p


_TILE_RE = re.compile(r"^tile/(entries|\d{1,2})/((?:x\d{3}/)*)(\d{3})(?:\.p/(\d{1,3}))?$", re.ASCII)


def parse_tile_path(path: str) -> tuple[str | int, int, int]:
    """Parse ``tile/<L>/<N>[.p/<W>]`` (L may be ``entries``) -> (level, index, width)."""
    m = _TILE_RE.match(path.lstrip("/"))
    if not m:
        raise BadInputError(f"not a tile path: {path!r}", field="path")
    level_s, prefix, last, w = m.groups()
    level: str | int = level_s if level_s == "entries" else int(level_s)
    if isinstance(level, int) and level > 63:
        raise BadInputError("tile level out of range", field="path")
    digits = prefix.replace("x", "").replace("/", "") + last
    if len(digits) > 21:  # a tile index is below 2^64; int() of 4,300+ digits would raise ValueError
        raise BadInputError("tile index out of range", field="path")
    width = int(w) if w is not None else TILE_WIDTH
    if not 1 <= width < TILE_WIDTH and w is not None:
        raise BadInputError("partial tile width must be 1..255", field="path")
    n = int(digits)
    if encode_index(n) != prefix + last:
        raise BadInputError(f"tile index is not in canonical form: {path!r}", field="path")
    return level, n, width


def entry_bundle(entries: list[bytes]) -> bytes:
    out = bytearray()
    for e in entries:
        if len(e) > 0xFFFF:
            raise BadInputError("entry too large for an entry bundle")
        out += len(e).to_bytes(2, "big") + e
    return bytes(out)


def split_entry_bundle(data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        if i + 2 > len(data):
            raise BadInputError("truncated entry bundle")
        n = int.from_bytes(data[i : i + 2], "big")
        if i + 2 + n > len(data):
            raise BadInputError("truncated entry bundle")
        out.append(data[i + 2 : i + 2 + n])
        i += 2 + n
    return out
