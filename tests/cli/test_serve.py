"""CLI: `ailedger init-postgres` and `ailedger serve` argument handling."""

import json
import subprocess
import sys

import pytest

from ailedger.tlog.ledger import Ledger

PG_DSN = "host=127.0.0.1 port=5432 dbname=test user=postgres password=root"


def require_pg():
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3):
            pass
    except Exception:  # noqa: BLE001
        pytest.skip("PostgreSQL at 127.0.0.1:5432 db 'test' (user postgres) is unreachable")


def fresh_schema():
    import uuid

    return "t_" + uuid.uuid4().hex[:16]


def run(*args, env=None):
    return subprocess.run([sys.executable, "-c", "from ailedger.cli.main import main; main()", *args],
                          check=False, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.postgres
def test_init_postgres_creates_a_working_ledger(tmp_path):
    require_pg()
    schema = fresh_schema()
    r = run("init-postgres", str(tmp_path / "l"), "--origin", "test.example/cli", "--dsn", PG_DSN,
            "--schema", schema, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["store"] == "postgres" and out["schema"] == schema
    with Ledger.open(tmp_path / "l") as led:
        assert led.config["store"] == "postgres"
        _ident, res = led.new_identity("alice")
        assert res.index == 0 and led.size == 1
    r = run("init-postgres", str(tmp_path / "l"), "--origin", "test.example/cli", "--dsn", PG_DSN)
    assert r.returncode == 2 and "already holds a ledger" in r.stderr
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_serve_without_a_ledger_fails_clearly(tmp_path):
    r = run("serve", "--ledger", str(tmp_path / "none"), "--port", "1")
    assert r.returncode == 2 and "no ledger at" in r.stderr
    r = run("serve", "--help")
    assert r.returncode == 0 and "--workers" in r.stdout
