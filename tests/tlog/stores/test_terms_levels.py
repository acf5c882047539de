"""Store format 5 (SQLite): the ``terms`` rows in four levels (``terms0``, ``terms1``, ``terms2``, ``terms``;
stores/sqlite._fold_terms).

An append inserts its term rows into the small newest level (or straight into the level it folds into) and the
levels are folded down when the log's size crosses their boundaries, so a small append whose entries name random
subjects dirties a few pages of a small table instead of one page of the whole index per entry. Whatever the
append sizes and wherever a row sits, ``find``, ``find_newest``, ``count`` and ``terms_present`` answer exactly as
one list per term does, each row is in exactly one level, a fold that fails leaves the store as it was (it is part
of the append's transaction), and a format-4 store (every row in ``terms``) opens, migrates and keeps answering."""

import os
import random
import sqlite3

import pytest

from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow, SQLiteStore
from ailedger.tlog.stores import sqlite as sq
from ailedger.tlog.stores.base import STORE_FORMAT
from tests.tlog.stores.levels import downgrade, row_counts

_SIGNERS = ("signer:a", "signer:b", "signer:c")


def _terms(i: int) -> tuple[str, ...]:
    # a type on every entry (a run), signers in turn (single rows), a subject of its own (random order in the
    # index), a subject shared by every 7th entry (rows of one term in several levels)
    out = ("type:t", _SIGNERS[i % 3], f"subject:{(i * 7919) % 100003:06d}")
    return out + ("subject:shared",) if i % 7 == 0 else out


def _rows(start: int, n: int) -> list[LeafRow]:
    out = []
    for i in range(start, start + n):
        data = b'{"i":%d}' % i
        out.append(LeafRow(data, leaf_hash(data), _terms(i)))
    return out


def _level_counts(path) -> dict[str, int]:
    return row_counts(path, sq.TERM_LEVELS)


def _single_rows(start: int, n: int) -> int:
    """How many ``terms`` rows (not runs) an append of entries start..start+n writes (base.split_runs: a term on
    consecutive entries of one append is one ``term_runs`` row instead)."""
    from ailedger.tlog.stores.base import split_runs

    singles, _ = split_runs(start, [_terms(i) for i in range(start, start + n)])
    return len(singles)


@pytest.fixture
def small_levels(monkeypatch):
    """Levels folded at 2^2, 2^4 and 2^6 entries: every kind of fold within a few hundred entries."""
    monkeypatch.setattr(sq, "TERM_BITS", (2, 4, 6))


def _check_reads(st: SQLiteStore, size: int, rng: random.Random) -> None:
    ref: dict[str, list[int]] = {}
    for i in range(size):
        for t in _terms(i):
            ref.setdefault(t, []).append(i)
    own = sorted(t for t in ref if t.startswith("subject:0"))
    names = ["type:t", "subject:shared", *_SIGNERS, "subject:nothing"] + rng.sample(own, min(5, len(own)))
    for t in names:
        want = ref.get(t, [])
        assert st.count(t) == len(want), t
        assert st.find(t, -1, 100000) == want, t
        for _ in range(4):
            after, limit = rng.randrange(-1, size + 1), rng.randrange(1, 40)
            assert st.find(t, after, limit) == [i for i in want if i > after][:limit], (t, after, limit)
            offset = rng.randrange(0, 20)
            assert st.find_newest(t, offset, limit) == want[::-1][offset : offset + limit], (t, offset, limit)
    assert st.terms_present(names) == {t for t in names if t in ref}


def test_rows_move_down_the_levels_and_every_read_answers_as_one_list(tmp_path, small_levels):
    path = tmp_path / "l.db"
    st = SQLiteStore(path, create=True)
    log = TransparencyLog(st, "example.org/terms")
    rng = random.Random(5)
    pos = 0
    model = dict.fromkeys(sq.TERM_LEVELS, 0)  # where the rows should be: the sizes alone say
    for n in (1, 2, 1, 3, 1, 8, 5, 16, 2, 1, 30, 64, 1, 2, 50, 3, 130, 1, 1, 7, 70, 2):  # below, on, across
        res = log.append(_rows(pos, n), sign=False)
        assert [r.index for r in res] == list(range(pos, pos + n))
        end = pos + n
        into = 0
        for lv, bits in enumerate((2, 4, 6)):
            if end >> bits != pos >> bits:
                into = lv + 1
        model[sq.TERM_LEVELS[into]] += _single_rows(pos, n)
        for newer in sq.TERM_LEVELS[:into]:  # the newer levels folded into it
            model[sq.TERM_LEVELS[into]] += model[newer]
            model[newer] = 0
        pos = end
        assert _level_counts(path) == model, (pos, n)
        _check_reads(st, pos, rng)
    assert model["terms"] and model["terms2"] + model["terms1"] + model["terms0"]  # rows in several levels
    con = sqlite3.connect(path)
    union = " UNION ALL ".join(f"SELECT term, idx FROM {t}" for t in sq.TERM_LEVELS)
    assert con.execute(f"SELECT count(*) FROM ({union})").fetchone()[0] == \
        con.execute(f"SELECT count(*) FROM (SELECT DISTINCT term, idx FROM ({union}))").fetchone()[0]  # one level each
    con.close()
    assert log.audit().ok
    st.close()


