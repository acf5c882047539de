"""Audits as signed ``contract.audit`` entries, and their replay.

The entry names what was audited and with what (the source's SHA-256, the compiler, the tool versions,
the model's root) and the SHA-256 of the findings (RFC 8785 canonical bytes of the list).  The source and
the full report are kept beside the ledger under ``<ledger>/contract-audit/``; ``replay`` audits the
source again and fails (VerificationError, exit 1) unless it finds the same findings.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.encoding.refs import entry_ref
from ailedger.errors import BadInputError, NotFoundError, VerificationError

from .audit import audit_source, read_source
from .model import load_model

__all__ = ["AUDIT_TYPE", "audit_body", "log_audit", "replay_audit", "stored_report"]

AUDIT_TYPE = "contract.audit"


def _dir(ledger: Any) -> Path:
    return Path(ledger.path) / "contract-audit"


def audit_body(report: dict[str, Any]) -> dict[str, Any]:
    """The signed body: strings and integers only."""
    return {"file": report["file"], "source_sha256": report["source_sha256"], "compiler": report["compiler"],
            "tools": dict(report["tools"]), "model_root": report["model_root"],
            "findings_sha256": report["findings_sha256"], "findings": len(report["findings"]),
            "by_category": dict(report["by_category"]), "report_schema": report["schema"]}


def log_audit(ledger: Any, identity: Any, report: dict[str, Any], source: bytes) -> dict[str, Any]:
    if hashlib.sha256(source).hexdigest() != report["source_sha256"]:
        raise BadInputError("the source is not the one the report audited", field="source")
    d = _dir(ledger)
    d.mkdir(parents=True, exist_ok=True)
    (d / f"{report['source_sha256']}.sol").write_bytes(source)
    (d / f"{report['findings_sha256']}.json").write_bytes(canonical_json(report))
    body = audit_body(report)
    res = ledger.append_record(AUDIT_TYPE, body, identity,
                               terms=(f"source:{report['source_sha256']}", f"file:{report['file']}"))
    return {"index": res.index, "type": AUDIT_TYPE, "body": body}


def _entry(ledger: Any, ref: str) -> tuple[int, Any]:
    i = entry_ref(ref, "entry", bare=True)
    if i is None:
        raise BadInputError(f"not an entry reference: {ref!r} (write #N or N)", field="entry")
    if i >= ledger.size:
        raise NotFoundError(f"no entry #{i}: the log has {ledger.size} entries", field="entry")
    e = ledger.entry(i)
    if e.type != AUDIT_TYPE:
        raise BadInputError(f"entry #{i} is a {e.type}, not a {AUDIT_TYPE}", field="entry")
    return i, e


def stored_report(ledger: Any, ref: str) -> tuple[int, Any, dict[str, Any] | None]:
    i, e = _entry(ledger, ref)
    p = _dir(ledger) / f"{e.body['findings_sha256']}.json"
    return i, e, parse_json(p.read_bytes()) if p.is_file() else None


def replay_audit(ledger: Any, ref: str, source_path: str | Path | None = None,
                 model_path: str | Path | None = None) -> dict[str, Any]:
    """Audit the entry's source again; VerificationError unless the findings digest is the signed one."""
    i, e = _entry(ledger, ref)
    body = e.body
    src = Path(source_path) if source_path else _dir(ledger) / f"{body['source_sha256']}.sol"
    if not src.is_file():
        raise NotFoundError(f"the source of entry #{i} is not kept at {src}: give it with --source", field="source")
    _, raw = read_source(src)
    got = hashlib.sha256(raw).hexdigest()
    if got != body["source_sha256"]:
        raise VerificationError(f"{src} is not the source entry #{i} audited (sha256 {got}, logged "
                                f"{body['source_sha256']})", expected=body["source_sha256"],
                                found=got)
    model = load_model(model_path)
    if model.root != body["model_root"]:
        raise VerificationError(f"the model is not the one entry #{i} used (root {model.root}, logged "
                                f"{body['model_root']})", expected=body["model_root"],
                                found=model.root)
    with_name = body["file"]
    with tempfile.TemporaryDirectory(prefix="ailedger-replay-") as d:
        p = Path(d) / with_name
        shutil.copyfile(src, p)
        report = audit_source(p, model=model)
    differs = {k: {"logged": body[k], "now": report[k]} for k in ("compiler", "tools") if body[k] != report[k]}
    if report["findings_sha256"] != body["findings_sha256"]:
        raise VerificationError(f"replay of entry #{i} found different findings: logged findings sha256 "
                                f"{body['findings_sha256']}, replay {report['findings_sha256']}"
                                + (f" (changed since: {', '.join(sorted(differs))})" if differs else ""),
                                expected=body["findings_sha256"], found=report["findings_sha256"])
    return {"entry": i, "ok": True, "findings_sha256": report["findings_sha256"], "findings": report["findings"],
            "file": body["file"], "versions_changed": differs, "signer": e.signer}
