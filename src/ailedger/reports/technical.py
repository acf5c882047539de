"""Technical documentation of a model in the structure of EU AI Act Annex IV, built from the ledger.

Every statement cites the entry it rests on (see :mod:`.evidence`); what the ledger cannot show is listed as a
gap with the Annex IV point it leaves open, never filled with boilerplate."""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.authority.service import eval_reveal_allowed, model_status
from ailedger.errors import NotFoundError
from ailedger.provenance.lineage import lineage_graph
from ailedger.reports.evidence import FORMAT, UNREVEALED, VOID_WHY, Evidence, eval_late, eval_opens
from ailedger.reports.scan import iter_entries, names_model

__all__ = ["ANNEX_IV_SECTIONS", "NOT_EVIDENCED", "build_technical_doc", "model_or_error"]

# section id -> (title, the Annex IV point)
ANNEX_IV_SECTIONS: dict[str, tuple[str, str]] = {
    "general": ("General description of the AI system", "Annex IV point 1"),
    "development": ("Development process and design choices", "Annex IV point 2(a)-(c)"),
    "data": ("Data and data governance", "Annex IV point 2(d)"),
    "validation": ("Validation and test results", "Annex IV point 2(g)"),
    "risk": ("Risk management and post-market records", "Annex IV points 5 and 9"),
    "changes": ("Changes over the lifecycle", "Annex IV point 6"),
}

# what an executed proposal's action does to the model it names (the time line's label)
DAO_DID = {"model.approve": "approved", "model.revoke": "revoked", "suspension.confirm": "revoked",
           "suspension.lift": "suspension lifted"}

# Annex IV items a transparency log cannot evidence: always listed as gaps
NOT_EVIDENCED: list[tuple[str, str]] = [
    ("general", ("intended purpose, provider name, hardware and software it runs on, instructions for use "
                "(Annex IV 1(a)-(h)): not recorded in the ledger")),
    ("development", "human oversight measures and the assessment of them (Annex IV 2(e)): not recorded"),
    ("development", "cybersecurity measures (Annex IV 2(h)): not recorded"),
    ("risk", "the risk management system itself (Article 9, Annex IV 5): only the log's events are shown"),
    ("general", "harmonised standards applied and the EU declaration of conformity (Annex IV 7-8): not recorded"),
]


def model_or_error(ledger: Any, name: str) -> Any:
    st = model_status(ledger, name)
    if st.registration is None:
        raise NotFoundError(f"no model named {name!r} is registered in this ledger", field="model")
    return st


def _status_statements(ev: Evidence, st: Any) -> list[dict[str, Any]]:
    out = []
    for r in st.rulings:
        s = ev.state("risk", "ruling", r.entry, {"type": "type", "signer": "signer", "time": "time"},
                     {"model": st.name, "state": f"{r.state} by {r.by}", "entry": r.entry})
        out.append(s)
        if r.by.startswith("proposal "):
            pid = r.by.split()[1]
            if pid.isdigit() and int(pid) < ev.ledger.size:
                out.append(ev.state("risk", "proposal", int(pid),
                                    {"type": "type", "signer": "signer", "time": "time",
                                     "description": "body.description"}, {"entry": int(pid)}))
    return out


