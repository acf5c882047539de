"""Store format 2: index terms of consecutive entries as runs, on every backend; and the migration of a
format-1 store (one ``terms`` row per term and entry) on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import sqlite3

import pytest

from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow, base
from ailedger.tlog.stores.base import STORE_FORMAT, merge_newest, merge_oldest, split_runs


def _reference(term_lists: list[tuple[str, ...]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, ts in enumerate(term_lists):
        for t in dict.fromkeys(ts):
            out.setdefault(t, []).append(i)
    return out


def _check_reads(s, ref: dict[str, list[int]], rng: random.Random) -> None:
    for term, ixs in ref.items():
        assert s.count(term) == len(ixs), term
        assert s.find(term, -1, 100000) == ixs, term
        for _ in range(4):
            after = rng.randrange(-1, ixs[-1] + 2)
            limit = rng.randrange(1, 12)
            assert s.find(term, after, limit) == [i for i in ixs if i > after][:limit], (term, after, limit)
            offset = rng.randrange(0, len(ixs) + 2)
            assert s.find_newest(term, offset, limit) == ixs[::-1][offset : offset + limit], (term, offset, limit)
    assert s.terms_present(list(ref) + ["type:none"]) == set(ref)
    assert s.count("type:none") == 0 and s.find("type:none") == [] and s.find_newest("type:none") == []


def test_split_runs_rows():
    singles, runs = split_runs(10, [("type:a", "s:1"), ("type:a", "s:2"), ("type:a", "s:1", "s:1"), ("type:b", "s:1")])
    assert sorted(runs) == [("s:1", 12, 13), ("type:a", 10, 12)]
    assert sorted(singles) == [("s:1", 10), ("s:2", 11), ("type:b", 13)]
    assert split_runs(0, []) == ([], [])


def _batch(rng: random.Random) -> list[tuple[str, ...]]:
    """Term lists of one append: mostly the common shape (a type shared by every entry, a signer per stretch of
    entries (one request of a group each), subjects of their own, equal widths), with every way out of it mixed
    in (a repeated subject, a subject equal to the type, a signer back after another, a shared term in another
    column, a term twice in one entry, unequal widths, one or no entry)."""
    n = rng.choice([0, 1, 2, 3, 5, 40])
    width = rng.randrange(0, 5)
    pool = [f"t:{k}" for k in range(rng.randrange(1, 4))]
    signers = [f"c1:{k}" for k in range(rng.choice([1, 1, 2, 4]))]
    cuts = sorted(rng.sample(range(1, max(2, n)), min(len(signers) - 1, max(0, n - 1))))
    rows = []
    for i in range(n):
        row = []
        for j in range(width):
            kind = rng.random()
            if j == 0 and kind < 0.85:
                row.append("c0")  # constant in its column
            elif j == 1 and kind < 0.85:
                row.append(signers[sum(i >= c for c in cuts)])  # one stretch per signer
            elif kind < 0.9:
                row.append(f"s{j}:{i}")  # its own
            else:
                row.append(rng.choice(pool + ["c0", signers[0], f"s{j}:{max(0, i - 1)}", f"s{(j + 1) % 5}:{i}"]))
        if rng.random() < 0.05:
            row.append("extra")
        rows.append(tuple(row))
    return rows


def _sorted(rows):
    singles, runs = rows
    return sorted(singles), sorted(runs)


def test_split_runs_by_columns_equals_the_loop():
    """The column path gives the loop's rows (their order aside: no reader sees it), or leaves the append to the
    loop; a seeded corpus that takes both paths (counted: neither may be rare)."""
    rng = random.Random(11)
    taken = {True: 0, False: 0}
    for _ in range(4000):
        rows = _batch(rng)
        start = rng.randrange(0, 1 << 40)
        want = _sorted(base._split_runs_loop(start, rows))
        taken[base._split_columns(start, rows) is not None] += 1
        assert _sorted(split_runs(start, rows)) == want, rows
        assert _sorted(split_runs(start, iter(rows))) == want, rows
    assert taken[True] > 600 and taken[False] > 600, taken
    ts = [("type:e", f"signer:{i // 300}", f"subject:{i}", f"subject:x{i}") for i in range(1000)]
    singles, runs = split_runs(7, ts)
    assert sorted(runs) == sorted([("type:e", 7, 1006), ("signer:0", 7, 306), ("signer:1", 307, 606),
                                   ("signer:2", 607, 906), ("signer:3", 907, 1006)])
    assert len(singles) == 2000 and ("subject:x999", 1006) in singles
    assert base._split_columns(7, ts) is not None
    ts[500] = ("type:e", "signer:0", "subject:500", "subject:x500")  # signer 0 again after signer 1: the loop
    assert base._split_columns(7, ts) is None
    assert _sorted(split_runs(7, ts)) == _sorted(base._split_runs_loop(7, ts))


def test_merge_helpers_against_a_list():
    rng = random.Random(7)
    for _ in range(200):
        ixs = sorted(rng.sample(range(60), rng.randrange(1, 40)))
        runs = [(a, b) for a, b in _runs(ixs) if b > a]
        singles = [a for a, b in _runs(ixs) if a == b]
        after, limit, offset = rng.randrange(-1, 62), rng.randrange(1, 9), rng.randrange(0, 45)
        assert merge_oldest(singles, runs, after, limit) == [i for i in ixs if i > after][:limit]
        assert merge_newest(singles, runs, offset, limit) == ixs[::-1][offset : offset + limit]


def _runs(ixs):
    first = prev = ixs[0]
    for i in ixs[1:]:
        if i != prev + 1:
            yield first, prev
            first = i
        prev = i
    yield first, prev


def test_runs_answer_like_rows(store_factory):
    """Appends of random sizes, each with a shared type/signer and per-entry terms: every read answers as a
    plain (term, index) list would."""
    rng = random.Random(20)
    s = store_factory()
    term_lists: list[tuple[str, ...]] = []
    for batch in range(12):
        n = rng.randrange(1, 40)
        typ = f"type:t{rng.randrange(3)}"
        rows = []
        for k in range(n):
            i = len(term_lists)
            ts = (typ, f"signer:k{rng.randrange(2) if batch % 3 else 0}", f"subject:{i}")
            if rng.random() < 0.3:
                ts += ("name:x",)
            term_lists.append(ts)
            d = f"entry {i} {k}".encode()
            rows.append(LeafRow(d, leaf_hash(d), ts))
        with s.writer() as w:
            w.add_leaves(w.size(), rows)
    _check_reads(s, _reference(term_lists), rng)


def test_a_batch_stores_one_row_per_shared_term(tmp_path):
    from ailedger.tlog.stores import SQLiteStore

    s = SQLiteStore(tmp_path / "l.db", create=True)
    rows = [LeafRow(b"e%d" % i, leaf_hash(b"e%d" % i), ("type:a", "signer:k", f"subject:{i}")) for i in range(1000)]
    with s.writer() as w:
        w.add_leaves(0, rows)
    con = sqlite3.connect(tmp_path / "l.db")
    # the subjects, in the terms level the append folded into (format 5: it crossed 2^8 entries, not 2^12)
    assert [con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("terms0", "terms1", "terms2", "terms")] \
        == [0, 1000, 0, 0]
    assert con.execute("SELECT term, first, last FROM term_runs ORDER BY term").fetchall() == [
        ("signer:k", 0, 999), ("type:a", 0, 999)]
    assert s.get_meta("format") == str(STORE_FORMAT) and s.migrated is False
    assert con.execute("PRAGMA page_size").fetchone()[0] == 16384  # a new store's pages
    assert s.count("type:a") == 1000 and s.find("signer:k", 500, 3) == [501, 502, 503]
    s.close()


# -- migration of a format-1 store ---------------------------------------------------------------------------

def _ledger_with_entries(path, store):
    from ailedger.tlog.ledger import Ledger

    led = Ledger.init(path, origin="migrate.example/log", store=store)
    a, _ = led.new_identity("alice")
    b, _ = led.new_identity("bob")
    for i in range(30):  # runs (alice's block), singles (alternating signers), unique subjects
        led.append_record("note", {"i": i, "subjects": [f"s{i % 4}"]}, a if i < 20 or i % 2 else b)
    return led


_TERMS = ["type:note", "type:identity.register", "subject:s1", "subject:s0"]


def _answers(led, extra: list[str]) -> dict:
    s = led.store
    return {t: (s.count(t), s.find(t, -1, 1000), s.find(t, 5, 7), s.find_newest(t, 3, 9)) for t in _TERMS + extra}


def _downgrade_sqlite(db) -> None:
    """Rewrite a store as format 1 wrote it: every term run back into (term, idx) rows, no runs table."""
    con = sqlite3.connect(db)
    runs = con.execute("SELECT term, first, last FROM term_runs").fetchall()
    con.executemany("INSERT OR IGNORE INTO terms (term, idx) VALUES (?, ?)",
                    [(t, i) for t, a, b in runs for i in range(a, b + 1)])
    con.execute("DROP TABLE term_runs")
    for level in ("terms0", "terms1", "terms2"):  # format 5's newer terms levels: format 1 had one table
        con.execute(f"INSERT INTO terms (term, idx) SELECT term, idx FROM {level}")
        con.execute(f"DROP TABLE {level}")
    con.execute("DELETE FROM meta WHERE key = 'format'")
    con.commit()
    con.close()


def test_sqlite_format1_ledger_migrates(tmp_path):
    from ailedger.tlog.ledger import Ledger

    d = tmp_path / "led"
    led = _ledger_with_entries(d, None)
    signers = [f"signer:{led.identities.load('alice').did}", f"signer:{led.identities.load('bob').did}"]
    before = _answers(led, signers)
    size = led.log.size
    led.close()
    _downgrade_sqlite(d / "ledger.db")
    con = sqlite3.connect(d / "ledger.db")
    rows_v1 = con.execute("SELECT count(*) FROM terms").fetchone()[0]
    con.close()

    led = Ledger.open(d)
    assert led.store.migrated is True
    assert led.store.get_meta("format") == str(STORE_FORMAT)
    assert _answers(led, signers) == before
    assert led.log.size == size
    rep = led.audit(signatures=True)
    assert rep.ok, rep.problems
    con = sqlite3.connect(d / "ledger.db")
    rows_v2 = con.execute("SELECT count(*) FROM terms").fetchone()[0] + \
        con.execute("SELECT count(*) FROM term_runs").fetchone()[0]
    con.close()
    assert rows_v2 < rows_v1
    # the migrated ledger keeps working: appends and reads, and opening again does not migrate again
    a = led.identities.load("alice")
    led.append_record("note", {"i": 99, "subjects": ["s1"]}, a)
    assert led.store.count("subject:s1") == before["subject:s1"][0] + 1
    led.close()
    led = Ledger.open(d)
    assert led.store.migrated is False
    led.close()


def test_postgres_format1_schema_migrates(tmp_path):
    from tests.tlog.stores.pg_factory import PG_DSN, fresh_schema, require_pg

    require_pg()
    import psycopg

    from ailedger.tlog.ledger import Ledger

    schema = fresh_schema()
    d = tmp_path / "led"
    led = _ledger_with_entries(d, {"store": "postgres", "dsn": PG_DSN, "schema": schema})
    signers = [f"signer:{led.identities.load('alice').did}"]
    before = _answers(led, signers)
    led.close()
    with psycopg.connect(PG_DSN, autocommit=True, options=f"-c search_path={schema}") as con:
        con.execute("INSERT INTO terms (term, idx) SELECT term, generate_series(first, last) FROM term_runs "
                    "ON CONFLICT DO NOTHING")
        con.execute("DROP TABLE term_runs")
        con.execute("DELETE FROM meta WHERE key = 'format'")
    led = Ledger.open(d)
    assert led.store.migrated is True
    assert _answers(led, signers) == before
    assert led.audit(signatures=True).ok
    with psycopg.connect(PG_DSN, autocommit=True, options=f"-c search_path={schema}") as con:
        assert con.execute("SELECT count(*) FROM term_runs").fetchone()[0] > 0
    led.close()


@pytest.mark.parametrize(("value", "message"), [("two", "store format 'two' is not a number"),
                                                  ("6", "store format 6 is newer than this ailedger reads")])
def test_bad_or_newer_format_is_refused(tmp_path, value, message):
    """A store whose format is not a number, or newer than this code knows: opening it says so."""
    from ailedger.errors import StorageError
    from ailedger.tlog.stores import SQLiteStore

    s = SQLiteStore(tmp_path / "l.db", create=True)
    s.set_meta("format", value)
    s.close()
    with pytest.raises(StorageError, match=message):
        SQLiteStore(tmp_path / "l.db")
