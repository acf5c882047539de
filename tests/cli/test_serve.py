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


@pytest.mark.postgres
def test_init_refuses_a_schema_holding_another_ledgers_log(tmp_path):
    """A second ledger on a schema that already holds a log (another key's checkpoints) would fail every
    audit: init refuses it, names the schema and the fix, and writes nothing."""
    require_pg()
    schema = fresh_schema()
    r = run("init-postgres", str(tmp_path / "a"), "--origin", "test.example/a", "--dsn", PG_DSN, "--schema", schema)
    assert r.returncode == 0, r.stderr
    with Ledger.open(tmp_path / "a") as led:
        led.new_identity("alice")
    r = run("init-postgres", str(tmp_path / "b"), "--origin", "test.example/b", "--dsn", PG_DSN, "--schema", schema)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"schema '{schema}' already holds a ledger's log (1 entries)" in r.stderr and "--schema" in r.stderr
    assert not (tmp_path / "b" / "config.json").exists() and not (tmp_path / "b" / "log.key").exists()
    with Ledger.open(tmp_path / "a") as led:
        assert led.size == 1 and led.audit().ok
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as con:
        con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_init_refuses_a_folder_holding_a_log_without_config(tmp_path):
    with Ledger.init(tmp_path / "l", "test.example/l") as led:
        led.new_identity("alice")
    (tmp_path / "l" / "config.json").unlink()
    r = run("init", str(tmp_path / "l"), "--origin", "test.example/l2")
    assert r.returncode == 2 and "already holds a log (1 entries)" in r.stderr, r.stderr


def test_serve_without_a_ledger_fails_clearly(tmp_path):
    r = run("serve", "--ledger", str(tmp_path / "none"), "--port", "1")
    assert r.returncode == 2 and "no ledger at" in r.stderr
    r = run("serve", "--help")
    assert r.returncode == 0 and "--workers" in r.stdout


@pytest.mark.parametrize(("option", "value"), [("--ingest-cohorts", "0"), ("--ingest-cohorts", "65"),
                                               ("--ingest-cohorts", "two"), ("--ingest-checkpoint-ms", "-1"),
                                               ("--ingest-checkpoint-ms", "10001")])
def test_serve_refuses_a_bad_ingest_setting_by_name_before_anything(tmp_path, option, value):
    """A bad ingest-port setting: exit 2 naming the option, before the ledger is opened or anything written."""
    d = tmp_path / "led"
    Ledger.init(d, origin="test.example/serve").close()
    before = sorted((p.relative_to(d), p.stat().st_size) for p in d.rglob("*") if p.is_file())
    r = run("serve", "--ledger", str(d), "--port", "1", "--ingest-port", "2", option, value)
    assert r.returncode == 2 and option in r.stderr
    assert sorted((p.relative_to(d), p.stat().st_size) for p in d.rglob("*") if p.is_file()) == before
