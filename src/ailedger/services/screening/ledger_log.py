"""Log a screening report beside a dataset commitment ("dataset.screening" records).

The JSON report is stored as RFC 8785 canonical bytes under ``<ledger>/screening/<sha256>.json`` and its
HTML rendering beside it; the ledger record carries the report's SHA-256 and the per-source verdicts,
so anyone holding the report can check it is the one that was logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .engine import SCHEMA
from .report import render_html, report_bytes, report_sha256

SCREENING_RECORD = "dataset.screening"


def store_report(ledger: Any, report: dict[str, Any], html: str | None = None) -> tuple[str, Path, Path]:
    sha = report_sha256(report)
    d = Path(ledger.path) / "screening"
    d.mkdir(parents=True, exist_ok=True)
    jp = d / f"{sha}.json"
    jp.write_bytes(report_bytes(report))
    hp = d / f"{sha}.html"
    hp.write_text(html if html is not None else render_html(report), encoding="utf-8")
    return sha, jp, hp


def screening_body(report: dict[str, Any], *, dataset: str, decision: Any | None = None,
                   dataset_index: int | None = None, dataset_root: str | None = None) -> dict[str, Any]:
    """The record body: integers and strings only (no floats in signed records)."""
    sm = report["summary"]
    body: dict[str, Any] = {
        "dataset": dataset,
        "data_sha256": report["dataset"]["sha256"],
        "report_sha256": report_sha256(report),
        "report_schema": SCHEMA,
        "verdict": report["verdict"],
        "records": int(report["dataset"]["records"]),
        "flagged": int(sm["flagged"]),
        "flagged_by_reason": {k: int(v) for k, v in sorted(sm["by_reason"].items())},
        "backdoor_suspected_classes": [str(c) for c in sm["backdoor_suspected_classes"]],
        "sources": [{"source": s["source"], "records": int(s["records"]), "flagged": int(s["flagged"]),
                     "label_flagged": int(s["label_flagged"]), "verdict": s["verdict"]}
                    for s in report["sources"]],
    }
    if report["dataset"].get("source_column"):
        body["source_column"] = report["dataset"]["source_column"]
    if decision is not None:
        body["policy"] = decision.policy
        body["decision"] = decision.action
    if dataset_index is not None:
        body["dataset_index"] = int(dataset_index)
    if dataset_root is not None:
        body["dataset_root"] = dataset_root
    return body


def log_screening(ledger: Any, identity: Any, report: dict[str, Any], *, dataset: str, decision: Any | None = None,
                  dataset_index: int | None = None, dataset_root: str | None = None) -> dict[str, Any]:
    sha, jp, hp = store_report(ledger, report)
    body = screening_body(report, dataset=dataset, decision=decision, dataset_index=dataset_index,
                          dataset_root=dataset_root)
    terms = [f"dataset:{dataset}", f"sha256:{sha}", f"screening:{report['verdict']}"]
    if dataset_root:
        terms.append(f"dataset-root:{dataset_root}")
    res = ledger.append_record(SCREENING_RECORD, body, identity, terms=terms)
    return {"index": res.index, "report_sha256": sha, "report_json": str(jp), "report_html": str(hp),
            "body": body}
