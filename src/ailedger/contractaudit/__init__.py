"""AI-assisted smart-contract auditing: Slither (through the npm solc shim) plus a learned layer over its IR
features, findings in DASP categories, SARIF 2.1.0, and signed, replayable ``contract.audit`` entries
(docs/contract-audit.md)."""

from __future__ import annotations

__all__ = ["AUDIT_TYPE", "audit_source", "evaluate_corpus", "log_audit", "replay_audit", "to_sarif"]

from .audit import audit_source
from .evaluate import evaluate_corpus
from .sarif import to_sarif
from .service import AUDIT_TYPE, log_audit, replay_audit