def _evaluations(ev: Evidence, ledger: Any, roots: set[str], commits: dict[int, dict[str, Any]],
                 reveals: list[tuple[int, dict[str, Any]]], gaps: list[dict[str, str]], now: str) -> tuple[bool, bool]:
    """State the commit-reveal evaluations of the model (docs/reports.md): (any found, any with a result).

    An evaluation is the model's when a model commitment names one of its manifest roots in public
    (``body.manifest_root``) or a reveal by its committer opens one whose content names it.  For each: its model
    commitments naming the model and its first test-set commitment (the ones ``eval verify`` judges), each with
    its outcome: a reveal by the deadline that opens it (a result), a late reveal, reveals with no effect, or
    none (never revealed / not yet).  Only an on-time opening reveal is stated as a result."""
    def opened_by_committer(ri: int, r: dict[str, Any]) -> str | None:
        ce = commits[r["body"]["commit"]]
        if not eval_opens(ce["body"], r["body"]):
            return "open"
        return "signer" if eval_reveal_allowed(ledger, ledger.entry(ri)) else None

    mine: dict[str, set[int]] = {}  # evaluation -> the model commitments that are this model's
    for ci, ce in commits.items():
        if ce["body"].get("role") == "model" and ce["body"].get("manifest_root") in roots:
            mine.setdefault(ce["body"]["evaluation"], set()).add(ci)
    for ri, r in reveals:
        ci = r["body"]["commit"]
        c = r["body"].get("content")
        if commits[ci]["body"].get("role") == "model" and isinstance(c, dict) and c.get("manifest_root") in roots \
                and ci < ri and opened_by_committer(ri, r) is None:
            mine.setdefault(commits[ci]["body"]["evaluation"], set()).add(ci)
    results = False
    for name in sorted(mine, key=lambda n: min(mine[n])):
        data = [ci for ci in sorted(commits) if commits[ci]["body"]["evaluation"] == name
                and commits[ci]["body"].get("role") == "data"][:1]
        first_result = None
        for ci in sorted(mine[name]) + data:
            ev.state("validation", "eval-commit", ci, {"evaluation": "body.evaluation", "role": "body.role",
                                                       "signer": "signer", "time": "time",
                                                       "reveal_by": "body.reveal_by"})
            outcome = None
            for ri, r in reveals:
                if r["body"]["commit"] != ci or ri < ci or outcome == "result":
                    continue
                paths = {"evaluation": "body.evaluation", "signer": "signer", "time": "time", "commit": "body.commit"}
                why = opened_by_committer(ri, r)
                if why is not None:
                    ev.state("validation", "eval-void", ri, paths, {"why": VOID_WHY[why]})
                elif eval_late(commits[ci]["body"], r.get("time")) is not False:
                    ev.state("validation", "eval-late", ri, paths)
                    outcome = "late"
                else:
                    ev.state("validation", "eval-reveal", ri,
                             {**paths, "content": "body.content", "salt": "body.salt"})
                    outcome = "result"
                    results = results or commits[ci]["body"].get("role") == "model"
                    first_result = ri if first_result is None else min(first_result, ri)
            if outcome is None:
                pending = eval_late(commits[ci]["body"], now) is False
                ev.state("validation", "eval-unrevealed", ci,
                         {"evaluation": "body.evaluation", "role": "body.role", "signer": "signer", "time": "time",
                          "reveal_by": "body.reveal_by"}, {"outcome": UNREVEALED["pending" if pending else "never"]})
        if not data:
            gaps.append({"section": "validation", "gap": f"evaluation {name} has no test-set commitment: its scores "
                                                         "were not fixed against a hidden test set"})
        for ci in sorted(mine[name]) + data:
            if first_result is not None and ci > first_result:
                side = "test-set" if ci in data else "model"
                gaps.append({"section": "validation", "gap": f"evaluation {name}: the {side} commitment (entry {ci}) "
                             f"was logged after a reveal (entry {first_result}): it could have been chosen against "
                             "the other side"})
    return bool(mine), results


