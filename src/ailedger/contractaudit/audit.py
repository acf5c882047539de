"""One audit: checks on the source, Slither, the learned layer, and the report whose digest an entry signs."""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import canonical_json
from ailedger.errors import BadInputError

from .analyse import run_slither, tool_versions
from .model import LearnedModel, load_model
from .solc import compile_source

__all__ = ["MAX_SOURCE_BYTES", "REPORT_SCHEMA", "audit_source", "findings_digest", "read_source"]

MAX_SOURCE_BYTES = 256 * 1024
REPORT_SCHEMA = "ailedger-contract-audit/1"
_IMPORT = re.compile(r"^\s*import\s+(?:[^;]*?from\s+)?[\"']([^\"']+)[\"']", re.MULTILINE)


def read_source(path: str | Path, *, max_bytes: int = MAX_SOURCE_BYTES) -> tuple[str, bytes]:
    """The file's text, refusing what cannot be a contract to audit: missing, too big, not UTF-8."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if not p.is_file():
            raise BadInputError(f"{p} is not a file", field="path")
    except FileNotFoundError:
        raise BadInputError(f"{p}: no such file", field="path") from None
    if size > max_bytes:
        raise BadInputError(f"{p} is too big to audit: {size} bytes (the limit is {max_bytes})", field="path")
    raw = p.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInputError(f"{p} is not UTF-8 text (byte {e.start}: 0x{raw[e.start]:02x})", field="path") from None
    if not text.strip():
        raise BadInputError(f"{p} is empty", field="path")
    imp = _IMPORT.search(text)
    if imp:
        raise BadInputError(f"{p} imports {imp.group(1)}: audit one self-contained file (flatten the imports "
                            "first; the audit signs the digest of this file alone)", field="path")
    return text, raw


def findings_digest(findings: list[dict[str, Any]]) -> str:
    return hashlib.sha256(canonical_json(findings)).hexdigest()


def _overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool:
    a0, a1 = a.get("start_line", a["line"]), a.get("end_line", a["line"])
    b0, b1 = b.get("start_line", b["line"]), b.get("end_line", b["line"])
    return a["category"] == b["category"] and a0 <= b1 and b0 <= a1


def combine(slither: list[dict[str, Any]], learned: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Slither's (and ailedger's rules') findings, then the model's detections that none of those findings of the
    same category covers."""
    out = list(slither)
    for f in learned:
        if not any(_overlaps(f, s) for s in slither):
            out.append(f)
    return sorted(out, key=lambda f: (f["line"], f["category"], f["tool"], f["rule"]))


def audit_source(path: str | Path, *, model: LearnedModel | None = None, name: str | None = None) -> dict[str, Any]:
    """Audit one Solidity file.  Raises BadInputError (not UTF-8, too big, unsatisfiable pragma, does not
    compile: the compiler's message) before any analysis; returns the report (integers and strings only)."""
    text, raw = read_source(path)
    filename = name or Path(path).name
    t0 = time.perf_counter()
    compiled = compile_source(text, filename)  # picks the compiler by the pragma; the compiler's own errors
    mdl = model or load_model()
    with tempfile.TemporaryDirectory(prefix="ailedger-audit-") as d:
        p = Path(d) / filename
        p.write_text(text, encoding="utf-8")  # analysed under its own name, away from its neighbours
        run = run_slither([p])
        key = str(p.resolve())
        rows = run.functions[key]
        slither_f = run.findings[key]
        rules_f = run.rules.get(key, [])
        where = re.compile(r"[^\s(]*/" + re.escape(filename) + "#")
        for f in slither_f:  # Slither names the file by its path: keep only the name (same report anywhere)
            f["explanation"] = where.sub(filename + "#", f["explanation"])
    learned = mdl.predict(rows)
    findings = combine(mdl.rank(rows, [*slither_f, *rules_f]), learned)
    for f in findings:
        f.pop("slither_confidence", None)
    cats: dict[str, int] = {}
    for f in findings:
        cats[f["category"]] = cats.get(f["category"], 0) + 1
    return {
        "schema": REPORT_SCHEMA,
        "file": filename,
        "source_sha256": hashlib.sha256(raw).hexdigest(),
        "compiler": f"solc {compiled['compiler']} (npm solc)",
        "tools": tool_versions(),
        "model_root": mdl.root,
        "findings": findings,
        "findings_sha256": findings_digest(findings),
        "by_category": dict(sorted(cats.items())),
        "functions": len(rows),
        "seconds": round(time.perf_counter() - t0, 3),
    }
