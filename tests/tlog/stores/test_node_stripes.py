"""Store format 3: interior tree nodes stored 256 to a row (``node_stripes``), on SQLite and PostgreSQL; the
migration of a format-2 store (one ``nodes`` row per node) on open; proofs and the audit read the same tree."""

from __future__ import annotations

import hashlib
import random
import sqlite3

import pytest

from ailedger.errors import StorageError
from ailedger.tlog import merkle
from ailedger.tlog.merkle import CompactRange
from ailedger.tlog.stores.base import (
    STORE_FORMAT,
    levels_of_keyed,
    node_key,
    stripe_nodes,
    stripe_rows,
    stripe_writes,
    stripes_of_nodes,
)


def _leaves(a: int, b: int) -> list[bytes]:
    return [hashlib.sha256(b"leaf %d" % i).digest() for i in range(a, b)]


def test_stripe_writes_hold_every_node_whatever_the_append_sizes():
    rng = random.Random(3)
    cr = CompactRange(0, [])
    stored: dict[int, bytes] = {}
    every: dict[int, bytes] = {}
    size = 0
    for _ in range(200):
        n = rng.choice([1, 2, 3, 31, 255, 256, 257, 600])
        keyed = cr.extend_keyed(_leaves(size, size + n))
        size += n
        every.update(keyed)
        rows, partial = stripe_writes(keyed, lambda keys: {k: stored[k] for k in keys if k in stored})
        assert set(partial) <= set(stored)  # only stored stripes are ever replaced
        stored.update(rows)
    assert all(len(b) <= 32 * 256 and len(b) % 32 == 0 for b in stored.values())
    assert {node_key(lv, ix): h for lv, ix, h in stripe_nodes(sorted(stored.items()))} == every
    assert list(stripes_of_nodes(sorted(every.items()))) == sorted(stored.items())


@pytest.mark.parametrize("c", [True, False], ids=["c", "python"])
def test_extend_levels_gives_extend_keyed_nodes_per_level(c, monkeypatch):
    """The nodes an append completes, per level (the C call, and the Python path without the module), are the
    ones extend_keyed gives per node, and the border is the same; the stripes written from them too."""
    if not c:
        monkeypatch.setattr(merkle, "_extend_levels", None)
    elif merkle._extend_levels is None:
        pytest.skip("the C module is not built")
    rng = random.Random(5)
    a, b = CompactRange(0, []), CompactRange(0, [])
    stored_a: dict[int, bytes] = {}
    stored_b: dict[int, bytes] = {}
    size = 0
    for _ in range(150):
        n = rng.choice([0, 1, 2, 3, 31, 255, 256, 257, 600, 1000])
        hs = _leaves(size, size + n)
        size += n
        keyed = a.extend_keyed(hs)
        levels = b.extend_levels(hs)
        assert (a.size, a.hashes) == (b.size, b.hashes)
        assert levels == levels_of_keyed(keyed)
        assert [lv for lv, _, _ in levels] == list(range(1, len(levels) + 1))
        rows_a, part_a = stripe_writes(keyed, lambda keys: {k: stored_a[k] for k in keys if k in stored_a})
        rows_b, part_b = stripe_rows(levels, lambda keys: {k: stored_b[k] for k in keys if k in stored_b})
        assert (rows_a, part_a) == (rows_b, part_b)
        stored_a.update(rows_a)
        stored_b.update(rows_b)
    with pytest.raises(ValueError, match="32 bytes"):
        b.extend_levels([b"short"])
    assert b.size == size  # a refused batch leaves the range as it was


def test_stripe_rows_refuse_bad_levels():
    for bad in ([(0, 0, b"x" * 32)], [(64, 0, b"x" * 32)], [(1, 0, b"")], [(1, 0, b"x" * 31)]):
        with pytest.raises(StorageError):
            stripe_rows(bad, lambda keys: {})


def test_stripe_writes_refuse_a_gap():
    cr = CompactRange(0, [])
    keyed = cr.extend_keyed(_leaves(0, 8))
    with pytest.raises(StorageError, match="not consecutive"):
        stripe_writes([kv for kv in keyed if kv[0] != node_key(1, 2)], lambda keys: {})
    keyed = cr.extend_keyed(_leaves(8, 10))  # extends the partial stripe of level 1, which is not stored
    with pytest.raises(StorageError, match="missing tree nodes"):
        stripe_writes(keyed, lambda keys: {})


def _ledger(path, store):
    from ailedger.tlog.ledger import Ledger

    led = Ledger.init(path, origin="stripes.example/log", store=store)
    a, _ = led.new_identity("alice")
    for k in range(7):  # appends of several sizes: partial stripes rewritten, full ones added
        led.append_entries([led.make_entry("note", {"i": k * 1000 + i}, a).leaf_bytes for i in range(k * 97 + 5)])
    return led, a


