"""Appends of every size on every backend: the SQLite store writes its rows in multi-row INSERT statements
(one statement of exactly n rows up to _ONE_STATEMENT rows, else chunks of 256, 32, 4, 1 rows) and the PostgreSQL store packs its COPY rows with C iterators; whatever the
size, every leaf, dedup row and index term must be stored once, and a re-sent leaf found."""

import hashlib

import pytest

from ailedger.errors import StorageError
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow

# sizes around each chunk boundary of stores/sqlite._CHUNKS and _ONE_STATEMENT (64), and a typical batch
SIZES = [1, 3, 4, 5, 25, 31, 32, 33, 63, 64, 65, 255, 256, 257, 1000]


def _rows(start: int, n: int) -> list[LeafRow]:
    out = []
    for i in range(start, start + n):
        data = b'{"i":%d,"pad":"%s"}' % (i, b"x" * (i % 97))
        out.append(LeafRow(data, leaf_hash(data), ("type:t", f"signer:s{i // 300}", f"subject:{i:08d}")))
    return out


def test_appends_of_every_size_store_every_row(store_factory):
    st = store_factory()
    log = TransparencyLog(st, "example.org/rows")
    pos = 0
    for n in SIZES:
        res = log.append(_rows(pos, n), sign=False)
        assert [r.index for r in res] == list(range(pos, pos + n))
        assert not any(r.duplicate for r in res)
        pos += n
    want = _rows(0, pos)
    assert st.size() == pos
    assert st.index_row_count() == pos
    assert [bytes(d) for d in st.leaves(0, pos)] == [r.data for r in want]
    assert [bytes(h) for h in st.leaf_hashes(0, pos)] == [r.hash for r in want]
    # every leaf is found by its hash (the dedup index holds one row for each)
    assert st.indices_of([r.hash for r in want]) == {r.hash: i for i, r in enumerate(want)}
    # every term row: a subject per entry, the type on all, a signer per 300 entries
    assert st.count("type:t") == pos
    assert st.find("subject:00000300", -1, 5) == [300]
    assert st.find(f"subject:{pos - 1:08d}", -1, 5) == [pos - 1]
    assert st.count("signer:s1") == 300
    assert log.audit().ok


def test_a_resent_leaf_in_a_large_batch_is_a_duplicate(store_factory):
    st = store_factory()
    log = TransparencyLog(st, "example.org/rows")
    log.append(_rows(0, 600), sign=False)
    again = _rows(600, 300)
    again[290] = _rows(0, 600)[517]  # in the last chunks of the multi-row INSERTs
    res = log.append(again, sign=False)
    assert res[290].duplicate and res[290].index == 517
    assert [r.index for r in res if not r.duplicate] == list(range(600, 899))
    assert st.size() == 899
    assert log.audit().ok


@pytest.mark.parametrize("n", [2, 25, 64])
def test_a_resent_leaf_in_a_small_batch_is_a_duplicate(store_factory, n):
    """A small append is one INSERT statement per table (SQLite): a leaf re-sent in it, or twice in it, is still
    found, and the batch's other leaves appended once."""
    st = store_factory()
    log = TransparencyLog(st, "example.org/rows")
    log.append(_rows(0, 100), sign=False)
    again = _rows(100, n)
    again[n - 1] = _rows(0, 100)[37]  # logged before
    res = log.append(again, sign=False)
    assert res[n - 1].duplicate and res[n - 1].index == 37
    assert [r.index for r in res if not r.duplicate] == list(range(100, 100 + n - 1))
    twice = _rows(200, n) + _rows(200, 1)  # the first leaf twice in one batch
    res = log.append(twice, sign=False)
    assert res[-1].duplicate and res[-1].index == res[0].index == 100 + n - 1
    assert st.size() == 100 + 2 * n - 1 and st.index_row_count() == st.size()
    assert log.audit().ok


def test_a_leaf_hash_of_the_wrong_length_is_refused_and_nothing_is_stored(store_factory):
    st = store_factory()
    if type(st).__name__ == "MemoryStore":
        pytest.skip("the memory store keeps what it is given")
    rows = _rows(0, 40)
    rows[33] = LeafRow(rows[33].data, hashlib.sha256(b"x").digest()[:31], rows[33].terms)
    with pytest.raises(StorageError, match="not 32 bytes"), st.writer() as w:
        w.add_leaves(0, rows)
    assert st.size() == 0


def test_sqlite_stores_leaves_as_blobs(tmp_path):
    from ailedger.tlog.stores import SQLiteStore

    st = SQLiteStore(tmp_path / "l.db", create=True)
    TransparencyLog(st, "example.org/rows").append(_rows(0, 5), sign=False)
    kinds = st._con.execute("SELECT DISTINCT typeof(hash), typeof(data) FROM leaves").fetchall()
    assert kinds == [("blob", "blob")]  # bound from bytearray: a blob, as bytes were
    st.close()


@pytest.mark.parametrize(("n", "steps"), [(25, 1), (64, 1), (65, 3), (300, 5)])
def test_sqlite_writes_a_small_append_in_one_statement_per_table(tmp_path, n, steps):
    """A group of single entries (up to 64) is one INSERT per table (each step of a statement costs the
    committing thread CPU and a GIL round trip); larger appends are chunks of 256, 32, 4 and 1 rows."""
    from ailedger.tlog.stores import SQLiteStore

    st = SQLiteStore(tmp_path / "l.db", create=True)
    log = TransparencyLog(st, "example.org/rows")
    log.append(_rows(0, 10), sign=False)
    ran: list[str] = []
    st._con.set_trace_callback(ran.append)
    log.append(_rows(10, n), sign=False)
    st._con.set_trace_callback(None)
    assert sum(s.startswith("INSERT OR ROLLBACK INTO leaves") for s in ran) == steps
    assert sum(s.startswith("INSERT OR ROLLBACK INTO dedup") for s in ran) == steps
    assert st.size() == 10 + n and st.count("type:t") == 10 + n
    st.close()
