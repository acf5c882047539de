"""Proofs of storage for erasure-coded shards.

A shard is cut into fixed ``SEGMENT``-byte segments (the last may be short). Its commitment is
the RFC 6962 Merkle root over the segments (``core.merkle`` hashing: leaf = SHA-256(0x00||seg)),
recorded in the ledger with the shard's length. A challenger picks random segment indices from a
fresh seed; the node must answer each with the segment bytes and an inclusion proof. A node that
dropped or altered any part of a shard fails a challenge on that part with probability equal to
the fraction it lost per challenged index.

Pure: hashing only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ailedger.errors import BadInputError, ProofError
from ailedger.tlog import merkle

__all__ = [
    "SEGMENT",
    "ShardHasher",
    "challenge_indices",
    "inclusion_proof",
    "segment_count",
    "verify_segment",
]

SEGMENT = 16384
_LEAF = hashlib.sha256(b"\x00")  # RFC 6962 leaf prefix, copied per segment (no byte copies)


def segment_count(size: int, segment: int = SEGMENT) -> int:
    return max(1, -(-size // segment))


class ShardHasher:
    """Incremental SHA-256 and segment Merkle tree over a shard's bytes."""

    def __init__(self, segment: int = SEGMENT) -> None:
        self.segment = segment
        self._sha = hashlib.sha256()
        self._pending = bytearray()
        self.leaf_hashes: list[bytes] = []
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._sha.update(data)
        self.size += len(data)
        mv = memoryview(data)
        seg = self.segment
        if self._pending:
            need = seg - len(self._pending)
            self._pending += mv[:need]
            mv = mv[need:]
            if len(self._pending) < seg:
                return
            self.leaf_hashes.append(merkle.leaf_hash(bytes(self._pending)))
            self._pending = bytearray()
        n = len(mv) - len(mv) % seg
        append = self.leaf_hashes.append
        for i in range(0, n, seg):
            h = _LEAF.copy()
            h.update(mv[i : i + seg])
            append(h.digest())
        if n < len(mv):
            self._pending += mv[n:]

    def finish(self) -> tuple[bytes, bytes]:
        """Returns (sha256 of the shard, Merkle root of its segments)."""
        if self._pending or not self.leaf_hashes:
            self.leaf_hashes.append(merkle.leaf_hash(bytes(self._pending)))
            self._pending = bytearray()
        return self._sha.digest(), merkle.root_from_leaf_hashes(self.leaf_hashes)


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """RFC 6962 audit path for segment ``index``, computed from all the segment leaf hashes."""
    plan = merkle.inclusion_plan(index, len(leaf_hashes))

    def subtree(nid: merkle.NodeId) -> bytes:
        level, i = nid
        lo = i << level
        return merkle.root_from_leaf_hashes(leaf_hashes[lo : lo + (1 << level)])

    return merkle.rehash_plan(plan, subtree)


def verify_segment(root: bytes, shard_size: int, index: int, segment_bytes: bytes, proof: Sequence[bytes],
                   segment: int = SEGMENT) -> None:
    """Raise :class:`ProofError` unless ``segment_bytes`` is segment ``index`` of the shard committed
    to by ``root`` (``shard_size`` bytes long)."""
    count = segment_count(shard_size, segment)
    if not 0 <= index < count:
        raise ProofError(f"segment index {index} outside shard of {count} segments", expected=f"< {count}",
                         found=index)
    want_len = min(segment, shard_size - index * segment) if shard_size else 0
    if len(segment_bytes) != want_len:
        raise ProofError(f"segment {index} has {len(segment_bytes)} bytes", expected=want_len,
                         found=len(segment_bytes))
    merkle.verify_inclusion(index, count, merkle.leaf_hash(segment_bytes), proof, root)


def challenge_indices(seed: bytes, count: int, segments: int) -> list[int]:
    """Derive ``count`` segment indices from a challenger's random ``seed`` (so a challenge can be
    replayed and checked by anyone who sees the seed)."""
    if segments <= 0:
        raise BadInputError("shard has no segments", field="segments")
    out = []
    for j in range(count):
        h = hashlib.sha256(b"ailedger/storage-challenge/v1" + seed + j.to_bytes(4, "big")).digest()
        out.append(int.from_bytes(h[:8], "big") % segments)
    return out