def build_technical_doc(ledger: Any, name: str, out: Path,
                        progress: Callable[[int], Any] | None = None) -> dict[str, Any]:
    """Write the report folder (``report.json``, entries, proofs, ``log.vkey``, ``checkpoint``); the report."""
    st = model_or_error(ledger, name)
    ev = Evidence(ledger, out)
    report = _header(ledger, "technical-doc", name, out)
    reg_idx = st.registration
    reg = ev.cite(reg_idx)
    body = reg["body"]
    ev.state("general", "registration", reg_idx,
             {"name": "body.name", "signer": "signer", "time": "time", "root": "body.manifest.root",
              "files": "body.manifest.files", "bytes": "body.manifest.bytes"})
    lin = body.get("lineage") if isinstance(body.get("lineage"), dict) else {}
    gaps: list[dict[str, str]] = []
    if lin.get("code"):
        ev.state("development", "code", reg_idx, {"name": "body.name", "code": "body.lineage.code"})
    else:
        gaps.append({"section": "development", "gap": "the training code (repository, commit) is not recorded"})
    if lin.get("hyperparameters"):
        ev.state("development", "hyperparameters", reg_idx,
                 {"name": "body.name", "hyperparameters": "body.lineage.hyperparameters"})
    else:
        gaps.append({"section": "development", "gap": "no hyperparameters or design choices are recorded"})
    base = lin.get("base_model")
    if isinstance(base, dict) and type(base.get("index")) is int:
        ev.state("development", "base", reg_idx, {"name": "body.name", "base": "body.lineage.base_model.index"})

    # data: every dataset of the lineage, its licence, consent basis, screenings
    dsets = [d for d in (lin.get("datasets") or []) if isinstance(d, dict) and type(d.get("index")) is int]
    if not dsets:
        gaps.append({"section": "data", "gap": "the model names no training dataset"})
    ds_names: set[str] = set()
    for d in dsets:
        di = d["index"]
        if di >= ledger.size:
            continue
        de = ev.cite(di)
        ds_names.add(str(de["body"].get("name")))
        s = ev.state("data", "dataset", di,
                     {"name": "body.name", "signer": "signer", "time": "time", "records": "body.records",
                      "root": "body.root", "license": "body.sources.0.license",
                      "consent": "body.sources.0.consent"})
        for what, key in (("licence", "license"), ("consent basis", "consent")):
            if s["fields"][key][1] is None:
                gaps.append({"section": "data", "gap": f"dataset {de['body'].get('name')} has no {what} recorded"})

    # one pass over the log: screenings, evaluations, events naming the model, versions, descendants
    roots = set()
    for v in st.versions:
        r = ledger.entry(v).body.get("manifest", {})
        if isinstance(r, dict) and isinstance(r.get("root"), str):
            roots.add(r["root"])
    proposals: set[int] = set()
    screened: set[str] = set()
    commits: dict[int, dict[str, Any]] = {}
    reveals: list[tuple[int, dict[str, Any]]] = []
    events: list[int] = []
    did: dict[int, list[str]] = {}  # gov.propose / gov.execute naming the model -> what it does to it
    ruling_entries = {r.entry for r in st.rulings}  # and the proposals they name: stated with the ruling
    ruling_entries |= {int(r.by.split()[1]) for r in st.rulings
                       if r.by.startswith("proposal ") and r.by.split()[1].isdigit()}
    for idx, e in iter_entries(ledger, progress=progress):
        t, b = e.get("type"), e["body"]
        if t == "dataset.screening" and b.get("dataset") in ds_names:
            ev.state("data", "screening", idx,
                     {"dataset": "body.dataset", "signer": "signer", "time": "time", "verdict": "body.verdict",
                      "flagged": "body.flagged", "records": "body.records", "report": "body.report_sha256"})
            screened.add(str(b.get("dataset")))
        elif t == "eval.commit" and isinstance(b.get("evaluation"), str):
            commits[idx] = e
        elif t == "eval.reveal" and type(b.get("commit")) is int and b["commit"] in commits:
            reveals.append((idx, e))
        elif names_model(e, name, proposals):
            if t == "gov.propose":
                proposals.add(idx)
                did[idx] = [DAO_DID.get(str(a.get("kind")), str(a.get("kind"))) for a in b.get("actions", [])
                            if isinstance(a, dict) and a.get("model") == name]
            elif t == "gov.execute" and did.get(b.get("proposal")):
                did[idx] = did[b["proposal"]]
            if idx not in ruling_entries:
                events.append(idx)
        if t == "model.register" and b.get("name") == name and idx != reg_idx and idx in st.versions:
            ev.state("changes", "version", idx,
                     {"name": "body.name", "signer": "signer", "time": "time", "root": "body.manifest.root"})
    for dn in sorted(ds_names - screened):
        gaps.append({"section": "data", "gap": f"dataset {dn} has no screening report in the ledger"})
    found, results = _evaluations(ev, ledger, roots, commits, reveals, gaps, report["generated_at"])
    if not found:
        gaps.append({"section": "validation", "gap": "no commit-reveal evaluation of this model is in the ledger; "
                                                     "validation and test results are not evidenced"})
    elif not results:
        gaps.append({"section": "validation", "gap": "no commit-reveal evaluation of this model was revealed by its "
                                                     "deadline; validation and test results are not evidenced"})
    _status_statements(ev, st)
    for idx in events:
        ev.state("risk", "event", idx, {"type": "type", "signer": "signer", "time": "time"}, {"model": name})
    if not st.rulings and not events:
        gaps.append({"section": "risk", "gap": "no incident, suspension, revocation or governance event names "
                                               "this model (none happened, or none was logged)"})
    graph = lineage_graph(ledger, f"#{reg_idx}")
    for n in graph["nodes"]:
        if n["kind"] == "model" and n["index"] != reg_idx and n["index"] > reg_idx:
            ev.state("changes", "descendant", n["index"],
                     {"name": "body.name", "signer": "signer", "time": "time",
                      "base": "body.lineage.base_model.index"})
    if not [s for s in ev.statements if s["section"] == "changes"]:
        gaps.append({"section": "changes", "gap": "one version, no fine-tunes: no change over the lifecycle is "
                                                  "recorded"})
    gaps.extend({"section": s, "gap": g} for s, g in NOT_EVIDENCED)
    # the picture of the model's life: an executed DAO decision is labelled by what it did (approved, revoked)
    timeline = [{"entry": s["entry"], "kind": s["kind"], "time": _field(s, "time"),
                 "label": ", ".join(did[s["entry"]]) if s["kind"] == "event" and _field(s, "type") == "gov.execute"
                 and did.get(s["entry"]) else _label(s)}
                for s in ev.statements if _field(s, "time")]
    report.update({
        "status": {"state": st.state, "by": st.by, "entry": st.entry, "reason": st.reason,
                   "text": st.describe()},
        "sections": [{"id": k, "title": t, "annex": a} for k, (t, a) in ANNEX_IV_SECTIONS.items()],
        "statements": ev.statements, "gaps": gaps, "lineage": graph,
        "timeline": sorted(timeline, key=lambda x: (x["time"], x["entry"])),
    })
    return report


