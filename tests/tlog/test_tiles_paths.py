import pytest

from ailedger.errors import BadInputError
from ailedger.tlog.tiles import encode_index, entry_bundle, parse_tile_path, split_entry_bundle, tile_path


def test_paths_per_spec_examples():
    # C2SP tlog-tiles: index 1234067 is x001/x234/067
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 5, 17) == "tile/1/005.p/17"
    assert tile_path("entries", 0, 3) == "tile/entries/000.p/3"
    assert encode_index(999) == "999" and encode_index(1000) == "x001/000"


@pytest.mark.parametrize("p,want", [("tile/0/x001/x234/067", (0, 1234067, 256)),
                                     ("/tile/entries/000.p/8", ("entries", 0, 8))])
def test_parse(p, want):
    assert parse_tile_path(p) == want


@pytest.mark.parametrize("bad", ["tile/0/1234", "tile/0/../../etc/passwd", "tile/0/x000/001", "tile/a/000",
                                 "tile/0/000.p/256", "tile/0/000.p/0", "tile/99/000"])
def test_parse_rejects(bad):
    with pytest.raises(BadInputError):
        parse_tile_path(bad)


def test_entry_bundle_roundtrip_and_truncation():
    b = entry_bundle([b"a", b"", b"xyz"])
    assert split_entry_bundle(b) == [b"a", b"", b"xyz"]
    with pytest.raises(BadInputError):
        split_entry_bundle(b[:-1])
