"""Deletion proofs for the sparse Merkle tree of ``ailedger.provenance.smt``: from an old root and a list of
keys, recompute the root of (old set minus those keys) exactly, so a verifier knows *exactly* which
records left between two dataset commitments (nothing else left, nothing was added).

Deleting key ``k`` (a member at terminal depth ``d`` with siblings ``s_0..s_{d-1}``): its subtree becomes
empty; walking up, while our side is empty a ``Z`` sibling keeps it empty; at the first non-empty sibling
``s_j`` the parent is ``s_j`` itself if that subtree holds a single key (a lone leaf is lifted), else the
interior node ``node(s_j, Z)`` / ``node(Z, s_j)``; a lifted leaf keeps rising past ``Z`` siblings; from the
first interior node up, ordinary hashing.  Whether ``s_j`` is a lone leaf is not visible in its hash, so
the prover adds a witness: ``leaf`` (the key ``k'`` with ``leaf_node(k') == s_j``) or ``node`` (a chain of
child-hash pairs from ``s_j`` down to a node whose two children are both non-empty, showing >= 2 keys).
Leaf and node hashes are domain-separated (0x00 / 0x01), so neither witness can be forged without a
SHA-256 collision.  Pure: no I/O.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

from ailedger.errors import BadInputError, ProofError
from ailedger.provenance.smt import (
    MEMBER,
    SmtProof,
    Z,
    bit,
    leaf_node,
    node,
    prove_in_sorted,
    subtree_root,
    verify_proof,
)

__all__ = ["DeletionStep", "delete_all", "deletion_step", "root_after_deletion"]


@dataclass(frozen=True)
class DeletionStep:
    key: bytes
    proof: SmtProof  # membership proof of key under the root before this deletion
    leaf_key: bytes | None = None  # witness: the first non-empty sibling is this lone key's leaf
    chain: tuple[tuple[bytes, bytes], ...] = ()  # witness: the first non-empty sibling is an interior node


def _prefix_range(keys: Sequence[bytes], key: bytes, depth: int, flip: bool) -> tuple[int, int]:
    """Index range of sorted ``keys`` sharing ``key``'s first ``depth`` bits, with bit ``depth - 1`` flipped
    when ``flip`` (the sibling subtree at ``depth``)."""
    k = int.from_bytes(key, "big")
    p = k >> (256 - depth)
    if flip:
        p ^= 1
    lo_key = (p << (256 - depth)).to_bytes(32, "big")
    hi_int = (p + 1) << (256 - depth)
    lo = bisect_left(keys, lo_key)
    hi = len(keys) if hi_int >= 1 << 256 else bisect_left(keys, hi_int.to_bytes(32, "big"))
    return lo, hi


def deletion_step(keys: Sequence[bytes], key: bytes) -> DeletionStep:
    """Prover: the step deleting ``key`` from the sorted, distinct ``keys`` (which must hold it)."""
    sibs, depth, kind, _ = prove_in_sorted(keys, key)
    if kind != MEMBER:
        raise BadInputError(f"key {key.hex()[:16]}... is not in the set", field="key")
    proof = SmtProof(MEMBER, depth, tuple(sibs))
    for j in range(depth - 1, -1, -1):
        if sibs[j] == Z:
            continue
        lo, hi = _prefix_range(keys, key, j + 1, flip=True)
        if hi - lo == 1:
            return DeletionStep(key, proof, leaf_key=keys[lo])
        chain: list[tuple[bytes, bytes]] = []
        d = j + 1
        while True:
            # split the subtree at depth d holding keys[lo:hi] by bit d
            m = lo
            while m < hi and not bit(keys[m], d):
                m += 1
            left, right = subtree_root(keys, d + 1, lo, m), subtree_root(keys, d + 1, m, hi)
            chain.append((left, right))
            if left != Z and right != Z:
                break
            if left == Z:
                lo = m
            else:
                hi = m
            d += 1
        return DeletionStep(key, proof, chain=tuple(chain))
    return DeletionStep(key, proof)  # the only key: the tree becomes empty


def root_after_deletion(root: bytes, step: DeletionStep) -> bytes:
    """Verifier: the root after deleting ``step.key`` from the tree with ``root``; ProofError if the step
    does not hold."""
    key, p = step.key, step.proof
    if p.kind != MEMBER or not verify_proof(root, key, p):
        raise ProofError(f"key {key.hex()[:16]}... is not in the tree it is deleted from",
                         expected="member", found=p.kind_name)
    state, h = "empty", Z
    for j in range(p.depth - 1, -1, -1):
        s = p.siblings[j]
        if state == "empty":
            if s == Z:
                continue
            if step.leaf_key is not None:
                if leaf_node(step.leaf_key) != s:
                    raise ProofError("deletion witness: the sibling is not that key's leaf", expected=s.hex(),
                                     found=leaf_node(step.leaf_key).hex())
                h, state = s, "single"
            else:
                if not step.chain:
                    raise ProofError("deletion witness missing for a non-empty sibling")
                want = s
                for i, (a, b) in enumerate(step.chain):
                    if node(a, b) != want or (a == Z and b == Z):
                        raise ProofError("deletion witness chain does not hash to the sibling", expected=want.hex(),
                                         found=node(a, b).hex())
                    if a != Z and b != Z:
                        if i != len(step.chain) - 1:
                            raise ProofError("deletion witness chain goes on past a two-sided node")
                        break
                    want = b if a == Z else a
                else:
                    raise ProofError("deletion witness chain ends on a one-sided node")
                h = node(s, Z) if bit(key, j) else node(Z, s)
                state = "multi"
            continue
        if state == "single" and s == Z:
            continue
        h = node(s, h) if bit(key, j) else node(h, s)
        state = "multi"
    return h


def delete_all(root: bytes, steps: Sequence[DeletionStep]) -> bytes:
    """Apply deletion steps in order; the keys must be distinct."""
    seen: set[bytes] = set()
    for st in steps:
        if st.key in seen:
            raise ProofError(f"key {st.key.hex()[:16]}... deleted twice")
        seen.add(st.key)
        root = root_after_deletion(root, st)
    return root
