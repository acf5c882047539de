"""Article 12-style record-keeping of a model over a period, with a proof that no record of it was removed.

The report carries every entry of the log range ``[opening.size, closing.size)`` between two signed
checkpoints that enclose the period (``range.jsonl``), the compact range (right border hashes) of the
opening tree, and RFC 6962 consistency proofs opening -> closing -> the report's checkpoint.  A verifier
rebuilds the closing root from the border and the range's leaves, so the range is exactly the log's entries
there: the counts, periods, erasures, gaps and events (:func:`summarise`) are recomputed from it offline.
"""

from __future__ import annotations

import base64
import datetime as _dt
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.encoding.records import parse_entry
from ailedger.errors import BadInputError, ProofError, VerificationError
from ailedger.reports.evidence import Evidence
from ailedger.reports.scan import STATUS_TYPES, iter_entries, names_model, parse_when, proposal_of, when
from ailedger.reports.technical import header, model_or_error
from ailedger.tlog.admission import TIME_SKEW_SECONDS
from ailedger.tlog.checkpoint import open_checkpoint, parse_checkpoint_text
from ailedger.tlog.merkle import CompactRange, leaf_hash, verify_consistency
from ailedger.tlog.note import Verifier, parse_note

__all__ = ["build_record_keeping", "summarise", "verify_range"]

MAX_BATCH_STATEMENTS = 200
# Entry times are the signers' and need not grow along the log, but every writer refuses an entry dated more
# than TIME_SKEW_SECONDS from its clock.  So an entry dated before ``from - 2 * skew`` was logged before any
# entry dated in the period, and one dated at or after ``to + 2 * skew`` after all of them: the entries just
# outside the range, dated that far outside the period, show that the range holds every entry of the period.
MARGIN_S = 2 * TIME_SKEW_SECONDS


def _iso(d: _dt.datetime) -> str:
    """RFC 3339 UTC, keeping the fraction of a second (a period may start at an entry's exact time)."""
    u = d.astimezone(_dt.timezone.utc).replace(tzinfo=None)
    spec = "seconds" if not u.microsecond else "milliseconds" if not u.microsecond % 1000 else "microseconds"
    return u.isoformat(timespec=spec) + "Z"


