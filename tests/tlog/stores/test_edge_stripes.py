"""The SQLite and PostgreSQL stores keep the right-edge partial stripes their last committed append wrote
(stores/base.Edge) and extend them without reading them back while the log is still at that size (PostgreSQL
then sends a small append's stripe rows with its COMMIT). Whatever else happens (another writer on the same
store, a transaction that fails after writing its stripes, a checkpoint signed alone, appends of every size),
the stored tree must stay the one the leaves give: every node, every root, the audit."""

import pytest

from ailedger.errors import StorageError
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow, SQLiteStore
from ailedger.tlog.stores import sqlite as sq

STORES = ["sqlite", "postgres"]


def _rows(start: int, n: int) -> list[LeafRow]:
    return [LeafRow(b"e%d" % i, leaf_hash(b"e%d" % i), ()) for i in range(start, start + n)]


def _open(kind: str, tmp_path, name: str = "l", *, same_as=None):
    """A store of ``kind``; ``same_as``: a second store object on the same file or schema."""
    if kind == "sqlite":
        path = tmp_path / f"{name}.db" if same_as is None else same_as.path
        return SQLiteStore(path, create=same_as is None)
    from tests.tlog.stores.pg_factory import PG_DSN, fresh_schema, require_pg

    require_pg()
    from ailedger.tlog.stores.postgres import PostgresStore

    if same_as is not None:
        return PostgresStore(PG_DSN, schema=same_as.schema)
    return PostgresStore(PG_DSN, schema=fresh_schema(), create=True)


def _reads(monkeypatch, kind: str) -> list[list[int]]:
    """Every stripe read (keys asked) from now on."""
    seen: list[list[int]] = []
    if kind == "sqlite":
        real = sq._stripes

        def spy(con, keys):
            seen.append(list(keys))
            return real(con, keys)

        monkeypatch.setattr(sq, "_stripes", spy)
    else:
        from ailedger.tlog.stores import postgres as pg

        real_pg = pg._stripes

        def spy_pg(cur, keys, *, take=False):
            seen.append(list(keys))
            return real_pg(cur, keys, take=take)

        monkeypatch.setattr(pg, "_stripes", spy_pg)
    return seen


def _same_tree(kind, tmp_path, log: TransparencyLog, size: int) -> None:
    ref_store = SQLiteStore(tmp_path / f"ref-{kind}.db", create=True)
    ref = TransparencyLog(ref_store, "example.org/edge")
    ref.append(_rows(0, size), sign=False)
    for n in (size, size - 1, size // 2 + 1, 257):
        if 0 < n <= size:
            assert log.root_at(n) == ref.root_at(n), n
    assert list(log.store.iter_nodes()) == list(ref_store.iter_nodes())
    assert log.audit().ok
    ref_store.close()


@pytest.mark.parametrize("kind", STORES)
def test_small_appends_do_not_read_the_edge_back(tmp_path, monkeypatch, kind):
    st = _open(kind, tmp_path)
    log = TransparencyLog(st, "example.org/edge")
    log.append(_rows(0, 1000), sign=False)
    seen = _reads(monkeypatch, kind)
    pos = 1000
    for n in (50, 3, 50, 256, 1, 700, 50, 2000, 50):  # PostgreSQL: small ones with the COMMIT, large by COPY
        log.append(_rows(pos, n), sign=False)
        pos += n
    assert [k for k in seen if k] == []  # every partial stripe came from the edge kept in memory
    monkeypatch.undo()
    _same_tree(kind, tmp_path, log, pos)
    st.close()


@pytest.mark.parametrize("kind", STORES)
def test_two_writers_on_one_store_keep_one_tree(tmp_path, kind):
    a = _open(kind, tmp_path)
    b = _open(kind, tmp_path, same_as=a)
    la, lb = TransparencyLog(a, "example.org/edge"), TransparencyLog(b, "example.org/edge")
    pos = 0
    for k, n in enumerate((300, 50, 50, 7, 50, 300, 1, 50, 50, 600, 3)):
        (la if k % 3 else lb).append(_rows(pos, n), sign=False)  # each sometimes behind the other's appends
        pos += n
    assert lb.audit().ok
    _same_tree(kind, tmp_path, la, pos)
    a.close()
    b.close()


@pytest.mark.parametrize("kind", STORES)
def test_a_failed_transaction_leaves_no_edge_behind(tmp_path, monkeypatch, kind):
    st = _open(kind, tmp_path)
    log = TransparencyLog(st, "example.org/edge")
    log.append(_rows(0, 500), sign=False)

    def boom(self, w, size, root):
        raise StorageError("the disk is full")

    log.signer = object()  # type: ignore[assignment]  # sign: put_checkpoint is reached after the stripes
    monkeypatch.setattr(TransparencyLog, "_put_checkpoint", boom)
    with pytest.raises(StorageError):
        log.append(_rows(500, 50))
    monkeypatch.undo()
    log.signer = None
    log.append(_rows(500, 60), sign=False)  # other entries at the same place
    log.append(_rows(560, 50), sign=False)
    _same_tree(kind, tmp_path, log, 610)
    st.close()


@pytest.mark.parametrize("kind", STORES)
def test_a_checkpoint_alone_keeps_the_edge(tmp_path, monkeypatch, kind):
    """A transaction that writes no node (a checkpoint signed on its own) leaves the kept edge usable."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ailedger.tlog.note import Signer

    st = _open(kind, tmp_path)
    log = TransparencyLog(st, "example.org/edge", Signer("example.org/edge", Ed25519PrivateKey.generate()))
    log.append(_rows(0, 300), sign=False)
    log.checkpoint()
    seen = _reads(monkeypatch, kind)
    log.append(_rows(300, 50))  # with its checkpoint (PostgreSQL: the stripes and the note in one round trip)
    assert [k for k in seen if k] == []
    monkeypatch.undo()
    assert log.latest_checkpoint()[1].size == 350  # type: ignore[index]
    _same_tree(kind, tmp_path, log, 350)
    st.close()
