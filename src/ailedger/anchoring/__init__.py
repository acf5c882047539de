"""Anchoring checkpoints on an EVM chain and checking that a checkpoint is anchored (the ``anchor``
check of ``ailedger verify --rpc``).

The names below are this folder's public interface; they load on first use, so importing a module of
the folder does not load the rest.  Other modules keep their names but are not promised to stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.anchoring.service import (
        AnchorService,
        check_anchored,
        embed_evidence,
        evidence_from_bundle,
        require_anchored,
    )

_LAZY = {
    "AnchorService": "ailedger.anchoring.service",
    "check_anchored": "ailedger.anchoring.service",
    "embed_evidence": "ailedger.anchoring.service",
    "evidence_from_bundle": "ailedger.anchoring.service",
    "require_anchored": "ailedger.anchoring.service",
}

__all__ = [
    "AnchorService", "check_anchored", "embed_evidence", "evidence_from_bundle", "require_anchored",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
