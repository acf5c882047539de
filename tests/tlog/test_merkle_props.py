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
