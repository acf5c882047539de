"""Inference audit trails: salted commitments on the ledger, encrypted payloads off it."""

from ailedger.inference.erasure import erase_subject
from ailedger.inference.payloads import ErasedError, PayloadStore
from ailedger.inference.receipts import (
    disclose,
    receipt_proof,
    verify_disclosure,
    verify_receipt_proof,
)
from ailedger.inference.report import list_records, render_html
from ailedger.inference.sdk import (
    InferenceTrail,
    ModelRevokedError,
    Receipt,
    is_model_revoked,
    resolve_model,
)

__all__ = [
    "ErasedError",
    "InferenceTrail",
    "ModelRevokedError",
    "PayloadStore",
    "Receipt",
    "disclose",
    "erase_subject",
    "is_model_revoked",
    "list_records",
    "receipt_proof",
    "render_html",
    "resolve_model",
    "verify_disclosure",
    "verify_receipt_proof",
]
