"""tlog.sparse: the indexes of some types read through the type index, None when they are not sparse, and the
leaves read in runs are exactly the stored ones."""

from __future__ import annotations

import random
import time

import pytest

from ailedger.encoding.records import build_entry
from ailedger.encoding.times import iso
from ailedger.tlog import sparse
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key


@pytest.fixture
def filled(tmp_path):
    led = Ledger.init(tmp_path / "led", origin="sparse.example/log")
    k = Key("alice")
    rng = random.Random(5)
    kinds = ["rare.a"] * 40 + ["rare.b"] * 30 + ["common"] * 2930
    rng.shuffle(kinds)
    kinds[100:110] = ["rare.a"] * 10  # a run of consecutive entries of one type
    now = iso(int(time.time() * 1000))
    leaves = [build_entry(t, {"i": i}, k.did, now, k.key.sign).leaf_bytes for i, t in enumerate(kinds)]
    assert not any(isinstance(r, str) for r in led.append_entries(leaves, parallel=False))
    yield led, kinds, leaves
    led.close()


def test_sparse_types_found_through_the_index_and_read_in_runs(filled, monkeypatch):
    led, kinds, leaves = filled
    want = [i for i, t in enumerate(kinds) if t in ("rare.a", "rare.b")]
    assert sparse.sparse_indexes(led.store, ["rare.b", "rare.a"], 0, len(kinds)) == want
    part = [i for i in want if 50 <= i < 2000]
    assert sparse.sparse_indexes(led.store, ["rare.a", "rare.b"], 50, 2000) == part
    monkeypatch.setattr(sparse, "RUN_READ", 3)  # runs longer than one read are split, nothing lost
    monkeypatch.setattr(sparse, "PAGE", 7)      # and the index is paged
    got = sparse.indexed_leaves(led.store, ["rare.a", "rare.b"], 0, len(kinds))
    assert got is not None
    assert [(i, bytes(b)) for i, b in got] == [(i, leaves[i]) for i in want]


def test_a_dense_type_is_left_to_a_scan(filled):
    led, kinds, _ = filled
    assert sparse.sparse_indexes(led.store, ["common"], 0, len(kinds)) is None  # 2930 > max(1000, 3000 // 8)
    assert sparse.indexed_leaves(led.store, ["rare.a", "common"], 0, len(kinds)) is None
    assert sparse.sparse_indexes(led.store, ["absent"], 0, len(kinds)) == []
