"""Log a screening report beside a dataset commitment ("dataset.screening" records).

The JSON report is stored as RFC 8785 canonical bytes under ``<ledger>/screening/<sha256>.json`` and its
HTML rendering beside it; the ledger record carries the report's SHA-256 and the per-source verdicts,
so anyone holding the report can check it is the one that was logged.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.encoding.records import parse_entry
from ailedger.encoding.refs import entry_ref
from ailedger.errors import BadInputError, NotFoundError, ProofError
from ailedger.provenance.models import entries_found
from ailedger.tlog.note import parse_vkey
from ailedger.tlog.proofbundle import verify_proof_bundle

from .report import SCHEMA, render_html, report_bytes, report_sha256

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
                  dataset_index: int | None = None, dataset_root: str | None = None,
                  html: str | None = None) -> dict[str, Any]:
    sha, jp, hp = store_report(ledger, report, html)
    body = screening_body(report, dataset=dataset, decision=decision, dataset_index=dataset_index,
                          dataset_root=dataset_root)
    # dataset: and dataset-root: come from the signed body on every write path (services.ledger.entry_terms)
    terms = [f"sha256:{sha}", f"screening:{report['verdict']}"]
    res = ledger.append_record(SCREENING_RECORD, body, identity, terms=terms)
    return {"index": res.index, "report_sha256": sha, "report_json": str(jp), "report_html": str(hp),
            "body": body}


SCREENING_PROOF = "ailedger-screening-proof/v1"


def latest_screening(ledger: Any, dataset: str) -> tuple[int, Any] | None:
    """The last screening logged for dataset ``dataset`` (by any write path: the ``dataset:`` term comes from
    the signed body), confirmed against the body; None when there is none."""
    hits = entries_found(ledger, SCREENING_RECORD, [f"dataset:{dataset}"], lambda b: b.get("dataset") == dataset)
    return hits[-1] if hits else None


def _find_screening(ledger: Any, ref: str) -> tuple[int, Any]:
    idx = entry_ref(ref, "screening")
    if idx is not None:
        if idx >= ledger.size or ledger.entry(idx).type != SCREENING_RECORD:
            raise NotFoundError(f"entry {ref} is not a {SCREENING_RECORD}", field="screening")
        return idx, ledger.entry(idx)
    hit = latest_screening(ledger, ref)
    if hit is None:
        raise NotFoundError(f"no screening logged for dataset {ref!r}", field="dataset")
    return hit


def screening_proof(ledger: Any, ref: str) -> tuple[bytes, dict[str, Any]]:
    """A self-contained file: the screening entry, its inclusion proof, the JSON report it commits to, and
    (when linked) the dataset.commit entry with its inclusion proof."""
    import base64

    idx, e = _find_screening(ledger, ref)
    rp = Path(ledger.path) / "screening" / f"{e.body['report_sha256']}.json"
    if not rp.exists():
        raise NotFoundError(f"the report of screening #{idx} is not stored in this ledger", field="report")

    def part(i: int) -> dict[str, Any]:
        return {"index": i, "entry": base64.b64encode(ledger.entry_bytes(i)).decode(),
                "tlog_proof": ledger.prove(i).decode()}

    doc: dict[str, Any] = {"type": SCREENING_PROOF, "screening": part(idx),
                           "report": base64.b64encode(rp.read_bytes()).decode()}
    if "dataset_index" in e.body:
        doc["dataset_commit"] = part(int(e.body["dataset_index"]))
    data = (SCREENING_PROOF + "\n").encode() + canonical_json(doc) + b"\n"
    return data, {"index": idx, "dataset": e.body["dataset"], "verdict": e.body["verdict"], "bytes": len(data)}


def verify_screening_proof(data: bytes, vkey: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Offline: (summary, report). Raises VerificationError subclasses when the entry, its inclusion, the
    report's hash, or the link to the dataset commitment does not hold."""
    import base64
    import hashlib

    head = (SCREENING_PROOF + "\n").encode()
    if not data.startswith(head):
        raise BadInputError(f"not an {SCREENING_PROOF} file", field="proof")
    doc = parse_json(data[len(head):], what="screening proof")
    if not isinstance(doc, dict) or doc.get("type") != SCREENING_PROOF:
        raise BadInputError("screening proof body is malformed", field="proof")
    key = parse_vkey(vkey)

    def check(part: Any, what: str) -> tuple[Any, int]:
        """The part's entry, checked (signature, inclusion under the signed checkpoint), and the index its
        inclusion proof was verified at: the one shown, never the file's own ``index`` field."""
        try:
            eb = base64.b64decode(part["entry"], validate=True)
            bundle = part["tlog_proof"].encode()
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadInputError(f"the {what} part of the screening proof lacks an entry or its tlog_proof",
                                field="proof") from exc
        e = parse_entry(eb, verify=True)
        b, _ = verify_proof_bundle(bundle, key, entry=eb)
        if part.get("index") != b.index:
            raise ProofError(f"the {what} part names entry {part.get('index')!r} but its inclusion proof is for "
                             f"entry {b.index}", expected=b.index, found=part.get("index"))
        return e, b.index

    def body_str(e: Any, k: str) -> str:
        v = e.body.get(k)
        if not isinstance(v, str):
            raise ProofError(f"the screening record has no {k}", expected=f"{k} (a string)", found=v)
        return v

    e, s_index = check(doc.get("screening"), "screening")
    if e.type != SCREENING_RECORD:
        raise ProofError(f"the entry is a {e.type}, not a {SCREENING_RECORD}", expected=SCREENING_RECORD, found=e.type)
    try:
        report_bytes_ = base64.b64decode(doc.get("report", ""), validate=True)
    except (TypeError, ValueError) as exc:
        raise BadInputError("the screening proof's report is not base64", field="report") from exc
    sha = hashlib.sha256(report_bytes_).hexdigest()
    if sha != body_str(e, "report_sha256"):
        raise ProofError("the report is not the one the screening record commits to",
                         expected=e.body["report_sha256"], found=sha)
    report = parse_json(report_bytes_, what="screening report")
    rep_ds = report.get("dataset") if isinstance(report, dict) else None
    if not isinstance(report, dict) or report.get("verdict") != e.body.get("verdict") \
            or not isinstance(rep_ds, dict) or rep_ds.get("sha256") != e.body.get("data_sha256"):
        raise ProofError("the report disagrees with the screening record", expected=e.body.get("verdict"),
                         found=report.get("verdict") if isinstance(report, dict) else None)
    out: dict[str, Any] = {"ok": True, "dataset": body_str(e, "dataset"), "screening_index": s_index,
                           "verdict": e.body.get("verdict"), "decision": e.body.get("decision"),
                           "report_sha256": sha, "signer": e.signer, "time": e.time,
                           "sources": e.body.get("sources"), "flagged": e.body.get("flagged")}
    if "dataset_commit" in doc:
        c, c_index = check(doc["dataset_commit"], "dataset_commit")
        if c.type != "dataset.commit" or c_index != e.body.get("dataset_index") \
                or c.body.get("root") != e.body.get("dataset_root"):
            raise ProofError("the linked dataset commitment is not the one the screening names",
                             expected=e.body.get("dataset_root"), found=c.body.get("root"))
        out.update({"dataset_index": c_index, "dataset_root": c.body["root"],
                    "dataset_records": c.body.get("records")})
    return out, report
