"""PostgreSQL: a small append (a group of single entries) sends its leaf and term rows, stripes and checkpoint
in one call of ailedger_append_v1 that is its own transaction: one round trip per group when the log is at the
size of this process's last append (``writer_at``), two otherwise (``writer``). A leaf already stored, a term
with any characters, a duplicate inside the batch and a failed append behave as with the COPY path of larger
appends; another writer's append in between is detected under the lock and the append redone."""

from __future__ import annotations

import hashlib
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.errors import DuplicateLeafError, StaleSizeError
from ailedger.tlog import log as log_mod
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.note import Signer
from ailedger.tlog.stores import LeafRow
from tests.tlog.stores.pg_factory import PG_DSN, postgres_factory

psycopg = pytest.importorskip("psycopg")
from ailedger.tlog.stores.postgres import PostgresStore


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


def test_a_group_of_25_single_entries_takes_one_round_trip(store, monkeypatch):
    log = TransparencyLog(store, "example.org/rt", _signer())
    log.append(_rows(0, 25))  # the first append reads the border; later ones start from the cached range
    counter = _Counter(monkeypatch)
    for g in range(1, 5):
        log.append(_rows(25 * g, 25))
    assert counter.n == 1 * 4  # the lock, the size checked, the rows, stripes and checkpoint: one call
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


def _indexes_match(store, log, n: int) -> None:
    assert store.size() == n
    assert store.index_row_count() == n
    assert log.audit().ok
    hashes = store.leaf_hashes(0, n)
    assert len(set(hashes)) == n  # no duplicate, and no gap (size == row count)


def test_two_stores_taking_turns_on_one_schema_detect_the_stale_size(store, monkeypatch):
    """Two servers (two store objects, two logs) appending in turn: each one's assumed size is wrong after the
    other's append; nothing is written by the stale call, the append is redone reading the size, and the
    assumed size is not tried again for a few appends (a round trip wasted at most once per few)."""
    other = PostgresStore(PG_DSN, schema=store.schema)
    try:
        a = TransparencyLog(store, "example.org/rt", _signer())
        b = TransparencyLog(other, "example.org/rt", _signer())
        calls = {"stale": 0}
        real = log_mod.TransparencyLog._append_new

        def counting(self, rows, hashes, sign):
            try:
                return real(self, rows, hashes, sign)
            except StaleSizeError:
                calls["stale"] += 1
                raise

        monkeypatch.setattr(log_mod.TransparencyLog, "_append_new", counting)
        pos = 0
        for k in range(40):
            log = a if k % 2 == 0 else b
            res = log.append(_rows(pos, 5))
            assert [r.index for r in res] == list(range(pos, pos + 5))
            assert not any(r.duplicate for r in res)
            pos += 5
        assert 1 <= calls["stale"] <= 40 // (log_mod._STALE_SKIP // 2)
        _indexes_match(store, a, pos)
        assert store.latest_checkpoint() is not None
    finally:
        other.close()


def test_concurrent_appenders_on_one_schema(store):
    """Two threads, each its own store object and log (two server processes), appending groups at once: every
    entry once, at the index its append returned, no gap, the tree and checkpoints sound."""
    other = PostgresStore(PG_DSN, schema=store.schema)
    logs = [TransparencyLog(store, "example.org/rt", _signer()), TransparencyLog(other, "example.org/rt", _signer())]
    got: list[list[tuple[int, bytes]]] = [[], []]
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for g in range(30):
                rows = _rows(100_000 * (k + 1) + 7 * g, 7)
                for r, res in zip(rows, logs[k].append(rows)):
                    assert not res.duplicate
                    got[k].append((res.index, r.hash))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        both = got[0] + got[1]
        assert sorted(i for i, _ in both) == list(range(420))
        stored = store.leaf_hashes(0, 420)
        assert all(stored[i] == h for i, h in both)
        _indexes_match(store, logs[0], 420)
    finally:
        other.close()


@pytest.mark.parametrize("assumed", [3, 12])
def test_writer_at_a_wrong_size_writes_nothing(store, assumed):
    log = TransparencyLog(store, "example.org/rt")
    log.append(_rows(0, 8), sign=False)
    with pytest.raises(StaleSizeError), store.writer_at(assumed, 4) as w:
        assert w.size() == assumed  # assumed, not asked
        w.add_leaves(assumed, _rows(100, 4))
        w.put_checkpoint(assumed + 4, b"note")
    # a read first begins the transaction: the size is checked then
    with pytest.raises(StaleSizeError), store.writer_at(assumed, 4) as w:
        w.indices_of([_rows(0, 1)[0].hash])
    assert store.size() == 8
    assert store.index_row_count() == 8
    assert store.checkpoint_at(assumed + 4) is None
    assert [r.index for r in log.append(_rows(8, 2), sign=False)] == [8, 9]


def test_writer_at_the_right_size_with_a_read_commits(store):
    log = TransparencyLog(store, "example.org/rt")
    log.append(_rows(0, 8), sign=False)
    rows = _rows(8, 3)
    with store.writer_at(8, 3) as w:
        w.add_leaves(8, rows)
        assert w.indices_of([rows[1].hash]) == {rows[1].hash: 9}  # begun here, the held rows sent
    assert store.size() == 11
    assert store.indices_of([r.hash for r in rows]) == {r.hash: 8 + i for i, r in enumerate(rows)}
    assert store.count("type:t") == 11


def test_a_schema_without_the_function_gets_it_and_a_role_that_cannot_falls_back(store, monkeypatch):
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'DROP FUNCTION "{store.schema}".ailedger_append_v1')
        con.execute(f'ALTER TABLE "{store.schema}".node_stripes ALTER COLUMN hashes SET STORAGE EXTENDED')
    again = PostgresStore(PG_DSN, schema=store.schema)  # an older version's schema: the function made at open
    try:
        assert again._fn
        with psycopg.connect(PG_DSN, autocommit=True) as con:  # stripes stored uncompressed from now on
            assert con.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass AND attname = "
                               "'hashes'", (f"{store.schema}.node_stripes",)).fetchone() == ("e",)
        log = TransparencyLog(again, "example.org/rt", _signer())
        log.append(_rows(0, 5))
        counter = _Counter(monkeypatch)
        log.append(_rows(5, 5))
        assert counter.n == 1
        monkeypatch.undo()
        again._fn = False  # as when the role may not create it: writer_at is writer, two round trips
        counter = _Counter(monkeypatch)
        log.append(_rows(10, 5))
        assert counter.n == 2
        monkeypatch.undo()
        _indexes_match(again, log, 15)
    finally:
        again.close()


def test_a_large_append_reads_the_size_first(store, monkeypatch):
    """An append whose rows go by COPY gains nothing from an assumed size (the COPY begins the transaction):
    ``writer_at`` is ``writer`` for it, and a stale size costs nothing."""
    log = TransparencyLog(store, "example.org/rt")
    log.append(_rows(0, 10), sign=False)
    other = PostgresStore(PG_DSN, schema=store.schema)
    try:
        TransparencyLog(other, "example.org/rt").append(_rows(10, 5), sign=False)
    finally:
        other.close()
    res = log.append(_rows(15, 300), sign=False)  # assumed 10, the log has 15: read, not assumed
    assert [r.index for r in res] == list(range(15, 315))
    assert log._skip == 0  # no StaleSizeError was met
    _indexes_match(store, log, 315)