def _proofs(led) -> list:
    size = led.log.size
    return [led.log.inclusion_proof(i, size) for i in (0, 1, 255, 256, 511, size // 2, size - 1)] + \
        [led.log.consistency_proof(m, size) for m in (1, 256, 700, size - 1)]


def _downgrade_sqlite(db) -> None:
    """Rewrite a store as format 2 wrote it: one ``nodes`` row per interior node."""
    con = sqlite3.connect(db)
    rows = con.execute("SELECT id, hashes FROM node_stripes ORDER BY id").fetchall()
    con.execute("CREATE TABLE nodes (id INTEGER PRIMARY KEY, hash BLOB NOT NULL)")
    con.executemany("INSERT INTO nodes (id, hash) VALUES (?, ?)",
                    [(node_key(lv, ix), h) for lv, ix, h in stripe_nodes(rows)])
    con.execute("DROP TABLE node_stripes")
    con.execute("UPDATE meta SET value = '2' WHERE key = 'format'")
    con.commit()
    con.close()


def test_sqlite_format2_ledger_migrates(tmp_path):
    from ailedger.tlog.ledger import Ledger

    d = tmp_path / "led"
    led, _ = _ledger(d, None)
    before = _proofs(led)
    size = led.log.size
    led.close()
    _downgrade_sqlite(d / "ledger.db")
    con = sqlite3.connect(d / "ledger.db")
    assert con.execute("SELECT count(*) FROM nodes").fetchone()[0] == size - size.bit_count()  # one row per complete node
    con.close()

    led = Ledger.open(d)
    assert led.store.migrated is True and led.store.get_meta("format") == str(STORE_FORMAT)
    assert _proofs(led) == before
    rep = led.audit(signatures=True)
    assert rep.ok, rep.problems
    assert rep.nodes_checked == size - size.bit_count()
    con = sqlite3.connect(d / "ledger.db")
    assert con.execute("SELECT 1 FROM sqlite_master WHERE name = 'nodes'").fetchone() is None
    assert con.execute("SELECT count(*) FROM node_stripes").fetchone()[0] < size // 100
    con.close()
    a = led.identities.load("alice")
    led.append_entries([led.make_entry("note", {"i": -i}, a).leaf_bytes for i in range(1, 300)])  # appends keep extending the stripes
    assert led.audit().ok
    led.close()
    led = Ledger.open(d)
    assert led.store.migrated is False
    led.close()


def test_sqlite_damaged_format2_store_still_opens_and_the_audit_names_the_node(tmp_path):
    from ailedger.tlog.ledger import Ledger

    d = tmp_path / "led"
    led, _ = _ledger(d, None)
    led.close()
    _downgrade_sqlite(d / "ledger.db")
    con = sqlite3.connect(d / "ledger.db")
    con.execute("DELETE FROM nodes WHERE id = ?", (node_key(1, 3),))
    con.commit()
    con.close()
    led = Ledger.open(d)
    rep = led.audit()
    assert any(p.kind == "node_hash" and p.index == 6 for p in rep.problems), rep.problems
    led.close()


def test_postgres_format2_schema_migrates(tmp_path):
    from tests.tlog.stores.pg_factory import PG_DSN, fresh_schema, require_pg

    require_pg()
    import psycopg

    from ailedger.tlog.ledger import Ledger

    schema = fresh_schema()
    d = tmp_path / "led"
    led, _ = _ledger(d, {"store": "postgres", "dsn": PG_DSN, "schema": schema})
    before = _proofs(led)
    size = led.log.size
    led.close()
    with psycopg.connect(PG_DSN, autocommit=True, options=f"-c search_path={schema}") as con:
        rows = [(int(k), bytes(b)) for k, b in con.execute("SELECT id, hashes FROM node_stripes ORDER BY id")]
        con.execute("CREATE TABLE nodes (id BIGINT PRIMARY KEY, hash BYTEA NOT NULL)")
        with con.cursor() as cur, cur.copy("COPY nodes (id, hash) FROM STDIN") as cp:
            for lv, ix, h in stripe_nodes(rows):
                cp.write_row((node_key(lv, ix), h))
        con.execute("DROP TABLE node_stripes")
        con.execute("UPDATE meta SET value = '2' WHERE key = 'format'")
    led = Ledger.open(d)
    assert led.store.migrated is True
    assert _proofs(led) == before
    rep = led.audit(signatures=True)
    assert rep.ok and rep.nodes_checked == size - size.bit_count(), rep.problems
    a = led.identities.load("alice")
    led.append_entries([led.make_entry("note", {"i": -i}, a).leaf_bytes for i in range(1, 300)])
    assert led.audit().ok
    with psycopg.connect(PG_DSN, autocommit=True, options=f"-c search_path={schema}") as con:
        assert con.execute("SELECT to_regclass('nodes')").fetchone()[0] is None
        assert con.execute("SELECT count(*) FROM node_stripes").fetchone()[0] < size // 100
    led.close()
