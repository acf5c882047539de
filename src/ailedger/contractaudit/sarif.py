"""SARIF 2.1.0 (OASIS Static Analysis Results Interchange Format, Errata 01) for one audit report.

One run per report, tool driver ``ailedger-audit-contract``; every rule (a Slither detector or a learned
category) is a ``reportingDescriptor`` in ``tool.driver.rules`` and each result points at it by ``ruleId``
and ``ruleIndex`` (spec 3.27.5, 3.27.6); locations are ``physicalLocation`` with a relative
``artifactLocation.uri`` and a 1-based ``region`` (3.30); the audited file is an ``artifact`` with its
SHA-256 (3.24.11).  The DASP category and confidence go in property bags (3.8).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from .dasp import TITLES

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "to_sarif"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {"High": "error", "Medium": "warning", "Low": "note", "Informational": "note"}


def _level(f: dict[str, Any]) -> str:
    if f["tool"] == "slither":
        return _LEVEL.get(f.get("impact", ""), "warning")
    return "warning" if f.get("confidence", 0) >= 700 else "note"


def to_sarif(report: dict[str, Any], version: str = "") -> dict[str, Any]:
    uri = quote(report["file"])
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    for f in report["findings"]:
        rid = f["rule"]
        if rid not in index:
            index[rid] = len(rules)
            rules.append({"id": rid, "name": rid.replace("-", " "),
                          "shortDescription": {"text": f"{TITLES[f['category']]}: {rid}"},
                          "properties": {"dasp": f["category"], "tool": f["tool"]}})
        region: dict[str, Any] = {"startLine": f["line"]}
        if f.get("end_line", f["line"]) >= f["line"]:
            region["endLine"] = f.get("end_line", f["line"])
        results.append({
            "ruleId": rid, "ruleIndex": index[rid], "level": _level(f),
            "message": {"text": f["explanation"]},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": uri, "index": 0}, "region": region}}],
            "rank": round(f.get("confidence", 0) / 10, 1),
            "properties": {"dasp": f["category"], "confidence": f.get("confidence", 0), "tool": f["tool"]},
        })
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [{
            "tool": {"driver": {"name": "ailedger-audit-contract", "version": version or "0",
                                "informationUri": "https://github.com/crytic/slither",
                                "rules": rules,
                                "properties": {"tools": report["tools"], "compiler": report["compiler"],
                                               "model_root": report["model_root"]}}},
            "artifacts": [{"location": {"uri": uri}, "hashes": {"sha-256": report["source_sha256"]}}],
            "results": results,
            "properties": {"findings_sha256": report["findings_sha256"]},
        }],
    }
