"""RFC 6962 / RFC 9162 Merkle trees: hashing, proof planning and verification.

Proofs follow the plan -> fetch -> rehash split of the design handbook:

* ``inclusion_plan`` / ``consistency_plan`` say which *complete subtree* nodes a
  proof needs, as a list of ranges, each range a list of node ids;
* a store (or an in-memory list) supplies the hashes of those node ids;
* ``rehash_plan`` folds them into the proof hashes.

A node id ``(level, index)`` names the complete subtree of ``2**level`` leaves
starting at leaf ``index * 2**level``.  Stores keep only such nodes, which are
immutable once the tree has grown past them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from ailedger.encoding.fasthash import extend_levels as _extend_levels
from ailedger.encoding.fasthash import extend_range as _extend_range
from ailedger.errors import BadInputError, ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "NodeId",
    "ProofPlan",
    "consistency_plan",
    "inclusion_plan",
    "leaf_hash",
    "node_hash",
    "rehash_plan",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "subtree_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()
_sha256 = hashlib.sha256

NodeId = tuple[int, int]


def leaf_hash(data: bytes) -> bytes:
    """RFC 6962 leaf hash: SHA-256(0x00 || data)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 6962 interior node hash: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Tree head of a whole list of leaf hashes (the empty tree hashes to SHA-256 of nothing)."""
    if not hashes:
        return EMPTY_ROOT
    cr = CompactRange()
    cr.extend(hashes)
    return cr.root()


def _split(n: int) -> int:
    """Largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_nodes(begin: int, end: int) -> list[NodeId]:
    """Decompose the leaf range [begin, end) into maximal aligned complete subtrees, left to right."""
    out: list[NodeId] = []
    while begin < end:
        size = begin & -begin if begin else 1 << (end.bit_length())
        while size > end - begin:
            size >>= 1
        level = size.bit_length() - 1
        out.append((level, begin >> level))
        begin += size
    return out


@dataclass(frozen=True)
class ProofPlan:
    """Which node ranges a proof needs. Each entry of ``ranges`` is the list of complete
    subtrees whose right-to-left fold gives one proof hash."""

    ranges: tuple[tuple[NodeId, ...], ...]
    node_ids: tuple[NodeId, ...] = field(default=())

    @staticmethod
    def of(ranges: list[tuple[int, int]]) -> ProofPlan:
        rs = tuple(tuple(subtree_nodes(a, b)) for a, b in ranges)
        seen: dict[NodeId, None] = {}
        for r in rs:
            for n in r:
                seen[n] = None
        return ProofPlan(rs, tuple(seen))


def _check_index(index: int, size: int) -> None:
    if size < 0 or index < 0:
        raise BadInputError("index and tree size must not be negative", index=index, size=size)
    if index >= size:
        raise BadInputError(f"index {index} is beyond tree size {size}", index=index, size=size)


