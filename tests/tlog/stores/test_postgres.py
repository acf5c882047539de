"""PostgreSQL-specific behaviour: processes sequence through the advisory lock; a dead connection heals."""

import multiprocessing

import pytest

from ailedger.errors import StorageError
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.stores.postgres import PostgresStore
from tests.tlog.stores.pg_factory import PG_DSN, fresh_schema, require_pg

pytestmark = pytest.mark.postgres


def _append_many(schema: str, worker: int, n: int) -> list[int]:
    store = PostgresStore(PG_DSN, schema=schema)
    log = TransparencyLog(store, "test.example/pg")
    out = []
    for i in range(n):
        rows = log.append_data([f"w{worker}-{i}-{j}".encode() for j in range(3)])
        out.extend(r.index for r in rows)
    store.close()
    return out


def test_processes_sequence_without_gap_or_duplicate():
    require_pg()
    schema = fresh_schema()
    PostgresStore(PG_DSN, schema=schema, create=True).close()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(6) as pool:
        got = pool.starmap(_append_many, [(schema, w, 20) for w in range(6)])
    idxs = sorted(i for g in got for i in g)
    assert idxs == list(range(6 * 20 * 3))
    store = PostgresStore(PG_DSN, schema=schema)
    rep = TransparencyLog(store, "test.example/pg").audit()
    assert rep.ok and rep.size == 360, rep.to_dict()
    store.close()


def test_missing_schema_and_unreachable_server():
    require_pg()
    with pytest.raises(StorageError):
        PostgresStore(PG_DSN, schema=fresh_schema())  # not created
    with pytest.raises(StorageError):
        PostgresStore("host=127.0.0.1 port=1 dbname=test user=postgres connect_timeout=1", schema="x", create=True)
    with pytest.raises(StorageError):
        PostgresStore(PG_DSN, schema="Bad-Name", create=True)


def test_terminated_connections_heal():
    require_pg()
    import psycopg

    schema = fresh_schema()
    store = PostgresStore(PG_DSN, schema=schema, create=True)
    log = TransparencyLog(store, "test.example/pg")
    log.append_data([b"a", b"b"])
    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
                    (f"ailedger:{schema}",))
    errors = 0
    for _ in range(2):  # the first use of each dead connection fails cleanly, then it reconnects
        try:
            log.append_data([b"c"])
        except StorageError:
            errors += 1
    for _ in range(10):
        try:
            store.size()
        except StorageError:
            errors += 1
    assert store.size() == 3 and errors >= 1
    assert [bytes(x) for x in store.leaves(0, 3)] == [b"a", b"b", b"c"]
    assert TransparencyLog(store, "test.example/pg").audit().ok
    store.close()
