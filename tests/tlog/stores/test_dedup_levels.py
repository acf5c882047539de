"""Store format 4 (SQLite): the dedup keys in three levels (``dedup0``, ``dedup1``, ``dedup``; stores/sqlite._fold).

An append inserts its keys into the small newest level and the levels are folded down when the log's size
crosses their boundaries, so a small append dirties a few pages of a small table instead of one page of the
whole index per entry. Whatever the append sizes and wherever a key sits, every leaf is found by its hash, a
re-sent leaf is a duplicate with its first index, each key is in exactly one level, and a format-3 store
(every key in ``dedup``) opens, migrates and keeps deduplicating."""

import os
import sqlite3

import pytest

from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow, SQLiteStore
from ailedger.tlog.stores import sqlite as sq
from ailedger.tlog.stores.base import STORE_FORMAT
from tests.tlog.stores.levels import downgrade, row_counts


def _rows(start: int, n: int) -> list[LeafRow]:
    out = []
    for i in range(start, start + n):
        data = b'{"i":%d,"pad":"%s"}' % (i, b"y" * (i % 61))
        out.append(LeafRow(data, leaf_hash(data), ("type:t", f"subject:{i:08d}")))
    return out


def _level_counts(path) -> dict[str, int]:
    return row_counts(path, sq._LEVELS)


@pytest.fixture
def small_levels(monkeypatch):
    """Levels of 2^3 and 2^6 entries: every kind of fold within a few hundred entries."""
    monkeypatch.setattr(sq, "LEVEL0_BITS", 3)
    monkeypatch.setattr(sq, "LEVEL1_BITS", 6)
    monkeypatch.setattr(sq, "LARGE_APPEND", 12)  # appends of 12 or more: their keys into dedup1 directly


def test_keys_move_down_the_levels_and_every_leaf_is_found(tmp_path, small_levels):
    path = tmp_path / "l.db"
    st = SQLiteStore(path, create=True)
    log = TransparencyLog(st, "example.org/levels")
    pos = 0
    model = {"dedup0": 0, "dedup1": 0, "dedup": 0}  # where the keys should be: the sizes alone say
    for n in (1, 2, 5, 7, 1, 8, 9, 16, 3, 64, 1, 65, 130, 2, 50, 11, 12, 3, 13):  # below, on, across boundaries
        res = log.append(_rows(pos, n), sign=False)
        assert [r.index for r in res] == list(range(pos, pos + n)) and not any(r.duplicate for r in res)
        model["dedup1" if n >= 12 else "dedup0"] += n
        if (pos + n) >> 6 != pos >> 6:  # crossed a multiple of 2^6: every level into the oldest
            model = {"dedup0": 0, "dedup1": 0, "dedup": pos + n}
        elif (pos + n) >> 3 != pos >> 3:  # crossed a multiple of 2^3: the newest into the middle one
            model["dedup1"] += model["dedup0"]
            model["dedup0"] = 0
        pos += n
        counts = _level_counts(path)
        assert counts == model
        assert counts["dedup0"] < 8 + 12 and counts["dedup1"] < 64 + n
    want = _rows(0, pos)
    assert st.indices_of([r.hash for r in want]) == {r.hash: i for i, r in enumerate(want)}
    assert log.audit().ok
    st.close()


@pytest.mark.parametrize("size", [4, 13])  # keys into dedup0, or (12 or more) straight into dedup1
@pytest.mark.parametrize("old", [0, 300, 330, 338])  # in dedup, in dedup (folded), in dedup1, in dedup0
def test_a_resent_leaf_is_a_duplicate_whatever_its_level(tmp_path, small_levels, old, size):
    path = tmp_path / "l.db"
    st = SQLiteStore(path, create=True)
    log = TransparencyLog(st, "example.org/levels")
    for a, n in ((0, 300), (300, 20), (320, 5), (325, 12), (337, 3)):
        log.append(_rows(a, n), sign=False)
    # 0..319 in dedup, 320..336 in dedup1 (12 straight in, then the 5 before folded in), 337..339 in dedup0
    assert _level_counts(path) == {"dedup": 320, "dedup1": 17, "dedup0": 3}
    batch = _rows(340, size)
    batch[2] = _rows(old, 1)[0]
    batch.append(_rows(old, 1)[0])  # and twice in the same batch
    res = log.append(batch, sign=False)
    assert res[2] == (old, batch[2].hash, True) and res[-1] == (old, batch[2].hash, True)
    assert [r.index for r in res if not r.duplicate] == list(range(340, 340 + size - 1))
    again = log.append(_rows(old, 1), sign=False)  # alone
    assert again[0].duplicate and again[0].index == old
    assert st.size() == 340 + size - 1 and log.audit().ok
    st.close()


def test_a_small_append_to_a_large_log_writes_few_pages(tmp_path):
    """The point of the levels: 50 entries appended to a log of 20,000 dirty about 20 pages (WAL frames) of 16
    KiB; with every key in one table (format 3) they dirtied one page of it per entry, about 40 frames."""
    path = tmp_path / "l.db"
    st = SQLiteStore(path, create=True)
    log = TransparencyLog(st, "example.org/levels")
    for a in range(0, 20000, 2000):
        log.append(_rows(a, 2000), sign=False)
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    groups = 10
    for k in range(groups):
        log.append(_rows(20000 + 50 * k, 50), sign=False)
    frames = (os.path.getsize(f"{path}-wal") - 32) / (sq.PAGE_SIZE + 24)
    assert frames / groups < 26, frames / groups
    st.close()


def _downgrade(path) -> None:
    """Rewrite a store as format 3 kept it: every dedup key in ``dedup``, no newer level."""
    downgrade(path, "dedup", "k, idx", ("dedup1", "dedup0"), 3)


def test_a_format3_store_migrates_and_keeps_deduplicating(tmp_path, small_levels):
    path = tmp_path / "l.db"
    st = SQLiteStore(path, create=True)
    log = TransparencyLog(st, "example.org/levels")
    log.append(_rows(0, 100), sign=False)
    st.close()
    _downgrade(path)
    assert _level_counts_v3(path) == 100

    st = SQLiteStore(path)
    assert st.get_meta("format") == str(STORE_FORMAT) == "5" and st.migrated is False  # nothing moved
    log = TransparencyLog(st, "example.org/levels")
    assert _level_counts(path) == {"dedup0": 0, "dedup1": 0, "dedup": 100}
    res = log.append(_rows(99, 30), sign=False)  # entry 99 again, then 29 new ones
    assert res[0].duplicate and res[0].index == 99
    assert [r.index for r in res[1:]] == list(range(100, 129))
    want = _rows(0, 129)
    assert st.indices_of([r.hash for r in want]) == {r.hash: i for i, r in enumerate(want)}
    assert sum(_level_counts(path).values()) == 129
    assert log.audit().ok
    st.close()


def _level_counts_v3(path) -> int:
    con = sqlite3.connect(path)
    try:
        assert con.execute("SELECT count(*) FROM sqlite_master WHERE name IN ('dedup0', 'dedup1')").fetchone()[0] == 0
        return int(con.execute("SELECT count(*) FROM dedup").fetchone()[0])
    finally:
        con.close()

