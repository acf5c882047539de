"""The incremental mirror export keeps files already in the directory only when the directory's
checkpoint is this log's (issue 17 sweep: files found by stat must not stand in for this log's
tiles when they are another log's, or a forked copy's)."""

import json

from ailedger.tlog.ledger import Ledger
from ailedger.tlog.mirror import entry_bundle_bytes, export_tiles, tile_bytes


def _ledger(path, origin, n, salt):
    led = Ledger.init(path, origin)
    a = led.identities.create("a")
    led.append_entries([led.make_entry("note", {"i": i, "salt": salt}, a).leaf_bytes for i in range(n)],
                       parallel=False)
    return led, a


def _mirror_is(led, site):
    size = led.size
    for n in range(size // 256):
        assert (site / f"tile/0/{n:03d}").read_bytes() == tile_bytes(led.store, 0, n, size), n
        assert (site / f"tile/entries/{n:03d}").read_bytes() == entry_bundle_bytes(led.store, n, size), n


def test_another_logs_tiles_are_not_kept(tmp_path):
    a, _ = _ledger(tmp_path / "a", "example.org/a", 600, "a")
    b, _ = _ledger(tmp_path / "b", "example.org/b", 600, "b")
    site = tmp_path / "site"
    export_tiles(a, site)
    res = export_tiles(b, site)  # the same directory, another log
    _mirror_is(b, site)
    assert res["kept"] == 0 and "not this log's" in res["rewritten_because"]
    again = export_tiles(b, site)  # now it is b's mirror: full files are kept again
    assert again["kept"] >= 4 and "rewritten_because" not in again
    a.close()
    b.close()


def test_a_forked_copy_of_the_same_log_does_not_reuse_tiles(tmp_path):
    """Same key and origin, but the log was restored from a backup and grew differently: the tree
    at the directory's checkpoint size has another root, so nothing is kept."""
    import shutil

    led, who = _ledger(tmp_path / "l", "example.org/l", 100, "x")
    shutil.copytree(tmp_path / "l", tmp_path / "backup")
    led.append_entries([led.make_entry("note", {"i": i, "branch": 1}, who).leaf_bytes for i in range(500)],
                       parallel=False)
    site = tmp_path / "site"
    export_tiles(led, site)
    led.close()
    fork = Ledger.open(tmp_path / "backup")
    who2 = fork.identities.load("a", None)
    fork.append_entries([fork.make_entry("note", {"i": i, "branch": 2}, who2).leaf_bytes for i in range(600)],
                        parallel=False)
    res = export_tiles(fork, site)
    _mirror_is(fork, site)
    assert res["kept"] == 0 and "does not have the root" in res["rewritten_because"], json.dumps(res)
    fork.close()
