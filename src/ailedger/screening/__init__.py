"""Screening of labelled training data before it is committed to the ledger.

"You can verify the hash of poisoned data perfectly": a dataset commitment proves *which* records were
used, not that they are sound.  This package looks for label errors (confident learning), exact and near
duplicates, outliers, class balance by source, backdoor signs, and gives a verdict per source, so a bad
source can be cut out with a provable change of root.  See docs/screening.md.
"""

from __future__ import annotations

from typing import Any

from .engine import SCHEMA, check_screenable, screen
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
from .policy import POLICIES, Decision, ScreeningRefused, decide
from .removal import REMOVAL_PROOF, REMOVAL_RECORD, remove_paths, remove_sources, verify_removal_proof
from .report import render_html, report_bytes, report_sha256


def screen_path(path: str, *, label_column: str | None = None, source_column: str | None = None,
                text_column: str | None = None, image_column: str | None = None, modality: str = "auto",
                seed: int = 0, loo: bool = True, ignore_columns: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load and screen ``path``; raises BadInputError for anything that cannot be screened."""
    ds = load_dataset(path, label_column=label_column, source_column=source_column, text_column=text_column,
                      image_column=image_column, modality=modality, ignore_columns=ignore_columns)
    return screen(ds, seed=seed, loo=loo)


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
