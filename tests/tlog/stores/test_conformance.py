"""The one conformance suite every LogStore must pass."""

import pytest

from ailedger.errors import ConflictError, DuplicateLeafError
from ailedger.tlog.merkle import CompactRange, leaf_hash
from ailedger.tlog.stores import LeafRow


def rows(a, b, terms=()):
    return [LeafRow(f"entry-{i}".encode(), leaf_hash(f"entry-{i}".encode()), tuple(terms)) for i in range(a, b)]


def test_empty_store(store_factory):
    s = store_factory()
    assert s.size() == 0
    assert s.leaves(0, 10) == []
    assert s.latest_checkpoint() is None
    assert s.node_hashes([(0, 0), (3, 0)]) == {}


def test_append_and_read_back(store_factory):
    s = store_factory()
    with s.writer() as w:
        assert w.size() == 0
        w.add_leaves(0, rows(0, 5, ["type:x"]))
        w.add_nodes([(1, 0, b"n" * 32), (1, 1, b"m" * 32), (2, 0, b"o" * 32)])
        assert w.size() == 5
    assert s.size() == 5
    assert [bytes(x) for x in s.leaves(1, 3)] == [b"entry-1", b"entry-2"]
    assert [bytes(h) for h in s.leaf_hashes(0, 2)] == [leaf_hash(b"entry-0"), leaf_hash(b"entry-1")]
    got = s.node_hashes([(0, 4), (1, 1), (2, 0), (5, 0)])
    assert bytes(got[(0, 4)]) == leaf_hash(b"entry-4") and bytes(got[(2, 0)]) == b"o" * 32
    assert (5, 0) not in got
    assert s.indices_of([leaf_hash(b"entry-3"), b"\0" * 32]) == {leaf_hash(b"entry-3"): 3}
    assert s.find("type:x") == [0, 1, 2, 3, 4]
    assert s.find("type:x", after=2, limit=1) == [3]
    assert [i for i, _, _ in s.iter_leaves(0, 5, batch=2)] == [0, 1, 2, 3, 4]
    assert {(lv, ix) for lv, ix, _ in s.iter_nodes()} == {(1, 0), (1, 1), (2, 0)}


def test_append_at_wrong_position_conflicts_and_writes_nothing(store_factory):
    s = store_factory()
    with s.writer() as w:
        w.add_leaves(0, rows(0, 2))
    with pytest.raises(ConflictError), s.writer() as w:
        w.add_leaves(5, rows(5, 6))
    assert s.size() == 2


def test_failed_transaction_rolls_back(store_factory):
    s = store_factory()
    with pytest.raises(RuntimeError), s.writer() as w:
        w.add_leaves(0, rows(0, 3))
        w.add_nodes([(1, 0, b"x" * 32)])
        raise RuntimeError("boom")
    assert s.size() == 0
    assert s.node_hashes([(1, 0)]) == {}


def test_checkpoints(store_factory):
    s = store_factory()
    with s.writer() as w:
        w.put_checkpoint(0, b"cp0")
        w.put_checkpoint(7, b"cp7")
        w.put_checkpoint(3, b"cp3")
    assert s.latest_checkpoint() == b"cp7"
    assert s.checkpoint_at(3) == b"cp3" and s.checkpoint_at(4) is None
    assert [x for x, _ in s.checkpoints()] == [0, 3, 7]
    assert [s.checkpoint_size_at_least(x) for x in (0, 1, 3, 4, 7, 8)] == [0, 3, 3, 7, 7, None]
    # sizes beyond a signed 64-bit integer name nothing (a path index may have 19 digits): no overflow error
    assert s.checkpoint_at(2**63) is None and s.checkpoint_at(10**19 - 1) is None and s.checkpoint_at(-1) is None
    assert s.checkpoint_size_at_least(2**63) is None


def test_meta(store_factory):
    s = store_factory()
    assert s.get_meta("k") is None
    s.set_meta("k", "v")
    assert s.get_meta("k") == "v"


def test_large_batch_and_reopen_consistency(store_factory):
    s = store_factory()
    cr = CompactRange()
    nodes = []
    rs = rows(0, 3000)
    cr.extend([r.hash for r in rs], nodes)
    with s.writer() as w:
        w.add_leaves(0, rs)
        w.add_nodes(nodes)
    ids = CompactRange.border_nodes(3000)
    got = s.node_hashes(ids)
    assert CompactRange(3000, [bytes(got[i]) for i in ids]).root() == cr.root()
    assert s.index_row_count() == 3000


def test_duplicate_leaf_is_refused_as_a_duplicate_and_rolls_back(store_factory):
    """The store names a duplicate leaf as DuplicateLeafError (not a generic storage failure), so the
    log's dedup path runs on every backend (issue 21: PostgreSQL answered 503 to a re-sent entry)."""
    s = store_factory()
    with s.writer() as w:
        w.add_leaves(0, rows(0, 3))
    with pytest.raises(DuplicateLeafError), s.writer() as w:
        w.add_leaves(3, rows(3, 5) + rows(1, 2))
    assert s.size() == 3
    with s.writer() as w:  # the store is still writable after the refused transaction
        w.add_leaves(3, rows(3, 4))
    assert s.size() == 4


def test_log_dedup_on_every_store(store_factory):
    """A re-sent entry gets its first index with duplicate=True, alone or inside a batch of new ones."""
    from ailedger.tlog.log import TransparencyLog

    log = TransparencyLog(store_factory(), "test.example/conformance")
    first = log.append_data([b"a", b"b", b"c"])
    again = log.append_data([b"b"])
    assert [(r.index, r.duplicate) for r in again] == [(1, True)]
    mixed = log.append_data([b"d", b"c", b"e", b"d"])
    assert [(r.index, r.duplicate) for r in mixed] == [(3, False), (2, True), (4, False), (3, True)]
    assert [r.index for r in first] == [0, 1, 2] and log.size == 5
    assert log.audit().ok


def test_terms_present(store_factory):
    s = store_factory()
    with s.writer() as w:
        w.add_leaves(0, rows(0, 2, ["type:x", "revoked:did:key:a"]) + rows(2, 3, ["type:y"]))
    assert s.terms_present(["type:x", "type:z", "revoked:did:key:a", "type:x", "revoked:did:key:b"]) == \
        {"type:x", "revoked:did:key:a"}
    assert s.terms_present([]) == set()
    assert s.terms_present([f"t{i}" for i in range(1200)] + ["type:y"]) == {"type:y"}
