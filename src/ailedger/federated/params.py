"""What is signed and logged about a model's parameters: one byte string per update, its digest and the
global model's root.

An update is Flower's ``Parameters`` (a list of tensors, each ``numpy.save`` bytes, as
``flwr.common.ndarrays_to_parameters`` writes them).  Its **serialization** is the tensors in order, each
prefixed by its length as 8 bytes big-endian; its **digest** is the SHA-256 of that.  The **model root**
is the RFC 6962 Merkle root (``tlog.merkle``) over one leaf per tensor, the canonical JSON
``{"i", "len", "sha256"}`` of the tensor's bytes: the global model's parameter manifest, so one tensor
can be proven in a model without the others.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError
from ailedger.tlog.merkle import leaf_hash, root_from_leaf_hashes

__all__ = ["deserialize", "digest", "model_root", "serialize"]

_MAX_TENSORS = 4096


def serialize(tensors: Sequence[bytes]) -> bytes:
    out = bytearray()
    for t in tensors:
        out += struct.pack(">Q", len(t))
        out += t
    return bytes(out)


def deserialize(data: bytes, *, what: str = "update") -> list[bytes]:
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        if pos + 8 > len(data) or len(out) >= _MAX_TENSORS:
            raise BadInputError(f"{what}: malformed serialized parameters at byte {pos}", field="update")
        (n,) = struct.unpack(">Q", data[pos:pos + 8])
        pos += 8
        if pos + n > len(data):
            raise BadInputError(f"{what}: tensor {len(out)} runs past the end", field="update")
        out.append(bytes(data[pos:pos + n]))
        pos += n
    return out


def digest(tensors: Sequence[bytes]) -> str:
    return hashlib.sha256(serialize(tensors)).hexdigest()


def model_root(tensors: Sequence[bytes]) -> str:
    if not tensors:
        raise BadInputError("a model needs at least one tensor", field="parameters")
    leaves = [leaf_hash(canonical_json({"i": i, "len": len(t), "sha256": hashlib.sha256(t).hexdigest()}))
              for i, t in enumerate(tensors)]
    return root_from_leaf_hashes(leaves).hex()
