"""A tlog-tiles client written from the C2SP text (c2sp.org/tlog-tiles), used to read mirrors back:
every hash tile, the root it gives, every entry bundle."""

from __future__ import annotations

import base64
import hashlib
import urllib.error
import urllib.request


def mth(hs: list[bytes]) -> bytes:
    """RFC 6962 / RFC 9162 Merkle tree hash over leaf hashes."""
    if len(hs) == 1:
        return hs[0]
    k = 1 << ((len(hs) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(hs[:k]) + mth(hs[k:])).digest()


def index_path(n: int) -> str:
    """<N> of a tile path: groups of three digits, all but the last prefixed with x."""
    s = f"{n:03d}"
    s = "0" * (-len(s) % 3) + s
    groups = [s[i:i + 3] for i in range(0, len(s), 3)]
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def get(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def read_back(base: str) -> tuple[int, bytes, list[bytes]]:
    """Read a whole log from a tile site; checks every tile's size, cache headers and the root.

    Returns (size, root, entries)."""
    status, headers, body = get(base + "/checkpoint")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    lines = body.decode().split("\n")
    size, root = int(lines[1]), base64.b64decode(lines[2])
    leaf_hashes: list[bytes] = []
    for t in range((size + 255) // 256):
        w = min(256, size - 256 * t)
        st, hd, data = get(f"{base}/tile/0/{index_path(t)}" + (f".p/{w}" if w < 256 else ""))
        assert st == 200 and len(data) == 32 * w
        assert hd["Cache-Control"] == ("public, max-age=31536000, immutable" if w == 256 else "public, max-age=60")
        leaf_hashes += [data[i:i + 32] for i in range(0, len(data), 32)]
    assert mth(leaf_hashes) == root
    if size >= 256:
        st, _, data = get(f"{base}/tile/1/000" + (f".p/{size >> 8}" if size < 65536 else ""))
        assert st == 200 and data[:32] == mth(leaf_hashes[:256])
    entries: list[bytes] = []
    for t in range((size + 255) // 256):
        w = min(256, size - 256 * t)
        st, _, b = get(f"{base}/tile/entries/{index_path(t)}" + (f".p/{w}" if w < 256 else ""))
        assert st == 200
        i = 0
        while i < len(b):
            ln = int.from_bytes(b[i:i + 2], "big")
            entries.append(b[i + 2:i + 2 + ln])
            i += 2 + ln
    assert [hashlib.sha256(b"\x00" + e).digest() for e in entries] == leaf_hashes
    return size, root, entries
