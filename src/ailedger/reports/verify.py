"""``report verify DIR``: check a report folder offline -- every proof, every signature, every claim."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ailedger.encoding.records import parse_entry
from ailedger.errors import AiledgerError, BadInputError, VerificationError
from ailedger.reports.evidence import FORMAT, UNREVEALED, VOID_WHY, claim_text, eval_late, eval_opens, lookup
from ailedger.reports.records import verify_range
from ailedger.reports.render import render_html
from ailedger.tlog.checkpoint import open_checkpoint
from ailedger.tlog.note import Verifier, parse_vkey
from ailedger.tlog.proofbundle import verify_proof_bundle

__all__ = ["load_report", "verify_report"]


def load_report(folder: Path) -> dict[str, Any]:
    p = folder / "report.json"
    if not p.is_file():
        raise BadInputError(f"{folder} holds no report.json (not a report folder?)", field="dir")
    try:
        rep = json.loads(p.read_text())
    except ValueError as exc:
        raise BadInputError(f"{p} is not JSON: {exc}", field="report.json") from None
    if not isinstance(rep, dict) or rep.get("format") != FORMAT:
        raise BadInputError(f"{p} is not an {FORMAT} report", field="format")
    return rep


def _statement(folder: Path, rep: dict[str, Any], st: dict[str, Any], verifier: Verifier) -> None:
    sid = f"{st.get('id')} ({st.get('claim', '')[:80]})"
    idx = st["entry"]
    if st.get("entry_file") != f"entries/{idx}.json" or st.get("proof") != f"proofs/{idx}.tlog-proof":
        raise VerificationError(f"statement {sid}: its files do not name entry {idx}", claim=st.get("id"))
    leaf = (folder / st["entry_file"]).read_bytes()
    try:
        bundle, _cp = verify_proof_bundle((folder / st["proof"]).read_bytes(), verifier, entry=leaf)
        if bundle.index != idx:
            raise VerificationError(f"proof is for entry {bundle.index}, not {idx}")
        parse_entry(leaf, verify=True)
    except AiledgerError as exc:
        raise VerificationError(f"statement {sid}: entry {idx}: {exc.message}", claim=st.get("id")) from None
    e = json.loads(leaf)
    for name, (path, value) in st["fields"].items():
        if lookup(e, path) != value:
            raise VerificationError(f"statement {sid}: claims {name} = {value!r} but entry {idx} has "
                                    f"{lookup(e, path)!r} at {path}", claim=st.get("id"))
    fixed = st.get("fixed") or {}
    for k in ("model", "entry"):
        if k in fixed and fixed[k] != (rep.get("model") if k == "model" else idx):
            raise VerificationError(f"statement {sid}: fixed value {k} = {fixed[k]!r} is not the report's",
                                    claim=st.get("id"))
    values = {**fixed, **{k: v for k, (_p, v) in st["fields"].items()}}
    if claim_text(st["kind"], values) != st.get("claim"):
        raise VerificationError(f"statement {st.get('id')}: its text {st.get('claim')!r} is not what the entry "
                                f"says: {claim_text(st['kind'], values)!r}", claim=st.get("id"))


def _check_status(rep: dict[str, Any]) -> None:
    """The status line must be the one its ruling statements give (the wording of ModelStatus.describe)."""
    st = rep.get("status") or {}
    state, by, entry, reason = st.get("state"), st.get("by"), st.get("entry"), st.get("reason") or ""
    rulings = {s["entry"]: s["fixed"].get("state") for s in rep.get("statements", []) if s["kind"] == "ruling"}
    if by is None:
        text = f"model {rep.get('model')} is {state}"
    else:
        rt = f"{state} by {by}" + (f" ({reason})" if reason else "")
        usable = state not in ("revoked", "suspended")
        text = f"model {rep.get('model')} is {rt}" if usable else f"model {rep.get('model')} was {rt} at entry {entry}"
    blocking = [e for e, v in rulings.items() if str(v).startswith(("revoked", "suspended"))]
    if st.get("text") != text or (state in ("revoked", "suspended") and rulings.get(entry) != f"{state} by {by}") \
            or (blocking and state not in ("revoked", "suspended")):
        raise VerificationError(f"claim status {st.get('text')!r} is not what the report's ruling statements say",
                                claim="status")


def _check_evaluations(folder: Path, rep: dict[str, Any]) -> None:
    """Each reveal statement against the commitment it names (a cited ``eval-commit`` statement of the report):
    a result opens it by its deadline, a late reveal is late, a void one does not open it or is not the
    committer's, and a commitment said unrevealed has no reveal stated."""
    stmts = rep.get("statements", [])
    commits = {s["entry"]: json.loads((folder / s["entry_file"]).read_bytes())
               for s in stmts if s["kind"] == "eval-commit"}
    revealed: set[Any] = set()
    for s in stmts:
        if s["kind"] not in ("eval-reveal", "eval-late", "eval-void"):
            continue
        sid = f"{s['id']} ({s['claim'][:80]})"
        ci = s["fields"]["commit"][1]
        ce = commits.get(ci)
        if ce is None or ce.get("type") != "eval.commit":
            raise VerificationError(f"statement {sid}: the commitment it names (entry {ci}) is not stated in the "
                                    "report", claim=s["id"])
        r = json.loads((folder / s["entry_file"]).read_bytes())
        opens, late = eval_opens(ce["body"], r["body"]), eval_late(ce["body"], r.get("time"))
        why = (s.get("fixed") or {}).get("why")
        if s["kind"] == "eval-reveal":
            bad = None if opens and late is False else ("it does not open the commitment" if not opens
                                                        else f"it is after the deadline {ce['body'].get('reveal_by')}")
            revealed.add(ci)
        elif s["kind"] == "eval-late":
            bad = None if opens and late is not False else "it is not a late opening of the commitment"
            revealed.add(ci)
        else:
            bad = (None if (why == VOID_WHY["open"] and not opens)
                   or (why == VOID_WHY["signer"] and r.get("signer") != ce.get("signer")) else
                   f"its reason {why!r} does not hold")
        if bad:
            raise VerificationError(f"statement {sid}: {bad}", claim=s["id"])
    unrevealed = {s["entry"] for s in stmts if s["kind"] == "eval-unrevealed"}
    for s in stmts:
        if s["kind"] == "eval-commit" and s["entry"] not in revealed | unrevealed:
            raise VerificationError(f"statement {s['id']} ({s['claim'][:80]}): commitment {s['entry']} is stated "
                                    "without its outcome (a reveal, a late reveal or 'never revealed')", claim=s["id"])
    for s in stmts:
        if s["kind"] != "eval-unrevealed":
            continue
        out = (s.get("fixed") or {}).get("outcome")
        due = eval_late(commits.get(s["entry"], {}).get("body", {}), rep.get("generated_at"))
        if s["entry"] in revealed or out not in UNREVEALED.values() or \
                (out == UNREVEALED["never"]) != (due is not False):
            raise VerificationError(f"statement {s['id']} ({s['claim'][:80]}): the report states a reveal of "
                                    f"commitment {s['entry']}, or its outcome {out!r} is not the deadline's",
                                    claim=s["id"])


