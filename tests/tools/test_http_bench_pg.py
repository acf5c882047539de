"""bench/http_bench.py's PostgreSQL helpers: the CHECKPOINT before a timed phase, and the CPU of one ledger
schema's backends (found by their application name, read from /proc)."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest
from tests.tlog.stores.pg_factory import PG_DSN, require_pg

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import http_bench

psycopg = pytest.importorskip("psycopg")
UNREACHABLE = "host=127.0.0.1 port=1 dbname=test user=postgres connect_timeout=2"


def test_checkpoint_runs_and_an_unreachable_server_is_a_note_not_an_error(capsys):
    require_pg()
    http_bench.pg_checkpoint(PG_DSN)
    assert capsys.readouterr().out == ""
    http_bench.pg_checkpoint(UNREACHABLE)
    out = capsys.readouterr().out
    assert out.startswith("note: no CHECKPOINT before the PostgreSQL phase")


def test_the_backends_of_one_schema_and_their_cpu():
    require_pg()
    schema = "b_" + uuid.uuid4().hex[:12]
    assert http_bench.pg_backend_cpu(None) == {} and http_bench.pg_cpu_since(None, {}) is None
    assert http_bench.pg_backend_cpu((UNREACHABLE, schema)) == {}
    assert http_bench.pg_backend_cpu((PG_DSN, schema)) == {}  # no backend has that name yet
    with psycopg.connect(PG_DSN, autocommit=True, application_name=f"ailedger:{schema}") as con:
        pid = con.info.backend_pid
        con.execute("SELECT sum(g) FROM generate_series(1, 200000) g").fetchone()
        before = http_bench.pg_backend_cpu((PG_DSN, schema))
        assert set(before) == {pid} and before[pid] > 0
        con.execute("SELECT sum(g) FROM generate_series(1, 3000000) g").fetchone()  # tens of CPU-ms
        spent = http_bench.pg_cpu_since((PG_DSN, schema), before)
    assert spent is not None and spent > 0.005