def test_the_fold_level_of_an_append():
    assert [sq._terms_fold_level(a, b) for a, b in ((0, 1), (0, 255), (255, 256), (250, 300), (4095, 4096),
                                                      (4000, 5000), (65535, 65536), (60000, 70000), (70000, 70050),
                                                      (0, 1 << 20))] == [0, 0, 1, 1, 2, 2, 3, 3, 0, 3]


def test_a_fold_that_fails_leaves_the_store_as_it_was(tmp_path, small_levels, monkeypatch):
    """The fold runs in the append's own transaction: if it fails halfway (here after moving one level), the
    append and the moves are rolled back together (no row lost, none in two levels) and the next append works."""
    path = tmp_path / "l.db"
    st = SQLiteStore(path, create=True)
    log = TransparencyLog(st, "example.org/terms")
    log.append(_rows(0, 13), sign=False)  # crosses 2^2: into terms1
    log.append(_rows(13, 2), sign=False)  # 15 entries, no boundary crossed: into terms0
    before = _level_counts(path)
    assert before["terms0"] and before["terms1"]
    real = sq._fold_terms

    def broken(con, level):
        con.execute(f"INSERT OR IGNORE INTO {sq.TERM_LEVELS[level]} (term, idx) SELECT term, idx FROM terms0")
        con.execute("DELETE FROM terms0")
        raise sqlite3.OperationalError("disk I/O error (test)")

    monkeypatch.setattr(sq, "_fold_terms", broken)
    with pytest.raises(Exception, match="disk I/O error"):
        log.append(_rows(15, 2), sign=False)  # crosses 2^4: would fold terms0 and terms1 into terms2
    assert _level_counts(path) == before and st.size() == 15
    monkeypatch.setattr(sq, "_fold_terms", real)
    log.append(_rows(15, 2), sign=False)
    _check_reads(st, 17, random.Random(1))
    assert log.audit().ok
    st.close()


def test_a_small_append_of_random_subjects_to_a_large_log_writes_few_pages(tmp_path):
    """The point of the levels: 50 entries, each naming a random subject, appended to a log of 20,000 write about
    20 WAL frames of 16 KiB (the folds included); with every term row in one table (format 4) the subjects alone
    dirtied one page each, about 65 frames a group."""
    path = tmp_path / "l.db"
    st = SQLiteStore(path, create=True)
    log = TransparencyLog(st, "example.org/terms")

    def rows(start: int, n: int) -> list[LeafRow]:
        out = []
        for i in range(start, start + n):
            data = b'{"i":%d,"pad":"%s"}' % (i, b"z" * 200)
            subject = "subject:sha256:" + leaf_hash(b"%d" % i).hex()  # random order
            out.append(LeafRow(data, leaf_hash(data), ("type:t", _SIGNERS[i % 3], subject)))
        return out

    for a in range(0, 20000, 2000):
        log.append(rows(a, 2000), sign=False)
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    groups = 12  # 600 entries: folds into terms1 included (every 256)
    for k in range(groups):
        log.append(rows(20000 + 50 * k, 50), sign=False)
    frames = (os.path.getsize(f"{path}-wal") - 32) / (sq.PAGE_SIZE + 24)
    assert frames / groups < 35, frames / groups
    assert st.count(rows(20010, 1)[0].terms[2]) == 1 and st.find("signer:b", 20500, 2) == [20503, 20506]
    st.close()


def _downgrade(path) -> None:
    """Rewrite a store as format 4 kept it: every term row in ``terms``, no newer level."""
    downgrade(path, "terms", "term, idx", ("terms0", "terms1", "terms2"), 4)


def test_a_format4_store_migrates_and_answers_the_same(tmp_path, small_levels):
    path = tmp_path / "l.db"
    st = SQLiteStore(path, create=True)
    log = TransparencyLog(st, "example.org/terms")
    for a, n in ((0, 40), (40, 3), (43, 2)):
        log.append(_rows(a, n), sign=False)
    st.close()
    _downgrade(path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'terms_'").fetchone()[0] == 0
    in_terms = con.execute("SELECT count(*) FROM terms").fetchone()[0]
    con.close()

    st = SQLiteStore(path)
    assert st.get_meta("format") == str(STORE_FORMAT) == "5" and st.migrated is False  # nothing moved
    assert _level_counts(path) == {"terms0": 0, "terms1": 0, "terms2": 0, "terms": in_terms}
    _check_reads(st, 45, random.Random(2))
    log = TransparencyLog(st, "example.org/terms")
    for a, n in ((45, 1), (46, 30), (76, 2)):  # into terms0, then folds
        log.append(_rows(a, n), sign=False)
    _check_reads(st, 78, random.Random(3))
    assert log.audit().ok
    st.close()


def test_code_that_reads_format4_refuses_a_format5_store(tmp_path, monkeypatch):
    """Format-4 code would miss the rows of the newer levels: it refuses the store (base.check_format)."""
    from ailedger.errors import StorageError
    from ailedger.tlog.stores import base

    SQLiteStore(tmp_path / "l.db", create=True).close()
    monkeypatch.setattr(base, "STORE_FORMAT", 4)
    with pytest.raises(StorageError, match="store format 5 is newer than this ailedger reads"):
        SQLiteStore(tmp_path / "l.db")
