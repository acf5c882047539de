import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.errors import ProofError
from ailedger.provenance.shardproof import (
    ShardHasher,
    challenge_indices,
    inclusion_proof,
    segment_count,
    verify_segment,
)


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_every_segment_proves(data, seg):
    h = ShardHasher(seg)
    for i in range(0, len(data), 7):
        h.update(data[i:i + 7])
    _, root = h.finish()
    n = segment_count(len(data), seg)
    assert len(h.leaf_hashes) == n
    for i in range(n):
        piece = data[i * seg:(i + 1) * seg]
        verify_segment(root, len(data), i, piece, inclusion_proof(h.leaf_hashes, i), seg)


def test_wrong_segment_fails():
    data = os.urandom(10000)
    h = ShardHasher(1000)
    h.update(data)
    _, root = h.finish()
    proof = inclusion_proof(h.leaf_hashes, 3)
    with pytest.raises(ProofError):
        verify_segment(root, len(data), 3, data[3000:3999] + bytes([data[3999] ^ 1]), proof, 1000)
    with pytest.raises(ProofError):
        verify_segment(root, len(data), 4, data[3000:4000], proof, 1000)
    with pytest.raises(ProofError):
        verify_segment(root, len(data), 99, b"", proof, 1000)


def test_challenges_deterministic_and_in_range():
    a = challenge_indices(b"seed", 20, 7)
    assert a == challenge_indices(b"seed", 20, 7) and all(0 <= x < 7 for x in a)
    assert a != challenge_indices(b"other", 20, 7)
