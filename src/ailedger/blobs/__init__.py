"""Decentralised blob storage: client-side encryption, erasure coding across storage nodes,
IPFS-compatible content ids, proofs of storage, repair. See docs/storage.md.

The names below are this folder's public interface; they load on first use, so importing a module of
the folder does not load the rest.  Other modules keep their names but are not promised to stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.blobs.artifacts import pull_dataset, pull_model, push_dataset, push_model
    from ailedger.blobs.client import NodeClient
    from ailedger.blobs.service import BlobService, GetResult, PutResult, RepairResult

_LAZY = {
    "BlobService": "ailedger.blobs.service",
    "GetResult": "ailedger.blobs.service",
    "PutResult": "ailedger.blobs.service",
    "RepairResult": "ailedger.blobs.service",
    "NodeClient": "ailedger.blobs.client",
    "pull_dataset": "ailedger.blobs.artifacts",
    "pull_model": "ailedger.blobs.artifacts",
    "push_dataset": "ailedger.blobs.artifacts",
    "push_model": "ailedger.blobs.artifacts",
}

__all__ = [
    "BlobService", "GetResult", "NodeClient", "PutResult", "RepairResult", "pull_dataset",
    "pull_model", "push_dataset", "push_model",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
