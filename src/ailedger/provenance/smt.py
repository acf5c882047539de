"""A sparse Merkle tree over 256-bit keys, with short membership and absence proofs.

The tree has depth 256; key ``k`` sits on the path spelled by its bits (most significant first).
Hashing (``Z`` is 32 zero bytes, the hash of every empty subtree):

* a subtree holding exactly one key ``k`` hashes to ``leaf(k) = SHA-256(0x00 || k)`` wherever it
  stands (the lone leaf is lifted to the top of its otherwise empty subtree);
* an interior node hashes to ``SHA-256(0x01 || left || right)``, except ``node(Z, Z) = Z``.

Proof for key ``k``: walk ``k``'s path from the root until the subtree holds at most one key; it
ends at depth ``d`` in one of three terminals: ``member`` (the lone key is ``k``), ``other`` (the
lone key is ``k' != k`` sharing ``k``'s first ``d`` bits) or ``empty``.  The proof gives ``d``, a
bitmap of which of the ``d`` siblings are non-empty, and only those siblings.

Soundness against a dishonest builder: for one root, two proofs for the same key follow the same
path, so at the shallower terminal depth one proof claims a leaf or ``Z`` where the other claims
an interior node, or two different leaves: either is a SHA-256 collision (the 0x00/0x01 prefixes
separate leaves from nodes and ``Z`` has no known preimage).  Absence can therefore not be faked.

Binary proof encoding (``encode_proof``): ``0x01`` version, kind (0 member, 1 empty, 2 other),
depth (u16 big-endian), bitmap (ceil(depth/8) bytes, bit i = sibling at depth i present, MSB
first), the present siblings (32 bytes each, root side first), then ``k'`` for kind 2.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ailedger.errors import BadInputError, ProofError

__all__ = [
    "EMPTY",
    "KEY_SIZE",
    "MEMBER",
    "OTHER",
    "SmtProof",
    "Z",
    "bit",
    "decode_proof",
    "encode_proof",
    "leaf_node",
    "node",
    "parent_level",
    "prove_in_sorted",
    "prove_with_levels",
    "subtree_root",
    "verify_proof",
]

KEY_SIZE = 32
Z = bytes(32)
MEMBER, EMPTY, OTHER = 0, 1, 2
_KIND_NAMES = {MEMBER: "member", EMPTY: "empty", OTHER: "other"}
_sha256 = hashlib.sha256


def leaf_node(key: bytes) -> bytes:
    return _sha256(b"\x00" + key).digest()


def node(left: bytes, right: bytes) -> bytes:
    if left == Z and right == Z:
        return Z
    return _sha256(b"\x01" + left + right).digest()


def bit(key: bytes, depth: int) -> int:
    return (key[depth >> 3] >> (7 - (depth & 7))) & 1


def _split(keys: Sequence[bytes], lo: int, hi: int, depth: int) -> int:
    """First index in sorted keys[lo:hi] whose bit ``depth`` is 1 (all share the first depth bits)."""
    # keys with bit(depth) = 0 sort before those with 1, as they share the prefix
    a, b = lo, hi
    while a < b:
        m = (a + b) >> 1
        if bit(keys[m], depth):
            b = m
        else:
            a = m + 1
    return a


def subtree_root(keys: Sequence[bytes], depth: int = 0, lo: int = 0, hi: int | None = None) -> bytes:
    """Hash of the subtree at ``depth`` holding the sorted, distinct ``keys[lo:hi]`` (which share
    their first ``depth`` bits)."""
    if hi is None:
        hi = len(keys)
    n = hi - lo
    if n == 0:
        return Z
    if n == 1:
        return leaf_node(keys[lo])
    if depth >= 256:
        raise BadInputError("duplicate keys in sparse Merkle tree", field="keys")
    m = _split(keys, lo, hi, depth)
    if m == lo or m == hi:
        # a chain of one-sided nodes until the keys diverge
        d = depth
        while True:
            d += 1
            if d >= 256:
                raise BadInputError("duplicate keys in sparse Merkle tree", field="keys")
            m = _split(keys, lo, hi, d)
            if lo < m < hi:
                break
        h = node(subtree_root(keys, d + 1, lo, m), subtree_root(keys, d + 1, m, hi))
        for dd in range(d - 1, depth - 1, -1):
            h = node(Z, h) if bit(keys[lo], dd) else node(h, Z)
        return h
    return node(subtree_root(keys, depth + 1, lo, m), subtree_root(keys, depth + 1, m, hi))


def parent_level(level: bytes, counts: bytes) -> tuple[bytes, bytes]:
    """Combine a level of 2^L node hashes (concatenated) into the 2^(L-1) parents.

    ``counts`` holds, per node, min(number of keys below, 2): a parent over exactly one key is that
    key's lifted leaf (the child's hash itself), not an interior node."""
    out = bytearray()
    cout = bytearray()
    for i in range(0, len(counts), 2):
        cl, cr = counts[i], counts[i + 1]
        c = cl + cr
        if c == 0:
            out += Z
        elif c == 1:
            out += level[32 * i:32 * i + 32] if cl else level[32 * i + 32:32 * i + 64]
        else:
            out += _sha256(b"\x01" + level[32 * i:32 * i + 64]).digest()
        cout.append(min(c, 2))
    return bytes(out), bytes(cout)


@dataclass(frozen=True)
class SmtProof:
    kind: int
    depth: int
    siblings: tuple[bytes, ...]  # all `depth` siblings, root side first (Z where empty)
    other_key: bytes | None = None

    @property
    def kind_name(self) -> str:
        return _KIND_NAMES[self.kind]

    @property
    def proves_membership(self) -> bool:
        return self.kind == MEMBER


def prove_in_sorted(keys: Sequence[bytes], key: bytes, depth: int = 0, lo: int = 0,
                    hi: int | None = None) -> tuple[list[bytes], int, int, bytes | None]:
    """Walk ``key``'s path inside the subtree at ``depth`` holding sorted keys[lo:hi].
    Returns (siblings from ``depth`` down, terminal depth, kind, other key)."""
    if hi is None:
        hi = len(keys)
    sibs: list[bytes] = []
    d = depth
    while True:
        n = hi - lo
        if n == 0:
            return sibs, d, EMPTY, None
        if n == 1:
            if keys[lo] == key:
                return sibs, d, MEMBER, None
            return sibs, d, OTHER, keys[lo]
        m = _split(keys, lo, hi, d)
        if bit(key, d):
            sibs.append(subtree_root(keys, d + 1, lo, m))
            lo = m
        else:
            sibs.append(subtree_root(keys, d + 1, m, hi))
            hi = m
        d += 1


def prove_with_levels(key: bytes, top_depth: int, node_at: Callable[[int, int], bytes],
                      keys: Sequence[bytes], *, start: tuple[int, int, int, list[bytes]] | None = None) -> SmtProof:
    """Proof for ``key`` from the sorted, distinct ``keys`` (any random-access sequence, e.g. a
    memory-mapped file) and stored node hashes for depths 1..``top_depth`` (``node_at(depth,
    prefix)``). Above ``top_depth`` siblings are read, never recomputed; below it they are
    recomputed from the few keys of one bucket.  Cost: O(top_depth * log n) key reads.  ``start``
    = (depth, lo, hi, siblings so far) resumes a walk done elsewhere (the sharded index's top levels)."""
    if len(key) != KEY_SIZE:
        raise BadInputError("key must be 32 bytes", field="key")
    k = int.from_bytes(key, "big")
    lo, hi, d = 0, len(keys), 0
    sibs: list[bytes] = []
    if start is not None:  # the walk already done down to depth d (keys[lo:hi] = the subtree there)
        d, lo, hi, sibs = start[0], start[1], start[2], list(start[3])
    while d < top_depth and hi - lo > 1:
        m = _split(keys, lo, hi, d)
        child = k >> (255 - d)  # prefix of length d+1 on key's path
        sibs.append(node_at(d + 1, child ^ 1))
        if child & 1:
            lo = m
        else:
            hi = m
        d += 1
    sub, d_end, kind, other = prove_in_sorted(keys, key, d, lo, hi)
    return SmtProof(kind, d_end, tuple(sibs + sub), other)


def _terminal_hash(key: bytes, p: SmtProof) -> bytes:
    if p.kind == MEMBER:
        return leaf_node(key)
    if p.kind == EMPTY:
        return Z
    if p.kind == OTHER:
        k2 = p.other_key
        if k2 is None or len(k2) != KEY_SIZE:
            raise ProofError("absence proof names no other key")
        if k2 == key:
            raise ProofError("absence proof's other key is the key itself", found=k2.hex())
        for d in range(p.depth):
            if bit(k2, d) != bit(key, d):
                raise ProofError(f"absence proof's other key leaves the path at depth {d}", found=k2.hex())
        return leaf_node(k2)
    raise ProofError(f"unknown proof kind {p.kind}")


def root_from_proof(key: bytes, p: SmtProof) -> bytes:
    if len(key) != KEY_SIZE:
        raise ProofError("key must be 32 bytes")
    if not 0 <= p.depth <= 256 or len(p.siblings) != p.depth:
        raise ProofError("proof depth does not match its siblings", expected=p.depth, found=len(p.siblings))
    h = _terminal_hash(key, p)
    for d in range(p.depth - 1, -1, -1):
        s = p.siblings[d]
        h = node(s, h) if bit(key, d) else node(h, s)
    return h


def verify_proof(root: bytes, key: bytes, p: SmtProof) -> bool:
    """Raise ProofError unless the proof holds under ``root``; return True for membership, False
    for absence."""
    calc = root_from_proof(key, p)
    if calc != root:
        raise ProofError("sparse Merkle proof leads to a different root", expected=root.hex(), found=calc.hex())
    return p.kind == MEMBER


def encode_proof(p: SmtProof) -> bytes:
    bm = bytearray((p.depth + 7) // 8)
    present = []
    for i, s in enumerate(p.siblings):
        if s != Z:
            bm[i >> 3] |= 0x80 >> (i & 7)
            present.append(s)
    out = bytes([1, p.kind]) + p.depth.to_bytes(2, "big") + bytes(bm) + b"".join(present)
    if p.kind == OTHER:
        assert p.other_key is not None
        out += p.other_key
    return out


def decode_proof(data: bytes) -> SmtProof:
    if len(data) < 4 or data[0] != 1:
        raise ProofError("not a version-1 sparse Merkle proof")
    kind, depth = data[1], int.from_bytes(data[2:4], "big")
    if kind not in _KIND_NAMES or depth > 256:
        raise ProofError("sparse Merkle proof has a bad kind or depth", found=(kind, depth))
    pos = 4 + (depth + 7) // 8
    if len(data) < pos:
        raise ProofError("sparse Merkle proof is truncated")
    bm = data[4:pos]
    sibs = []
    for i in range(depth):
        if bm[i >> 3] & (0x80 >> (i & 7)):
            if len(data) < pos + 32:
                raise ProofError("sparse Merkle proof is truncated")
            s = data[pos:pos + 32]
            if s == Z:
                raise ProofError("sparse Merkle proof spells out an empty sibling")
            sibs.append(s)
            pos += 32
        else:
            sibs.append(Z)
    other = None
    if kind == OTHER:
        other = data[pos:pos + 32]
        pos += 32
        if len(other) != 32:
            raise ProofError("sparse Merkle proof is truncated")
    if pos != len(data):
        raise ProofError("sparse Merkle proof has trailing bytes")
    return SmtProof(kind, depth, tuple(sibs), other)


def sorted_index(keys: Sequence[bytes], key: bytes) -> int:
    return bisect_left(keys, key)
