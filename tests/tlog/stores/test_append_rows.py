"""Appends of every size on every backend: the SQLite store writes its rows in multi-row INSERT statements
(chunks of 256, 32, 4, 1 rows) and the PostgreSQL store packs its COPY rows with C iterators; whatever the
size, every leaf, dedup row and index term must be stored once, and a re-sent leaf found."""

import hashlib

import pytest

from ailedger.errors import StorageError
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow

# sizes around each chunk boundary of stores/sqlite._CHUNKS, and a typical batch
SIZES = [1, 3, 4, 5, 31, 32, 33, 255, 256, 257, 1000]


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