def verify_report(folder: Path, vkey: str | None = None) -> dict[str, Any]:
    """Raise VerificationError naming the first claim that fails; else a summary of what was checked."""
    rep = load_report(folder)
    try:
        return _verify(folder, rep, vkey)
    except (KeyError, IndexError, TypeError, ValueError, OSError, BadInputError) as exc:  # ValueError: binascii
        what = (exc.filename if isinstance(exc, OSError) and exc.filename else
                exc.message if isinstance(exc, BadInputError) else repr(exc))
        raise VerificationError(f"the report folder is damaged or malformed: {what}", claim="folder") from None


def _verify(folder: Path, rep: dict[str, Any], vkey: str | None) -> dict[str, Any]:
    key = vkey or (folder / "log.vkey").read_text().strip()
    verifier = parse_vkey(key)
    if rep.get("vkey") != key:
        raise VerificationError("the report names another log key than the one it is checked with",
                                expected=key, found=rep.get("vkey"), claim="vkey")
    latest = open_checkpoint((folder / "checkpoint").read_bytes(), verifier)
    for st in rep.get("statements", []):
        _statement(folder, rep, st, verifier)
    if rep.get("kind") == "technical-doc":
        _check_status(rep)
        _check_evaluations(folder, rep)
    out: dict[str, Any] = {"ok": True, "kind": rep.get("kind"), "model": rep.get("model"),
                           "statements": len(rep.get("statements", [])), "gaps": len(rep.get("gaps", [])),
                           "checkpoint_size": latest.size, "vkey_from": "--vkey" if vkey else "the folder's log.vkey"}
    if rep.get("kind") == "record-keeping":
        s = verify_range(folder, rep, verifier, latest)
        out["range"] = [rep["range"]["opening_size"], rep["range"]["closing_size"]]
        out["inference_records"] = s["inference_records"]
    html = folder / "report.html"
    if html.is_file() and html.read_text() != render_html(rep):
        raise VerificationError("report.html differs from what report.json says (edited by hand?)",
                                claim="report.html")
    return out
