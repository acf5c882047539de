import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.errors import ProofError
from ailedger.provenance import smt


def _keys(n, seed=b""):
    return sorted({hashlib.sha256(seed + i.to_bytes(8, "big")).digest() for i in range(n)})


def _levels(keys, D):
    """Levels 0..D the way the dataset service stores them."""
    buckets = [[] for _ in range(1 << D)]
    for k in keys:
        buckets[int.from_bytes(k, "big") >> (256 - D) if D else 0].append(k)
    level = b"".join(smt.subtree_root(b, D) for b in buckets)
    counts = bytes(min(len(b), 2) for b in buckets)
    levels = {D: level}
    for d in range(D, 0, -1):
        level, counts = smt.parent_level(level, counts)
        levels[d - 1] = level
    return levels


def test_empty_and_single():
    assert smt.subtree_root([]) == smt.Z
    k = _keys(1)
    assert smt.subtree_root(k) == smt.leaf_node(k[0])


@pytest.mark.parametrize("n", [2, 3, 17, 300])
@pytest.mark.parametrize("D", [0, 1, 4, 6])
def test_levels_match_root_and_proofs_verify(n, D):
    keys = _keys(n)
    root = smt.subtree_root(keys)
    levels = _levels(keys, D)
    assert levels[0] == root

    def node_at(d, p):
        return levels[d][32 * p:32 * p + 32]

    for k in keys[:20]:
        p = smt.prove_with_levels(k, D, node_at, keys)
        assert p.kind == smt.MEMBER
        assert smt.verify_proof(root, k, smt.decode_proof(smt.encode_proof(p))) is True
        assert p == smt.SmtProof(*_flat(smt.prove_in_sorted(keys, k)))
    for c in _keys(20, b"absent"):
        p = smt.prove_with_levels(c, D, node_at, keys)
        assert p.kind in (smt.EMPTY, smt.OTHER)
        assert smt.verify_proof(root, c, smt.decode_proof(smt.encode_proof(p))) is False


def _flat(t):
    sibs, d, kind, other = t
    return kind, d, tuple(sibs), other


def test_cannot_turn_membership_into_absence():
    keys = _keys(50)
    root = smt.subtree_root(keys)
    k = keys[7]
    sibs, d, _kind, _other = smt.prove_in_sorted(keys, k)
    # claim absence with the empty terminal, or with some other key on the path
    with pytest.raises(ProofError):
        smt.verify_proof(root, k, smt.SmtProof(smt.EMPTY, d, tuple(sibs)))
    for k2 in keys:
        if k2 != k:
            with pytest.raises(ProofError):
                smt.verify_proof(root, k, smt.SmtProof(smt.OTHER, d, tuple(sibs), k2))
    # a shorter path claiming a lone other leaf higher up
    with pytest.raises(ProofError):
        smt.verify_proof(root, k, smt.SmtProof(smt.OTHER, d - 1, tuple(sibs[:-1]), keys[8]))


def test_absent_key_cannot_be_proved_member():
    keys = _keys(50)
    root = smt.subtree_root(keys)
    c = hashlib.sha256(b"not there").digest()
    sibs, d, kind, _other = smt.prove_in_sorted(keys, c)
    assert kind != smt.MEMBER
    with pytest.raises(ProofError):
        smt.verify_proof(root, c, smt.SmtProof(smt.MEMBER, d, tuple(sibs)))


@settings(max_examples=40, deadline=None)
@given(st.sets(st.binary(min_size=32, max_size=32), min_size=0, max_size=40), st.binary(min_size=32, max_size=32))
def test_property_proofs(keyset, probe):
    keys = sorted(keyset)
    root = smt.subtree_root(keys)
    for k in keys[:5] + [probe]:
        p = smt.SmtProof(*_flat(smt.prove_in_sorted(keys, k)))
        enc = smt.encode_proof(p)
        assert smt.verify_proof(root, k, smt.decode_proof(enc)) == (k in keyset)
        # flipping any byte of the encoding breaks the proof or its parse
        if len(enc) > 4:
            bad = bytearray(enc)
            bad[-1] ^= 1
            with pytest.raises(ProofError):
                smt.verify_proof(root, k, smt.decode_proof(bytes(bad)))


def test_proof_size_at_scale_is_small():
    keys = _keys(20000)
    k = keys[123]
    p = smt.SmtProof(*_flat(smt.prove_in_sorted(keys, k)))
    assert len(smt.encode_proof(p)) < 1024


def test_hand_computed_roots():
    """The hashing rules written out with hashlib alone."""
    H = lambda b: hashlib.sha256(b).digest()
    k1 = bytes([0x10]) + bytes(31)   # 0001...
    k2 = bytes([0x20]) + bytes(31)   # 0010...
    k3 = bytes([0x90]) + bytes(31)   # 1001...
    leaf = lambda k: H(b"\x00" + k)
    node = lambda a, b: H(b"\x01" + a + b)
    Z = bytes(32)
    assert smt.subtree_root([k1]) == leaf(k1)
    # k1, k2 share "00", split at bit 2: chain of two one-sided nodes above their parent
    assert smt.subtree_root([k1, k2]) == node(node(node(leaf(k1), leaf(k2)), Z), Z)
    assert smt.subtree_root([k1, k2, k3]) == node(node(node(leaf(k1), leaf(k2)), Z), leaf(k3))
    # absence of 0x30... (bits 0011): the walk ends at depth 3 on the lone leaf k2 (bits 0010), another key
    k4 = bytes([0x30]) + bytes(31)
    sibs, d, kind, other = smt.prove_in_sorted([k1, k2, k3], k4)
    assert (d, kind) == (3, smt.OTHER) and other == k2 and sibs == [leaf(k3), Z, leaf(k1)]