def inclusion_plan(index: int, size: int) -> ProofPlan:
    """Plan the RFC 6962 audit path for leaf ``index`` in a tree of ``size`` leaves."""
    _check_index(index, size)
    ranges: list[tuple[int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = _split(hi - lo)
        if index - lo < k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            lo = lo + k
    ranges.reverse()  # leaf's sibling first
    return ProofPlan.of(ranges)


def consistency_plan(old_size: int, new_size: int) -> ProofPlan:
    """Plan the RFC 6962 consistency proof between tree sizes ``old_size`` <= ``new_size``."""
    if old_size < 0 or new_size < old_size:
        raise BadInputError(
            f"consistency needs 0 <= old size <= new size, got {old_size} and {new_size}",
            old_size=old_size,
            new_size=new_size,
        )
    ranges: list[tuple[int, int]] = []
    if old_size == 0 or old_size == new_size:
        return ProofPlan.of(ranges)
    m = old_size
    lo, hi = 0, new_size
    complete = True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                ranges.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            ranges.append((lo + k, hi))
            hi = lo + k
        else:
            ranges.append((lo, lo + k))
            m -= k
            lo = lo + k
            complete = False
    ranges.reverse()
    return ProofPlan.of(ranges)


def rehash_plan(plan: ProofPlan, hashes: dict[NodeId, bytes] | Callable[[NodeId], bytes]) -> list[bytes]:
    """Fold the fetched node hashes of a plan into the proof's hashes."""
    get = hashes.__getitem__ if isinstance(hashes, dict) else hashes
    proof: list[bytes] = []
    for r in plan.ranges:
        h = get(r[-1])
        for nid in reversed(r[:-1]):
            h = node_hash(get(nid), h)
        proof.append(h)
    return proof


def _check_hash(h: bytes, what: str) -> None:
    if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
        raise ProofError(f"{what} is not a 32-byte hash", found=len(h) if isinstance(h, (bytes, bytearray)) else None)


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2: the root implied by an inclusion proof (raises on a malformed proof)."""
    if index < 0 or size < 0:
        raise ProofError("negative index or tree size", found=(index, size))
    if index >= size:
        raise ProofError(f"index {index} is beyond tree size {size}", expected=f"< {size}", found=index)
    _check_hash(leaf, "leaf hash")
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        _check_hash(p, "proof hash")
        if sn == 0:
            raise ProofError("inclusion proof is too long", found=len(proof))
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short", found=len(proof))
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows leaf hash ``leaf`` at ``index`` under ``root``."""
    _check_hash(root, "root")
    calc = root_from_inclusion_proof(index, size, leaf, proof)
    if calc != root:
        raise ProofError(
            f"inclusion proof for index {index} at size {size} leads to a different root",
            expected=root.hex(),
            found=calc.hex(),
        )


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """RFC 9162 section 2.1.4.2; raises :class:`ProofError` unless the proof holds."""
    if old_size < 0 or new_size < 0:
        raise ProofError("negative tree size", found=(old_size, new_size))
    if new_size < old_size:
        raise ProofError(f"new size {new_size} is smaller than old size {old_size}", found=(old_size, new_size))
    if old_size == 0:
        raise ProofError("a consistency proof from the empty tree proves nothing", found=(old_size, new_size))
    if old_size == new_size:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty", found=len(proof))
        if old_root != new_root:
            raise ProofError(
                "equal tree sizes with different roots", expected=bytes(old_root).hex(), found=bytes(new_root).hex()
            )
        return
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    for p in proof:
        _check_hash(p, "proof hash")
    if not proof:
        raise ProofError("consistency proof is empty", expected="at least one hash", found=0)
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # old size is a power of two: old root is the first node
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long", found=len(proof))
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short", found=len(proof))
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root", expected=old_root.hex(), found=fr.hex())
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root", expected=new_root.hex(), found=sr.hex())


class CompactRange:
    """The right border of a growing tree: one hash per set bit of the size.

    ``append`` returns the complete-subtree nodes that the new leaf completes, so
    the log can store every complete node exactly once as it integrates leaves.
    """

    __slots__ = ("hashes", "size")

    def __init__(self, size: int = 0, hashes: Iterable[bytes] = ()) -> None:
        self.size = size
        self.hashes: list[bytes] = list(hashes)
        if len(self.hashes) != size.bit_count():
            raise BadInputError(
                "compact range needs one hash per set bit of the size",
                expected=size.bit_count(),
                found=len(self.hashes),
            )

    @staticmethod
    def border_nodes(size: int) -> list[NodeId]:
        """Node ids of the compact range of a tree of ``size`` leaves, left to right."""
        return subtree_nodes(0, size)

    def append(self, h: bytes, new_nodes: list[tuple[int, int, bytes]] | None = None) -> None:
        index = self.size
        if new_nodes is not None:
            new_nodes.append((0, index, h))
        level = 0
        hashes = self.hashes
        while (index >> level) & 1:
            h = node_hash(hashes.pop(), h)
            level += 1
            if new_nodes is not None:
                new_nodes.append((level, index >> level, h))
        hashes.append(h)
        self.size = index + 1

    def extend(self, hs: Iterable[bytes], new_nodes: list[tuple[int, int, bytes]] | None = None) -> None:
        for h in hs:
            self.append(h, new_nodes)

    def extend_keyed(self, hs: Sequence[bytes]) -> list[tuple[int, bytes]]:
        """Append leaf hashes; returns the interior nodes (level >= 1) they complete as
        ``(level << 56 | index, hash)`` pairs, the stores' node key (one C call when built)."""
        if _extend_range is not None:
            self.hashes, keyed = _extend_range(self.size, self.hashes, hs)
            self.size += len(hs)
            return keyed
        nodes: list[tuple[int, int, bytes]] = []
        for h in hs:
            self.append(h, nodes)
        return [((lv << 56) | ix, h) for lv, ix, h in nodes if lv > 0]

    def extend_levels(self, hs: Sequence[bytes]) -> list[tuple[int, int, bytes]]:
        """Append leaf hashes; returns the interior nodes they complete per level, as ``(level, first index,
        their hashes concatenated in index order)`` for each level >= 1 that gains one, lowest level first
        (an append completes consecutive nodes at each level). One C call when built, no object per node."""
        if _extend_levels is not None:
            self.hashes, levels = _extend_levels(self.size, self.hashes, hs)
            self.size += len(hs)
            return levels
        at: dict[int, list[tuple[int, bytes]]] = {}
        for key, h in self.extend_keyed(hs):
            at.setdefault(key >> 56, []).append((key & ((1 << 56) - 1), h))
        return [(lv, min(at[lv])[0], b"".join(h for _, h in sorted(at[lv]))) for lv in sorted(at)]

    def root(self) -> bytes:
        if not self.hashes:
            return EMPTY_ROOT
        it = reversed(self.hashes)
        r = next(it)
        for h in it:
            r = node_hash(h, r)
        return r

    def copy(self) -> CompactRange:
        return CompactRange(self.size, self.hashes)
