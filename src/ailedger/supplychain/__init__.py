"""Supply chains: GS1 EPCIS 2.0 events on the ledger, identified by their CBV event hash; traces and recall
reports with inclusion proofs (docs/supply-chain.md)."""

from __future__ import annotations

__all__ = ["EVENT_RECORD", "capture", "event_hash", "prehash", "recall", "trace", "validate_document",
           "verify_logged"]

from .eventhash import event_hash, prehash
from .events import validate_document
from .service import EVENT_RECORD, capture, recall, trace, verify_logged
