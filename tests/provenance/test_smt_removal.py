import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.errors import BadInputError, ProofError
from ailedger.provenance.smt import Z, leaf_node, subtree_root
from ailedger.provenance.smt_removal import DeletionStep, delete_all, deletion_step, root_after_deletion


def keys_of(n, seed=0):
    return sorted({hashlib.sha256(f"{seed}-{i}".encode()).digest() for i in range(n)})


def apply(keys, removed):
    ks = list(keys)
    steps = []
    for k in removed:
        steps.append(deletion_step(ks, k))
        ks.remove(k)
    return steps, ks


@given(st.integers(1, 60), st.integers(0, 10_000), st.data())
@settings(max_examples=60, deadline=None)
def test_deletions_reproduce_root_of_remaining_set(n, seed, data):
    keys = keys_of(n, seed)
    m = data.draw(st.integers(1, n))
    removed = random.Random(seed).sample(keys, m)
    steps, rest = apply(keys, removed)
    assert delete_all(subtree_root(keys), steps) == subtree_root(rest)


def test_close_keys_chain_witness():
    # keys sharing long prefixes force one-sided chains and lifted leaves
    base = bytearray(32)
    keys = []
    for tail in (0x00, 0x01, 0x03, 0x80, 0x81):
        b = bytearray(base)
        b[31] = tail
        keys.append(bytes(b))
    keys.append(bytes([0xFF] * 32))
    keys.sort()
    for k in keys:
        steps, rest = apply(keys, [k])
        assert root_after_deletion(subtree_root(keys), steps[0]) == subtree_root(rest)
    steps, rest = apply(keys, keys)
    assert delete_all(subtree_root(keys), steps) == Z and rest == []


def test_forged_witnesses_fail():
    keys = keys_of(40)
    root = subtree_root(keys)
    k = keys[7]
    good = deletion_step(keys, k)
    if good.leaf_key is not None:
        bad = DeletionStep(k, good.proof, leaf_key=keys[8] if keys[8] != good.leaf_key else keys[9])
    else:
        bad = DeletionStep(k, good.proof, leaf_key=keys[0])
    with pytest.raises(ProofError):
        root_after_deletion(root, bad)
    # claim interior when the sibling is a lone leaf, or vice versa: cannot be witnessed
    with pytest.raises(ProofError):
        root_after_deletion(root, DeletionStep(k, good.proof))
    # deleting a key that is not there
    other = hashlib.sha256(b"absent").digest()
    with pytest.raises(BadInputError):
        deletion_step(keys, other)
    with pytest.raises(ProofError):
        root_after_deletion(root, DeletionStep(other, good.proof, leaf_key=good.leaf_key, chain=good.chain))
    # the same key twice
    steps, _ = apply(keys, [k])
    with pytest.raises(ProofError):
        delete_all(root, [steps[0], steps[0]])
    assert leaf_node(k) != Z
