"""PostgreSQL store factory for the shared conformance suite (a fresh schema per test).

Skips with a clear message when PostgreSQL at 127.0.0.1:5432 (db ``test``, user postgres) is unreachable.
"""

from __future__ import annotations

import atexit
import os
import uuid

import pytest

PG_DSN = os.environ.get("AILEDGER_TEST_PG_DSN", "host=127.0.0.1 port=5432 dbname=test user=postgres password=root")
_made: list[str] = []
_reachable: bool | None = None


def pg_reachable() -> bool:
    global _reachable
    if _reachable is None:
        try:
            import psycopg

            with psycopg.connect(PG_DSN, connect_timeout=3) as con:
                con.execute("SELECT 1")
            _reachable = True
        except Exception:  # noqa: BLE001 - any failure means "skip"
            _reachable = False
    return _reachable


def require_pg() -> None:
    if not pg_reachable():
        pytest.skip("PostgreSQL at 127.0.0.1:5432 db 'test' (user postgres) is unreachable; postgres tests skipped")


def fresh_schema() -> str:
    name = "t_" + uuid.uuid4().hex[:16]
    _made.append(name)
    return name


def postgres_factory(tmp_path):
    require_pg()
    from ailedger.tlog.stores.postgres import PostgresStore

    return PostgresStore(PG_DSN, schema=fresh_schema(), create=True)


@atexit.register
def _drop_schemas() -> None:
    if not _made or not _reachable:
        return
    try:
        import psycopg

        with psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3) as con:
            for s in _made:
                con.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
    except Exception:  # noqa: BLE001, S110 - clean-up of test schemas is best effort
        pass
