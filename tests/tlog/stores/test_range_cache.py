"""TransparencyLog.append starts from the compact range it last committed when the store is still at that
size (no border read per group). Another writer in between, or a transaction that failed after extending
the range, must never make it sign or store a wrong tree: every checkpoint and node is checked by the audit."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ailedger.errors import StorageError
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import CompactRange, leaf_hash
from ailedger.tlog.note import Signer
from ailedger.tlog.stores import LeafRow

ORIGIN = "example.org/range-cache"
KEY = Ed25519PrivateKey.generate()


def row(s: str) -> LeafRow:
    return LeafRow(s.encode(), leaf_hash(s.encode()), (f"t:{s}",))


def root_of(n: int, rows: list[LeafRow]) -> bytes:
    cr = CompactRange()
    cr.extend([r.hash for r in rows[:n]])
    return cr.root()


def test_two_writers_interleaved_sign_the_right_roots(store_factory):
    store = store_factory()
    a, b = (TransparencyLog(store, ORIGIN, Signer(ORIGIN, KEY)) for _ in range(2))
    written: list[LeafRow] = []
    for i in range(40):
        w = a if i % 3 else b  # runs of appends by one writer (its range reused), then the other (re-read)
        rows = [row(f"{i}-{k}") for k in range(1 + i % 4)]
        res = w.append(rows)
        assert [r.index for r in res] == list(range(len(written), len(written) + len(rows)))
        written += rows
        _note, cp = w.latest_checkpoint()  # type: ignore[misc]
        assert cp.size == len(written) and cp.root == root_of(len(written), written)
    rep = a.audit()
    assert rep.ok, rep.problems[:3]
    assert rep.size == len(written) and rep.checkpoints_checked == 40


def test_a_failed_fast_path_does_not_move_the_reused_range(store_factory):
    store = store_factory()
    log = TransparencyLog(store, ORIGIN, Signer(ORIGIN, KEY))
    log.append([row("a"), row("b"), row("c")])
    # the fast path extends its range by both rows, then the store refuses the duplicate; the dedup path
    # must start again from the tree at size 3
    res = log.append([row("new"), row("b")])
    assert [(r.index, r.duplicate) for r in res] == [(3, False), (1, True)]
    log.append([row("d")])
    rows = [row(s) for s in ("a", "b", "c", "new", "d")]
    _, cp = log.latest_checkpoint()  # type: ignore[misc]
    assert cp.size == 5 and cp.root == root_of(5, rows)
    rep = log.audit()
    assert rep.ok, rep.problems[:3]


def test_postgres_checkpoint_refused_with_the_commit_stores_nothing():
    """On PostgreSQL the checkpoint's INSERT goes with the COMMIT: when the server refuses it (here a trigger),
    the group fails as a write failure, nothing of it is stored, and the next append works."""
    from tests.tlog.stores.pg_factory import postgres_factory, require_pg

    require_pg()
    import psycopg  # only with a server to reach

    store = postgres_factory(None)
    try:
        log = TransparencyLog(store, ORIGIN, Signer(ORIGIN, KEY))
        log.append([row("a")])
        with psycopg.connect(store.dsn, autocommit=True) as con:
            con.execute(f'SET search_path = "{store.schema}"')
            con.execute("CREATE FUNCTION no_cp() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN RAISE EXCEPTION 'checkpoints refused'; END $$")
            con.execute("CREATE TRIGGER no_cp BEFORE INSERT ON checkpoints FOR EACH ROW EXECUTE FUNCTION no_cp()")
            with pytest.raises(StorageError, match="PostgreSQL write failed: checkpoints refused"):
                log.append([row("b")])
            assert store.size() == 1 and store.indices_of([row("b").hash]) == {}
            con.execute("DROP TRIGGER no_cp ON checkpoints")
        res = log.append([row("b")])
        assert res[0].index == 1
        _, cp = log.latest_checkpoint()  # type: ignore[misc]
        assert cp.size == 2 and cp.root == root_of(2, [row("a"), row("b")])
        assert log.audit().ok
    finally:
        store.close()
