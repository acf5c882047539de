"""The SQLite store keeps the right-edge partial stripes its last committed append wrote (stores/sqlite._Edge)
and extends them without reading them back while the log is still at that size. Whatever else happens (another
writer on the same file, a transaction that fails after writing its stripes), the stored tree must stay the
one the leaves give: every node, every proof, the audit."""

import pytest

from ailedger.errors import StorageError
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow, SQLiteStore
from ailedger.tlog.stores import sqlite as sq


def _rows(start: int, n: int) -> list[LeafRow]:
    return [LeafRow(b"e%d" % i, leaf_hash(b"e%d" % i), ()) for i in range(start, start + n)]


def _reads(monkeypatch) -> list[list[int]]:
    seen: list[list[int]] = []
    real = sq._stripes

    def spy(con, keys):
        seen.append(list(keys))
        return real(con, keys)

    monkeypatch.setattr(sq, "_stripes", spy)
    return seen


def test_small_appends_do_not_read_the_edge_back(tmp_path, monkeypatch):
    st = SQLiteStore(tmp_path / "l.db", create=True)
    log = TransparencyLog(st, "example.org/edge")
    log.append(_rows(0, 1000), sign=False)
    seen = _reads(monkeypatch)
    pos = 1000
    for n in (50, 3, 50, 256, 1, 700, 50):
        log.append(_rows(pos, n), sign=False)
        pos += n
    assert [k for k in seen if k] == []  # every partial stripe came from the edge kept in memory
    assert log.audit().ok


def test_two_writers_on_one_file_keep_one_tree(tmp_path):
    a = SQLiteStore(tmp_path / "l.db", create=True)
    b = SQLiteStore(tmp_path / "l.db")
    la, lb = TransparencyLog(a, "example.org/edge"), TransparencyLog(b, "example.org/edge")
    pos = 0
    for k, n in enumerate((300, 50, 50, 7, 50, 300, 1, 50, 50)):
        (la if k % 3 else lb).append(_rows(pos, n), sign=False)  # each sometimes behind the other's appends
        pos += n
    assert la.audit().ok and lb.audit().ok
    ref = SQLiteStore(tmp_path / "ref.db", create=True)
    lr = TransparencyLog(ref, "example.org/edge")
    lr.append(_rows(0, pos), sign=False)
    for size in (pos, pos - 1, 700, 257):
        assert la.root_at(size) == lr.root_at(size) == lb.root_at(size)
    assert list(a.iter_nodes()) == list(ref.iter_nodes())


def test_a_failed_transaction_leaves_no_edge_behind(tmp_path, monkeypatch):
    st = SQLiteStore(tmp_path / "l.db", create=True)
    log = TransparencyLog(st, "example.org/edge")
    log.append(_rows(0, 500), sign=False)

    def boom(self, size, note):
        raise StorageError("the disk is full")

    log.signer = object()  # type: ignore[assignment]  # sign: put_checkpoint is reached after the stripes
    monkeypatch.setattr(TransparencyLog, "_put_checkpoint", lambda self, w, size, root: boom(w, size, root))
    with pytest.raises(StorageError):
        log.append(_rows(500, 50))
    monkeypatch.undo()
    log.signer = None
    log.append(_rows(500, 60), sign=False)  # other entries at the same place
    log.append(_rows(560, 50), sign=False)
    assert log.audit().ok
    ref = TransparencyLog(SQLiteStore(tmp_path / "ref.db", create=True), "example.org/edge")
    ref.append(_rows(0, 610), sign=False)
    assert log.root_at(610) == ref.root_at(610)


def test_a_checkpoint_alone_keeps_the_edge(tmp_path, monkeypatch):
    """A transaction that writes no node (a checkpoint signed on its own) leaves the kept edge usable."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ailedger.tlog.note import Signer

    st = SQLiteStore(tmp_path / "l.db", create=True)
    log = TransparencyLog(st, "example.org/edge", Signer("example.org/edge", Ed25519PrivateKey.generate()))
    log.append(_rows(0, 300), sign=False)
    log.checkpoint()
    seen = _reads(monkeypatch)
    log.append(_rows(300, 50), sign=False)
    assert [k for k in seen if k] == []
    assert log.audit().ok
