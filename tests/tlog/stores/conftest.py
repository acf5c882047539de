"""Store factories for the shared conformance suite. Every backend is a parameter of ``store_factory``."""

import pytest

from ailedger.tlog.stores import MemoryStore, SQLiteStore

FACTORIES = {}


def _sqlite(tmp_path):
    return SQLiteStore(tmp_path / "ledger.db", create=True)


def _memory(tmp_path):
    return MemoryStore()


FACTORIES["sqlite"] = _sqlite
FACTORIES["memory"] = _memory

try:  # the PostgreSQL backend registers itself here when present
    from tests.tlog.stores.pg_factory import postgres_factory  # type: ignore

    FACTORIES["postgres"] = postgres_factory
except ImportError:
    pass


@pytest.fixture(params=sorted(FACTORIES))
def store_factory(request, tmp_path):
    made = []

    def make():
        s = FACTORIES[request.param](tmp_path)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()
