"""Screening of labelled training data before it is committed to the ledger.

"You can verify the hash of poisoned data perfectly": a dataset commitment proves *which* records were
used, not that they are sound.  This package looks for label errors (confident learning), exact and near
duplicates, outliers, class balance by source, backdoor signs, and gives a verdict per source, so a bad
source can be cut out with a provable change of root.  See docs/screening.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger._lazy import lazy_dir, lazy_getattr

# Only the policy and the report's bytes are imported here (no numpy, no ledger).  The rest on first use of one
# of its names: the engine (numpy, scikit-learn, cleanlab) and the data loaders (numpy), so `dataset
# verify-screening` and `dataset verify-removal` run in the kernel install; the ledger records and proofs
# (``ledger_log``, ``removal``: they load ``ailedger.provenance``), so `dataset screen` without --log does not
# load the provenance package.
from .policy import POLICIES, Decision, ScreeningRefused, decide
from .report import SCHEMA, render_html, report_bytes, report_sha256

if TYPE_CHECKING:
    from .engine import check_screenable, screen, screen_path
    from .ledger_log import (
        SCREENING_PROOF,
        SCREENING_RECORD,
        log_screening,
        screening_body,
        screening_proof,
        store_report,
        verify_screening_proof,
    )
    from .loaders import Dataset, load_dataset
    from .removal import REMOVAL_PROOF, REMOVAL_RECORD, remove_paths, remove_sources, verify_removal_proof

# name -> the module of this package that defines it, imported when the name is first asked for
_LAZY = {"check_screenable": ".engine", "screen": ".engine", "screen_path": ".engine", "Dataset": ".loaders",
         "load_dataset": ".loaders",
         **dict.fromkeys(("SCREENING_PROOF", "SCREENING_RECORD", "log_screening", "screening_body", "screening_proof",
                          "store_report", "verify_screening_proof"), ".ledger_log"),
         **dict.fromkeys(("REMOVAL_PROOF", "REMOVAL_RECORD", "remove_paths", "remove_sources",
                          "verify_removal_proof"), ".removal")}

__getattr__ = lazy_getattr(__name__, _LAZY, globals())
__dir__ = lazy_dir(globals(), _LAZY)


__all__ = [
    "POLICIES",
    "REMOVAL_PROOF",
    "REMOVAL_RECORD",
    "SCHEMA",
    "SCREENING_PROOF",
    "SCREENING_RECORD",
    "Dataset",
    "Decision",
    "ScreeningRefused",
    "check_screenable",
    "decide",
    "load_dataset",
    "log_screening",
    "remove_paths",
    "remove_sources",
    "render_html",
    "report_bytes",
    "report_sha256",
    "screen",
    "screen_path",
    "screening_body",
    "screening_proof",
    "store_report",
    "verify_removal_proof",
    "verify_screening_proof",
]
