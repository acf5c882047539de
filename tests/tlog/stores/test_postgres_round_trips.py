"""PostgreSQL: a small append (a group of single entries) sends its leaf and term rows with the COMMIT, in
one query after the BEGIN's: two round trips per group. A leaf already stored, a term with any characters,
a duplicate inside the batch and a failed append behave as with the COPY path of larger appends."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.errors import DuplicateLeafError
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.note import Signer
from ailedger.tlog.stores import LeafRow
from tests.tlog.stores.pg_factory import postgres_factory

psycopg = pytest.importorskip("psycopg")


def _rows(start: int, n: int, extra: tuple[str, ...] = ()) -> list[LeafRow]:
    out = []
    for i in range(start, start + n):
        data = b'{"i":%d,"pad":"%s"}' % (i, b"y" * (i % 53))
        out.append(LeafRow(data, leaf_hash(data), ("type:t", f"signer:s{i // 7}", f"subject:{i:06d}", *extra)))
    return out


def _signer() -> Signer:
    return Signer("example.org/rt", Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"rt").digest()))


@pytest.fixture
def store(tmp_path):
    st = postgres_factory(tmp_path)
    yield st
    st.close()


class _Counter:
    """Counts the round trips of the store's connections: a query outside a pipeline, a pipeline (its
    queries are sent together, one sync), a COPY two (the statement, then its data)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.n = 0
        real_execute = psycopg.Cursor.execute
        real_copy = psycopg.Cursor.copy
        real_pipeline = psycopg.Connection.pipeline

        def execute(cur, *a, **k):
            if cur.connection._pipeline is None:
                self.n += 1
            return real_execute(cur, *a, **k)

        def pipeline(con, *a, **k):
            self.n += 1
            return real_pipeline(con, *a, **k)

        def copy(cur, *a, **k):
            self.n += 2
            return real_copy(cur, *a, **k)

        monkeypatch.setattr(psycopg.Cursor, "execute", execute)
        monkeypatch.setattr(psycopg.Cursor, "copy", copy)
        monkeypatch.setattr(psycopg.Connection, "pipeline", pipeline)


def test_a_group_of_25_single_entries_takes_two_round_trips(store, monkeypatch):
    log = TransparencyLog(store, "example.org/rt", _signer())
    log.append(_rows(0, 25))  # the first append reads the border; later ones start from the cached range
    counter = _Counter(monkeypatch)
    for g in range(1, 5):
        log.append(_rows(25 * g, 25))
    assert counter.n == 2 * 4  # BEGIN + lock + size; the rows, stripes, checkpoint and COMMIT
    monkeypatch.undo()
    assert store.size() == 125
    assert store.index_row_count() == 125
    assert store.count("type:t") == 125
    assert store.find("subject:000111", -1, 5) == [111]
    assert store.count("signer:s10") == 7
    assert store.latest_checkpoint() is not None
    assert log.audit().ok


def test_a_resent_leaf_in_a_small_batch_answers_its_first_index(store):
    log = TransparencyLog(store, "example.org/rt", _signer())
    first = log.append(_rows(0, 30))
    again = _rows(30, 20)
    again[7] = _rows(0, 30)[12]
    again[15] = again[3]  # twice in this batch: the second copy is a duplicate of the first
    res = log.append(again)
    assert res[7].duplicate and res[7].index == first[12].index == 12
    assert res[15].duplicate and res[15].index == res[3].index
    assert [r.index for r in res if not r.duplicate] == list(range(30, 48))
    assert store.size() == 48
    assert store.index_row_count() == 48
    assert log.audit().ok
    # the whole batch again: every entry a duplicate, nothing appended
    assert all(r.duplicate for r in log.append(again))
    assert store.size() == 48


def test_a_duplicate_held_for_the_commit_is_the_dedup_signal_and_nothing_is_stored(store):
    log = TransparencyLog(store, "example.org/rt")
    log.append(_rows(0, 10), sign=False)
    rows = _rows(10, 5) + [_rows(0, 10)[4]]
    with pytest.raises(DuplicateLeafError), store.writer() as w:
        w.add_leaves(10, rows)
        w.put_checkpoint(16, b"note")
    assert store.size() == 10
    assert store.index_row_count() == 10
    assert store.count("type:t") == 10
    assert store.checkpoint_at(16) is None
    # the connection is usable again: the next append commits
    assert [r.index for r in log.append(_rows(10, 3), sign=False)] == [10, 11, 12]


def test_terms_of_any_text_round_trip(store):
    odd = ("quote:it's \"x\"", "backslash:a\\b\\x41", "unicode:Zürich ☃ 𝄞", "semicolon:a; DROP TABLE leaves; --",
           "dollar:$$ $tag$", "newline:a\nb")
    log = TransparencyLog(store, "example.org/rt")
    log.append(_rows(0, 3, odd), sign=False)
    for t in odd:
        assert store.count(t) == 3, t
    assert store.size() == 3


def test_a_read_in_the_transaction_sees_the_held_rows(store):
    log = TransparencyLog(store, "example.org/rt")
    log.append(_rows(0, 4), sign=False)
    rows = _rows(4, 3)
    with store.writer() as w:
        w.add_leaves(4, rows)
        assert w.indices_of([r.hash for r in rows]) == {r.hash: 4 + i for i, r in enumerate(rows)}
        assert w.node_hashes([(0, 5)]) == {(0, 5): rows[1].hash}
    assert store.size() == 7


def test_a_failed_transaction_drops_the_held_rows(store):
    with pytest.raises(RuntimeError), store.writer() as w:
        w.add_leaves(0, _rows(0, 5))
        raise RuntimeError("boom")
    assert store.size() == 0
    assert store.count("type:t") == 0


def test_duplicates_and_appends_alternate_on_the_same_connections(store):
    """A failed pipeline (a leaf already stored) skips the statements after the failing one: none of them may
    be taken for prepared afterwards (psycopg prepares a statement on its fifth use)."""
    log = TransparencyLog(store, "example.org/rt", _signer())
    pos = 0
    for n in range(12):
        fresh = _rows(pos, 3 + n % 4)
        if pos:
            res = log.append([*fresh, _rows(0, 1)[0]])
            assert res[-1].duplicate and res[-1].index == 0
        else:
            res = log.append(fresh)
        assert [r.index for r in res if not r.duplicate] == list(range(pos, pos + len(fresh)))
        pos += len(fresh)
    assert store.size() == pos
    assert log.audit().ok