def _field(s: dict[str, Any], k: str) -> Any:
    f = s["fields"].get(k)
    return f[1] if f else None


def _label(s: dict[str, Any]) -> str:
    k = s["kind"]
    if k == "ruling":
        return str(s["fixed"].get("state", "ruling")).split(" by ")[0]
    if k in ("event", "governance"):
        return str(_field(s, "type"))
    return {"registration": "registered", "version": "new version", "eval-commit": "eval commit",
            "eval-reveal": "evaluation", "eval-late": "late reveal", "eval-void": "void reveal",
            "eval-unrevealed": "unrevealed eval", "descendant": "fine-tune"}.get(k, k)


def _header(ledger: Any, kind: str, name: str, out: Path) -> dict[str, Any]:
    cp = ledger.checkpoint()
    (out / "checkpoint").write_bytes(cp)
    (out / "log.vkey").write_text(ledger.vkey + "\n")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"format": FORMAT, "kind": kind, "model": name, "generated_at": now, "log_size": ledger.size,
            "vkey": ledger.vkey, "checkpoint": "checkpoint"}


def header(ledger: Any, kind: str, name: str, out: Path) -> dict[str, Any]:
    return _header(ledger, kind, name, out)


def dump(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=1, sort_keys=True, ensure_ascii=False) + "\n"

