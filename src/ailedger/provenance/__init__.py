"""Artifacts: model and dataset provenance.

Record types: ``model.register`` (a model's Merkle manifest root, its lineage and metadata) and
``dataset.commit`` (a dataset's sparse-Merkle root over its records, with per-source licence and
consent metadata).  See docs/provenance.md.
"""

from ailedger.provenance.datasets import (
    DATASET_PROOF,
    commit_dataset,
    normalise_candidate,
    prove_dataset,
    record_key,
    verify_dataset_proof_file,
)
from ailedger.provenance.hashing import (
    HashCache,
    HashStats,
    hash_files_whole,
    hash_model_dir,
    scan_dir,
)
from ailedger.provenance.lineage import lineage_graph, lineage_png, lineage_svg, lineage_text
from ailedger.provenance.models import (
    DATASET_RECORD,
    MODEL_PART_PROOF,
    MODEL_RECORD,
    cache_for,
    entry_status,
    find_dataset,
    find_model,
    load_manifest,
    prove_model_part,
    register_model,
    verify_model,
    verify_model_part,
)
from ailedger.provenance.oms import oms_sign, oms_verify

__all__ = [
    "DATASET_PROOF",
    "DATASET_RECORD",
    "MODEL_PART_PROOF",
    "MODEL_RECORD",
    "HashCache",
    "HashStats",
    "cache_for",
    "commit_dataset",
    "entry_status",
    "find_dataset",
    "find_model",
    "hash_files_whole",
    "hash_model_dir",
    "lineage_graph",
    "lineage_png",
    "lineage_svg",
    "lineage_text",
    "load_manifest",
    "normalise_candidate",
    "oms_sign",
    "oms_verify",
    "prove_dataset",
    "prove_model_part",
    "record_key",
    "register_model",
    "scan_dir",
    "verify_dataset_proof_file",
    "verify_model",
    "verify_model_part",
]
