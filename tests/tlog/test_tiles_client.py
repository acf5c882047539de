"""A tile client written from the C2SP tlog-tiles text alone reads our export back:
it rebuilds the checkpoint's root from the hash tiles and finds every entry in the bundles."""

import base64
import hashlib
from pathlib import Path

import pytest

from ailedger.tlog.ledger import Ledger


def read_tile(site: Path, level: int, n: int, size: int) -> list[bytes]:
    # the spec: tile index as 3-digit groups, all but the last prefixed with x; partial tiles end .p/<W>
    s = f"{n:03d}"
    s = "0" * (-len(s) % 3) + s
    groups = [s[i:i + 3] for i in range(0, len(s), 3)]
    path = "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])
    width = min(256, (size >> (8 * level)) - 256 * n)
    p = site / "tile" / str(level) / (path + (f".p/{width}" if width < 256 else ""))
    data = p.read_bytes()
    assert len(data) == 32 * width
    return [data[i:i + 32] for i in range(0, len(data), 32)]


def mth(hs):
    if len(hs) == 1:
        return hs[0]
    k = 1 << ((len(hs) - 1).bit_length() - 1)
    return hashlib.sha256(b"\x01" + mth(hs[:k]) + mth(hs[k:])).digest()


@pytest.mark.parametrize("n", [1, 255, 256, 257, 700])
def test_tiles_reproduce_root_and_entries(tmp_path, n):
    led = Ledger.init(tmp_path / "l", "example.org/tiles")
    a = led.identities.create("a")
    datas = [led.make_entry("note", {"i": i}, a).leaf_bytes for i in range(n)]
    led.append_entries(datas, parallel=False)
    site = tmp_path / "site"
    from ailedger.tlog.mirror import export_tiles
    export_tiles(led, site)
    lines = (site / "checkpoint").read_text().split("\n")
    size, root = int(lines[1]), base64.b64decode(lines[2])
    assert size == n
    # level-0 tiles give every leaf hash; rebuild the root from them alone
    leaf_hashes = [h for t in range((size + 255) // 256) for h in read_tile(site, 0, t, size)]
    assert mth(leaf_hashes) == root
    # a level-1 tile holds the roots of full 256-leaf subtrees
    if size >= 256:
        assert read_tile(site, 1, 0, size)[0] == mth(leaf_hashes[:256])
    # entry bundles: big-endian uint16 length prefixes
    got = []
    for t in range((size + 255) // 256):
        w = min(256, size - 256 * t)
        b = (site / "tile" / "entries" / (f"{t:03d}" + (f".p/{w}" if w < 256 else ""))).read_bytes()
        i = 0
        while i < len(b):
            ln = int.from_bytes(b[i:i + 2], "big")
            got.append(b[i + 2:i + 2 + ln])
            i += 2 + ln
    assert got == datas
    assert [hashlib.sha256(b"\x00" + d).digest() for d in got] == leaf_hashes
    led.close()
