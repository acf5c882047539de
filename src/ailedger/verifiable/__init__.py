"""Verifiable inference: EZKL zero-knowledge proofs bound to registered models, sampling of calls to prove,
on-chain verification, and commit-reveal evaluations (verified AI with delayed publication).  docs/zk.md."""

from ailedger.verifiable.evalreveal import commit, recompute_scores, reveal, verify_eval
from ailedger.verifiable.sampling import detection_probability, sample_audit, selected
from ailedger.verifiable.zk import (
    PROOF_FORMAT,
    find_setup,
    proof_digest,
    prove_call,
    prove_receipt,
    setup_circuit,
    verify_zk,
)

__all__ = [
    "PROOF_FORMAT",
    "commit",
    "detection_probability",
    "find_setup",
    "proof_digest",
    "prove_call",
    "prove_receipt",
    "recompute_scores",
    "reveal",
    "sample_audit",
    "selected",
    "setup_circuit",
    "verify_eval",
    "verify_zk",
]