def summarise(entries: list[tuple[int, dict[str, Any]]], model: str, t_from: str, t_to: str,
              gap_hours: int) -> dict[str, Any]:
    """What the report claims about the period [t_from, t_to), from the entries alone (log order)."""
    f, t = parse_when(t_from, "from"), parse_when(t_to, "to")
    per_day: dict[str, int] = {}
    batches: list[dict[str, Any]] = []
    erasures: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    proposals: set[int] = set()
    n_period = 0
    first_idx = last_idx = None
    for idx, e in entries:
        w = when(e)
        t_ = e.get("type")
        if t_ == "gov.propose" and names_model(e, model, proposals):
            proposals.add(idx)  # a proposal made before the period still links its later votes and execution
        if not f <= w < t:
            continue
        n_period += 1
        first_idx = idx if first_idx is None else first_idx
        last_idx = idx
        b = e["body"]
        if t_ == "inference.batch":
            ms = b.get("models")
            if isinstance(ms, list) and any(isinstance(m, dict) and m.get("name") == model for m in ms):
                n = b.get("count") if type(b.get("count")) is int else 0
                batches.append({"entry": idx, "count": n, "from": b.get("from"), "to": b.get("to")})
                day = w.strftime("%Y-%m-%d")
                per_day[day] = per_day.get(day, 0) + n
        elif t_ == "inference.erasure":
            erasures.append({"entry": idx, "time": e.get("time"), "records": b.get("records"),
                             "key_destroyed": b.get("key_destroyed")})
        elif (t_ in STATUS_TYPES or str(t_).startswith("gov.") or t_ in ("agent.action", "agent.finding")) \
                and names_model(e, model, proposals):
            events.append({"entry": idx, "type": t_, "time": e.get("time"), "signer": e.get("signer"),
                           "proposal": proposal_of(e) if t_ != "gov.propose" else idx})
    gaps: list[dict[str, Any]] = []
    at = dict(entries)
    marks = [f, *sorted(when(at[bt["entry"]]) for bt in batches), t]
    for a, b_ in itertools.pairwise(marks):
        if (b_ - a).total_seconds() > gap_hours * 3600:
            gaps.append({"from": _iso(a), "to": _iso(b_), "hours": int((b_ - a).total_seconds() // 3600)})
    return {"from": _iso(f), "to": _iso(t), "entries_in_period": n_period, "first_entry": first_idx,
            "last_entry": last_idx, "inference_batches": len(batches), "batch_entries": [x["entry"] for x in batches],
            "inference_records": sum(bt["count"] for bt in batches), "per_day": dict(sorted(per_day.items())),
            "periods_covered": [[bt["from"], bt["to"]] for bt in batches], "erasures": erasures,
            "events": events, "gap_hours": gap_hours, "timeline_gaps": gaps}


def _checkpoints(ledger: Any, lo: int, hi: int) -> tuple[tuple[int, bytes | None], tuple[int, bytes]]:
    """The stored signed checkpoints enclosing [lo, hi): the largest with size <= lo (or the empty tree) and
    the smallest with size >= hi (or the latest)."""
    cps = sorted(ledger.store.checkpoints())
    opening: tuple[int, bytes | None] = (0, None)
    for size, note in cps:
        if 0 < size <= lo:
            opening = (size, bytes(note))
    latest = ledger.checkpoint()
    closing: tuple[int, bytes] | None = None
    for size, note in cps:
        if size >= hi and size > 0:
            closing = (size, bytes(note))
            break
    if closing is None:
        closing = (parse_checkpoint_text(parse_note(latest).text).size, latest)
    return opening, closing


def build_record_keeping(ledger: Any, name: str, t_from: str, t_to: str, out: Path, *,
                         gap_hours: int = 24, progress: Callable[[int], Any] | None = None) -> dict[str, Any]:
    model_or_error(ledger, name)
    f, t = parse_when(t_from, "from"), parse_when(t_to, "to")
    if t <= f:
        raise BadInputError(f"--to ({t_to}) must be after --from ({t_from})", field="to")
    ev = Evidence(ledger, out)
    report = header(ledger, "record-keeping", name, out)
    size = int(report["log_size"])
    # the first index with time >= from - margin, one past the last with time < to + margin (MARGIN_S)
    lo, hi = size, 0
    fm, tm = f - _dt.timedelta(seconds=MARGIN_S), t + _dt.timedelta(seconds=MARGIN_S)
    for idx, e in iter_entries(ledger, 0, size, progress):
        w = when(e)
        if w >= fm and lo == size:
            lo = idx
        if w < tm:
            hi = idx + 1
    hi = max(hi, lo) if lo < size else hi
    lo = min(lo, hi)
    (o_size, o_note), (c_size, c_note) = _checkpoints(ledger, lo, hi)
    entries = list(iter_entries(ledger, o_size, c_size))
    with open(out / "range.jsonl", "wb") as fh:
        fh.writelines(bytes(ledger.entry_bytes(i)) + b"\n" for i in range(o_size, c_size))
    if o_note is not None:
        (out / "opening.checkpoint").write_bytes(o_note)
    (out / "closing.checkpoint").write_bytes(c_note)
    border = ledger.store.node_hashes(CompactRange.border_nodes(o_size))
    latest_size = _size_of((out / "checkpoint").read_bytes())  # the report's own checkpoint (header)
    summary = summarise(entries, name, t_from, t_to, gap_hours)
    for bt in summary["batch_entries"][:MAX_BATCH_STATEMENTS]:
        ev.state("records", "batch", bt,
                 {"count": "body.count", "signer": "signer", "from": "body.from", "to": "body.to",
                  "root": "body.root"}, {"model": name})
    for er in summary["erasures"]:
        ev.state("records", "erasure", er["entry"],
                 {"records": "body.records", "signer": "signer", "time": "time",
                  "key_destroyed": "body.key_destroyed"})
    for evn in summary["events"]:
        ev.state("events", "governance", evn["entry"], {"type": "type", "signer": "signer", "time": "time"})
    boundary = []
    for bi, side in ((o_size - 1, "before"), (c_size, "after")):
        if 0 <= bi < latest_size:  # the entries just outside the range lie outside the period, by MARGIN_S
            ev.state("range", "boundary", bi, {"type": "type", "time": "time"}, {"entry": bi, "side": side})
            boundary.append({"entry": bi, "side": side})
    gaps = []
    if summary["inference_records"] == 0:
        gaps.append({"section": "records", "gap": f"no inference record of model {name} in the period"})
    gaps.append({"section": "records", "gap": "retention periods of the stored payloads are not recorded in the "
                                              "ledger; only erasures are"})
    report.update({
        "period": {"from": summary["from"], "to": summary["to"]},
        "summary": summary,
        "range": {"file": "range.jsonl", "opening_size": o_size, "closing_size": c_size,
                  "opening": "opening.checkpoint" if o_note is not None else None,
                  "closing": "closing.checkpoint",
                  "border": [base64.b64encode(border[n]).decode() for n in CompactRange.border_nodes(o_size)],
                  "consistency_open_close": _b64(ledger.log.consistency_proof(o_size, c_size)) if o_size else [],
                  "consistency_close_latest": _b64(ledger.log.consistency_proof(c_size, latest_size)),
                  "latest_size": latest_size, "boundary": boundary, "margin_seconds": MARGIN_S},
        "sections": [{"id": "range", "title": "The log range that holds the period", "annex": "Article 12(1)"},
                     {"id": "records", "title": "Inference records of the period", "annex": "Article 12(1)-(2)"},
                     {"id": "events", "title": "Kill-switch and governance events", "annex": "Article 12(2)(a)"}],
        "statements": ev.statements, "gaps": gaps,
    })
    return report


def _b64(hs: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode() for h in hs]


def _size_of(note: bytes) -> int:
    return parse_checkpoint_text(parse_note(note).text).size


def verify_range(folder: Path, report: dict[str, Any], verifier: Verifier, latest: Any) -> dict[str, Any]:
    """Check the range of a record-keeping report against its checkpoints, and recompute its summary."""
    rg = report.get("range")
    if not isinstance(rg, dict):
        raise VerificationError("the record-keeping report has no range", field="range")
    o_size, c_size = int(rg["opening_size"]), int(rg["closing_size"])
    closing = open_checkpoint((folder / rg["closing"]).read_bytes(), verifier)
    if closing.size != c_size:
        raise VerificationError("closing checkpoint size differs from the report's", expected=c_size,
                                found=closing.size, claim="range.closing_size")
    border = [base64.b64decode(h) for h in rg["border"]]
    cr = CompactRange(o_size, border)
    if o_size:
        opening = open_checkpoint((folder / rg["opening"]).read_bytes(), verifier)
        if opening.size != o_size or cr.root() != opening.root:
            raise ProofError("the opening border does not give the opening checkpoint's root",
                             claim="range.border")
        verify_consistency(o_size, c_size, opening.root, closing.root,
                           [base64.b64decode(h) for h in rg["consistency_open_close"]])
    lines = (folder / rg["file"]).read_bytes().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) != c_size - o_size:
        raise VerificationError(f"range.jsonl has {len(lines)} entries; the range holds {c_size - o_size}",
                                claim="range.file")
    entries = []
    for i, leaf in enumerate(lines):
        cr.append(leaf_hash(leaf))
        parse_entry(leaf, verify=True)  # SignatureError names the bad entry
        entries.append((o_size + i, json.loads(leaf)))
    if cr.root() != closing.root:
        raise ProofError("the range's entries do not give the closing checkpoint's root: an entry of the period "
                         "was changed, added or removed", claim="range.file")
    if latest.size < c_size:
        raise ProofError("the report's checkpoint is older than the closing one", claim="range")
    if latest.size > c_size:
        verify_consistency(c_size, latest.size, closing.root, latest.root,
                           [base64.b64decode(h) for h in rg["consistency_close_latest"]])
    elif latest.root != closing.root:
        raise ProofError("closing and report checkpoints differ at the same size", claim="range")
    per = report["period"]
    summary = summarise(entries, report["model"], per["from"], per["to"], int(report["summary"]["gap_hours"]))
    for k, v in summary.items():
        if report["summary"].get(k) != v:
            raise VerificationError(f"claim summary.{k} does not match the log's entries",
                                    claim=f"summary.{k}", expected=v, found=report["summary"].get(k))
    # the statements are the ones the recomputed summary gives: none left out, none added
    want = ({("batch", i) for i in summary["batch_entries"][:MAX_BATCH_STATEMENTS]}
            | {("erasure", x["entry"]) for x in summary["erasures"]}
            | {("governance", x["entry"]) for x in summary["events"]})
    got = {(st.get("kind"), st.get("entry")) for st in report.get("statements", []) if st.get("kind") != "boundary"}
    if got != want:
        raise VerificationError(f"the report's statements are not the ones its range gives: missing "
                                f"{sorted(want - got, key=str)}, extra {sorted(got - want, key=str)}",
                                claim="statements")
    f, t = parse_when(per["from"], "from"), parse_when(per["to"], "to")
    margin = _dt.timedelta(seconds=MARGIN_S)
    stated = {(st["entry"], (st.get("fixed") or {}).get("side")) for st in report.get("statements", [])
              if st.get("kind") == "boundary"}  # each checked with its entry and proof by the caller
    need = ([(o_size - 1, "before")] if o_size else []) + ([(c_size, "after")] if c_size < latest.size else [])
    if sorted((bd.get("entry"), bd.get("side")) for bd in rg.get("boundary", [])) != sorted(need):
        raise VerificationError(f"the range's boundary entries must be {need} (the entries just outside it)",
                                claim="range.boundary")
    for bi, side in need:
        if (bi, side) not in stated:
            raise VerificationError(f"no statement cites boundary entry {bi} ({side} the range)",
                                    claim="range.boundary")
        e = json.loads((folder / "entries" / f"{bi}.json").read_bytes())
        w = when(e)
        if (side == "before" and w >= f - margin) or (side == "after" and w < t + margin):
            raise VerificationError(f"entry {bi} ({e.get('time')}), just {side} the range, is dated within "
                                    f"{MARGIN_S} s of the period: the range does not show it holds the whole period",
                                    claim="range.boundary")
    return summary
