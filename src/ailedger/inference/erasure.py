"""Erasure of a data subject's payloads (crypto-shredding) with an ``inference.erasure`` record."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ailedger.errors import BadInputError
from ailedger.inference.codec import ERASURE_TYPE
from ailedger.inference.payloads import PayloadStore, inference_dir
from ailedger.inference.sdk import DEFAULT_OPERATOR, _load_or_create_operator
from ailedger.tlog.private import private_dir, write_private

__all__ = ["erase_subject"]


def erase_subject(ledger: Any, subject: str, *, operator: str = DEFAULT_OPERATOR,
                  passphrase: str | None = None) -> dict[str, Any]:
    """Destroy the subject's key and ciphertexts; log what was erased; return the erasure report.

    The ledger record names the subject only by its keyed reference and lists no receipt ids,
    just their count and a SHA-256 over the sorted ids (the local report lists them)."""
    if not isinstance(subject, str) or not subject:
        raise BadInputError("subject must be a non-empty string", field="subject")
    ident = _load_or_create_operator(ledger, operator, passphrase)
    ps = PayloadStore(ledger.path, durable=True)
    try:
        done = ps.erase(subject)
        digest = hashlib.sha256("\n".join(done["receipts"]).encode()).hexdigest()
        body = {"v": 1, "subject_ref": done["subject_ref"], "records": done["records"],
                "ciphertexts": done["ciphertexts"], "key_destroyed": done["had_key"], "receipts_sha256": digest}
        res = ledger.append_record(ERASURE_TYPE, body, ident, terms=[f"inference-subject:{done['subject_ref']}"])
        e = ledger.entry(res.index)
        ps.note_erasure(done["subject_ref"], e.time, done["records"], res.index)
    finally:
        ps.close()
    report = {"format": "ailedger-inference-erasure-report/v1", "subject_ref": done["subject_ref"],
              "erased_at": e.time, "log_index": res.index, "key_destroyed": done["had_key"],
              "records": done["records"], "ciphertexts": done["ciphertexts"], "receipts": done["receipts"],
              "receipts_sha256": digest,
              "files": ["inference/keys.db", "inference/payloads.db"],
              "note": "records and their proofs stay verifiable; the payloads and salts are unrecoverable"}
    out = private_dir(inference_dir(ledger.path) / "erasures")  # the report lists the subject's receipts
    write_private(out / f"{res.index:012d}.json", json.dumps(report, indent=1) + "\n")
    return report
