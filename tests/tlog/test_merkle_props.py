"""Property tests: planned proofs equal the RFC 6962 recursive definitions and verify."""

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.errors import BadInputError, ProofError
from ailedger.tlog.merkle import (
    CompactRange,
    consistency_plan,
    inclusion_plan,
    leaf_hash,
    node_hash,
    rehash_plan,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)


def mth(hs):  # RFC 6962 section 2.1, literally
    n = len(hs)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return hs[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return node_hash(mth(hs[:k]), mth(hs[k:]))


def path(m, hs):
    n = len(hs)
    if n <= 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    if m < k:
        return path(m, hs[:k]) + [mth(hs[k:])]
    return path(m - k, hs[k:]) + [mth(hs[:k])]


def subproof(m, hs, b):
    n = len(hs)
    if m == n:
        return [] if b else [mth(hs)]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return subproof(m, hs[:k], b) + [mth(hs[k:])]
    return subproof(m - k, hs[k:], False) + [mth(hs[:k])]


def all_nodes(hs):
    nodes = []
    cr = CompactRange()
    cr.extend(hs, nodes)
    return {(lvl, idx): h for lvl, idx, h in nodes}, cr


leaves = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(leaves, st.data())
def test_inclusion_matches_rfc(raw, data):
    hs = [leaf_hash(x) for x in raw]
    nodes, cr = all_nodes(hs)
    assert cr.root() == mth(hs) == root_from_leaf_hashes(hs)
    i = data.draw(st.integers(0, len(hs) - 1))
    proof = rehash_plan(inclusion_plan(i, len(hs)), nodes)
    assert proof == path(i, hs)
    verify_inclusion(i, len(hs), hs[i], proof, cr.root())
    if proof:
        bad = list(proof)
        bad[0] = bytes([bad[0][0] ^ 1]) + bad[0][1:]
        with pytest.raises(ProofError):
            verify_inclusion(i, len(hs), hs[i], bad, cr.root())


@settings(max_examples=150, deadline=None)
@given(leaves, st.data())
def test_consistency_matches_rfc(raw, data):
    hs = [leaf_hash(x) for x in raw]
    nodes, _ = all_nodes(hs)
    n = len(hs)
    m = data.draw(st.integers(1, n))
    proof = rehash_plan(consistency_plan(m, n), nodes)
    assert proof == (subproof(m, hs, True) if m < n else [])
    verify_consistency(m, n, mth(hs[:m]), mth(hs), proof)
    if m < n:
        with pytest.raises(ProofError):
            verify_consistency(m, n, mth(hs[:m]), mth(hs[:-1]) if n - 1 >= m else b"\0" * 32, proof + [b"\0" * 32])


def test_plan_rejects_bad_ranges():
    with pytest.raises(BadInputError):
        inclusion_plan(5, 5)
    with pytest.raises(BadInputError):
        consistency_plan(6, 5)


def test_compact_range_emits_each_complete_node_once():
    nodes = []
    cr = CompactRange()
    cr.extend([leaf_hash(bytes([i])) for i in range(16)], nodes)
    ids = [(lvl, idx) for lvl, idx, _ in nodes]
    assert len(ids) == len(set(ids)) == 31
    assert (4, 0) in ids


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 600), st.integers(0, 300), st.binary(min_size=1, max_size=4))
def test_extend_keyed_gives_the_nodes_append_finds(size, more, seed):
    """CompactRange.extend_keyed (the log's batched append; C when built) against append one by one: the same
    border, root and completed interior nodes under the stores' key (level << 56 | index)."""
    hs = [hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(size + more)]
    a = CompactRange()
    a.extend(hs[:size])
    b = a.copy()
    nodes: list = []
    a.extend(hs[size:], nodes)
    keyed = b.extend_keyed(hs[size:])
    assert (b.size, b.hashes, b.root()) == (a.size, a.hashes, a.root())
    assert keyed == [((lv << 56) | ix, h) for lv, ix, h in nodes if lv > 0]
    assert b.root() == mth(hs)


@pytest.mark.parametrize("n", [0, 1, 55, 62, 63, 64, 65, 119, 127, 128, 129, 1000, 65535])
def test_leaf_hashes_in_c_are_rfc6962_leaf_hashes(n):
    from ailedger.encoding.fasthash import leaf_hashes

    datas = [bytes([n % 251]) * n, hashlib.sha512(str(n).encode()).digest() * (n // 64 + 1)]
    assert leaf_hashes(datas) == [leaf_hash(d) for d in datas]


def test_extend_range_refuses_a_border_that_does_not_fit_the_size():
    from ailedger.encoding.fasthash import extend_range

    if extend_range is None:
        pytest.skip("the C module is not built")
    with pytest.raises(ValueError):
        extend_range(3, [b"x" * 32], [])  # size 3 needs two border hashes
    with pytest.raises(ValueError):
        extend_range(1, [b"x" * 31], [])
    with pytest.raises(ValueError):
        extend_range(0, [], [b"short"])
