"""The API serves tiles exactly as the static mirror does (C2SP tlog-tiles): one canonical path per
tile, ASCII digits only, partial tiles only at the right edge and at widths a checkpoint needs.
The C mirror server (`ailedger tiles serve`, src/ailedger/tlog/_tiled.c) is the reference."""

from __future__ import annotations

import http.client
import time

import pytest

from ailedger.tlog import tileserver
from ailedger.tlog.mirror import export_tiles
from tests.http.helpers import Server, append_notes, ledger_with_notes
from tests.http.test_tile_server import Served

N = 700  # level 0: 000, 001 full, 002.p/188; level 1: 000.p/2; entries alike

NON_CANONICAL = [
    "/tile/00/000", "/tile/01/000.p/2", "/tile/0/001.p/045", "/tile/0/002.p/0188", "/tile/0/002.p/%31%38%38",
    "/tile/0/%30%30%30", "/tile/%30/000", "/tile/0/00", "/tile/0/0000", "/tile/0/x000/001", "/tile/0/x00/000",
    "/tile/0/000/", "/tile/0/000.p/", "/tile/0/000.p/256", "/tile/0/002.p/0", "/tile/entries/002.p/0188",
    "/tile/%D9%A0/000.p/7", "/tile/0/%D9%A0%D9%A0%D9%A0", "/tile/0/00%D9%A1", "/tile/entries//000",
    "/tile/0//000", "/tile/0/000.P/2", "/tile/+0/000", "/tile/0/-001", "/tile/0/%20000",
    "/tile/0/" + "x999/" * 1434 + "999", "/tile/64/000", "/tile/99/000.p/1",
]
CANONICAL = [
    "/tile/0/000", "/tile/0/001", "/tile/0/002", "/tile/0/003", "/tile/0/x001/000",
    "/tile/1/000", "/tile/1/001", "/tile/2/000", "/tile/63/000",
    "/tile/entries/000", "/tile/entries/001", "/tile/entries/002", "/tile/entries/003",
    *[f"/tile/0/002.p/{w}" for w in (1, 87, 88, 100, 187, 188, 189, 255)],
    *[f"/tile/0/000.p/{w}" for w in (1, 188, 255)],
    *[f"/tile/entries/002.p/{w}" for w in (1, 50, 187, 188, 189)],
    *[f"/tile/1/000.p/{w}" for w in (1, 2, 3)],
    "/tile/2/000.p/1",
]


def _get(port: int, path: str) -> tuple[int, bytes]:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.putrequest("GET", path, skip_accept_encoding=True)
        c.endheaders()
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    root = tmp_path_factory.mktemp("tile-paths")
    led, _ = ledger_with_notes(root / "ledger", "test.example/tile-paths", N)
    site = root / "site"
    export_tiles(led, site)  # signs the one checkpoint, at N
    assert [s for s, _ in led.store.checkpoints()] == [N]
    led.close()
    api = Server(root / "ledger")
    mirror = Served(site) if tileserver.available() else None
    yield api, mirror
    api.stop()
    if mirror is not None:
        mirror.stop()


@pytest.mark.parametrize("path", NON_CANONICAL)
def test_non_canonical_spellings_name_no_tile(both, path):
    api, _mirror = both
    st, body = _get(api.port, path)
    assert st == 404 and b'"not_found"' in body, (path, st, body[:200])
    assert len(body) < 2000


def test_the_api_answers_every_tile_path_as_the_mirror_does(both):
    api, mirror = both
    if mirror is None:
        pytest.skip("ailedger.tlog._tiled is not built: the C mirror server is the reference")
    diffs = []
    for path in NON_CANONICAL + CANONICAL:
        a, m = _get(api.port, path), _get(mirror.port, path)
        if a[0] != m[0] or (a[0] == 200 and a[1] != m[1]):
            diffs.append((path, a[0], m[0]))
    assert not diffs, diffs
    # the expected set, spelled out: the right-edge partial at the checkpoint's width, nothing older
    served = [p for p in CANONICAL if _get(api.port, p)[0] == 200]
    assert served == ["/tile/0/000", "/tile/0/001", "/tile/entries/000", "/tile/entries/001",
                      "/tile/0/002.p/188", "/tile/entries/002.p/188", "/tile/1/000.p/2"]


def test_partial_tiles_follow_the_checkpoints_and_go_when_full(tmp_path):
    led, who = ledger_with_notes(tmp_path / "ledger", "test.example/partials", 300)
    led.checkpoint()  # size 300: tile 0/001.p/44 is needed
    api = Server(tmp_path / "ledger")
    try:
        assert _get(api.port, "/tile/0/001.p/44")[0] == 200
        assert _get(api.port, "/tile/0/001.p/43")[0] == 404  # no checkpoint at 299
        append_notes(led, who, 300, 10)
        led.checkpoint()  # 310: now 0/001.p/54, and 0/001.p/44 still (a checkpoint was produced at 300)
        assert _get(api.port, "/tile/0/001.p/54")[0] == 200 and _get(api.port, "/tile/0/001.p/44")[0] == 200
        append_notes(led, who, 310, 202)
        led.checkpoint()  # 512: tile 0/001 is full; its partials may go (C2SP), and they do
        time.sleep(1.2)  # past the short cache of partial tiles
        assert _get(api.port, "/tile/0/001")[0] == 200
        for w in (44, 54):
            st, body = _get(api.port, f"/tile/0/001.p/{w}")
            assert st == 404 and b"now full" in body
    finally:
        api.stop()
        led.close()
