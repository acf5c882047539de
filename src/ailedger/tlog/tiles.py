"""C2SP tlog-tiles: tile coordinates, paths and entry bundles (tile height 8, width 256)."""

from __future__ import annotations

import re

from ailedger.errors import BadInputError

__all__ = [
    "MAX_INDEX_GROUPS",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "encode_index",
    "entry_bundle",
    "parse_tile_path",
    "split_entry_bundle",
    "tile_path",
]

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


# C2SP tlog-tiles: <L> 0..63 and <W> 1..255 in decimal ASCII with no leading zeroes; <N> in 3-digit
# groups, all but the last prefixed by "x". Only ASCII digits ([0-9], never \d, which takes any
# Unicode digit). The index is at most MAX_INDEX_GROUPS groups: a log has fewer than 2^63 entries, so
# a tile index has at most 19 digits, and a longer one names nothing (and never reaches int()).
MAX_INDEX_GROUPS = 7
_TILE_RE = re.compile(r"tile/(entries|0|[1-9][0-9]?)/((?:x[0-9]{3}/){0,"
                      + str(MAX_INDEX_GROUPS - 1) + r"})([0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")


def parse_tile_path(path: str) -> tuple[str | int, int, int]:
    """Parse ``tile/<L>/<N>[.p/<W>]`` (L may be ``entries``) -> (level, index, width).

    Only the one canonical spelling of each tile is accepted (C2SP tlog-tiles): no leading zeroes
    in L or W, N in its shortest 3-digit-group form, W 1..255, L 0..63, ASCII digits only; anything
    else is a BadInputError naming the rule (a server answers it as "no such tile")."""
    m = _TILE_RE.fullmatch(path.removeprefix("/"))
    if not m:
        raise BadInputError(f"not a tile path in the C2SP tlog-tiles form: {path[:200]!r}", field="path")
    level_s, prefix, last, w = m.groups()
    level: str | int = level_s if level_s == "entries" else int(level_s)
    if isinstance(level, int) and level > 63:
        raise BadInputError("tile level must be 0..63", field="path")
    width = int(w) if w is not None else TILE_WIDTH
    if w is not None and width >= TILE_WIDTH:
        raise BadInputError("partial tile width must be 1..255", field="path")
    n = int(prefix.replace("x", "").replace("/", "") + last)
    if encode_index(n) != prefix + last:
        raise BadInputError(f"tile index is not in canonical form: {path[:200]!r}", field="path")
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
