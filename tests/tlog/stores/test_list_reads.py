"""The reads behind the explorer's list pages, on every backend: newest first, paged, with counts."""

from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow


def _fill(s):
    with s.writer() as w:
        w.add_leaves(0, [LeafRow(f"e{i}".encode(), leaf_hash(f"e{i}".encode()),
                                 ("type:even",) if i % 2 == 0 else ("type:odd",)) for i in range(11)])
        for size in (3, 7, 11):
            w.put_checkpoint(size, f"note {size}".encode())


def test_find_newest_pages_backwards(store_factory):
    s = store_factory()
    _fill(s)
    assert s.count("type:even") == 6 and s.count("type:odd") == 5 and s.count("type:none") == 0
    assert s.find_newest("type:even", 0, 4) == [10, 8, 6, 4]
    assert s.find_newest("type:even", 4, 4) == [2, 0]
    assert s.find_newest("type:even", 6, 4) == []
    assert s.find_newest("type:odd", 1, 2) == [7, 5]
    assert s.find_newest("type:none") == []


def test_checkpoints_newest(store_factory):
    s = store_factory()
    _fill(s)
    assert s.checkpoint_count() == 3
    assert [(n, bytes(b)) for n, b in s.checkpoints_newest(0, 2)] == [(11, b"note 11"), (7, b"note 7")]
    assert [n for n, _ in s.checkpoints_newest(2, 2)] == [3]
    assert s.checkpoints_newest(3, 2) == []
