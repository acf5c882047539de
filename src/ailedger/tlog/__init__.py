"""The kernel: the transparency log a verifier needs alone.

Merkle trees (RFC 6962), signed notes and checkpoints (C2SP), proof bundles, tiles, the log and its
stores, the Ledger (a directory: config, log key, store, identities), ingest, offline verification,
mirrors and witnesses.  It imports nothing above it: the questions it asks of the capabilities are
protocols here (admission: who may sign what; proofkinds: proof files it does not know) that the
package answers (ailedger/_registry.py).

The names below are this folder's public interface; they load on first use, so importing a module of
the folder does not load the rest.  Other modules keep their names but are not promised to stay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_getattr

if TYPE_CHECKING:
    from ailedger.tlog.admission import AdmissionPolicy
    from ailedger.tlog.checkpoint import Checkpoint, open_checkpoint
    from ailedger.tlog.identities import Identity, KeyStore
    from ailedger.tlog.ledger import Ledger
    from ailedger.tlog.log import AppendResult, AuditReport, TransparencyLog
    from ailedger.tlog.note import Signer, Verifier, parse_vkey, sign_note, verify_note
    from ailedger.tlog.proofbundle import ProofBundle, parse_proof_bundle, verify_proof_bundle
    from ailedger.tlog.proofkinds import ProofKind
    from ailedger.tlog.verify import verify_file, verify_tlog_proof

_LAZY = {
    "Ledger": "ailedger.tlog.ledger",
    "Identity": "ailedger.tlog.identities",
    "KeyStore": "ailedger.tlog.identities",
    "AppendResult": "ailedger.tlog.log",
    "AuditReport": "ailedger.tlog.log",
    "TransparencyLog": "ailedger.tlog.log",
    "Signer": "ailedger.tlog.note",
    "Verifier": "ailedger.tlog.note",
    "parse_vkey": "ailedger.tlog.note",
    "sign_note": "ailedger.tlog.note",
    "verify_note": "ailedger.tlog.note",
    "Checkpoint": "ailedger.tlog.checkpoint",
    "open_checkpoint": "ailedger.tlog.checkpoint",
    "ProofBundle": "ailedger.tlog.proofbundle",
    "parse_proof_bundle": "ailedger.tlog.proofbundle",
    "verify_proof_bundle": "ailedger.tlog.proofbundle",
    "verify_file": "ailedger.tlog.verify",
    "verify_tlog_proof": "ailedger.tlog.verify",
    "AdmissionPolicy": "ailedger.tlog.admission",
    "ProofKind": "ailedger.tlog.proofkinds",
}

__all__ = [
    "AdmissionPolicy", "AppendResult", "AuditReport", "Checkpoint", "Identity", "KeyStore",
    "Ledger", "ProofBundle", "ProofKind", "Signer", "TransparencyLog", "Verifier",
    "open_checkpoint", "parse_proof_bundle", "parse_vkey", "sign_note", "verify_file",
    "verify_note", "verify_proof_bundle", "verify_tlog_proof",
]


__getattr__ = lazy_getattr(__name__, _LAZY, globals())
