"""EPCIS events on the ledger: capture (one ``epcis.event`` entry per event, found by its CBV event hash),
trace forward and backward through transformation, aggregation and association events, recall reports, each
event with its inclusion proof."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from ailedger.authority.service import model_status
from ailedger.errors import AiledgerError, BadInputError, NotFoundError, VerificationError
from ailedger.inference.receipts import disclose, receipt_proof, verify_receipt_proof
from ailedger.tlog.note import Verifier, parse_vkey
from ailedger.tlog.proofbundle import verify_proof_bundle

from .eventhash import digital_link, event_hash
from .events import Event, inspection_of, validate_document

__all__ = ["EVENT_RECORD", "Captured", "capture", "check_inference", "event_body", "find_event", "logged_event", "recall",
           "trace", "verify_logged"]

EVENT_RECORD = "epcis.event"
_EPS = 1e-9


def _hex(h: str) -> str:
    return h.split(";", 1)[1].split("?", 1)[0]


def _dumps(x: Any) -> str:
    return json.dumps(x, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Captured:
    hash: str
    index: int
    type: str
    duplicate: bool

    def as_dict(self) -> dict[str, Any]:
        return {"hash": self.hash, "index": self.index, "type": self.type, "duplicate": self.duplicate}


def _candidates(ledger: Any, term: str) -> Any:
    """``(index, entry, event)`` of the ``epcis.event`` entries indexed under ``term`` (the term's own index
    first: the type's would scan every event).  An entry whose event is unreadable or does not hash to the hash
    it claims (written around ``capture``, e.g. posted raw) is skipped: it is no event."""
    for idx, e in ledger.find(term=term):
        if e.type != EVENT_RECORD:
            continue
        try:
            ev = logged_event(e)
        except (AiledgerError, ValueError, KeyError, TypeError, AttributeError):
            continue
        yield idx, e, ev


def find_event(ledger: Any, h: str) -> int | None:
    """The log index of the first ``epcis.event`` with this event hash, or None."""
    for idx, _e, ev in _candidates(ledger, f"subject:epcis:{_hex(h)}"):
        if ev.hash == h:  # terms find candidates; the body decides
            return int(idx)
    return None


def logged_event(entry: Any) -> Event:
    """The event an ``epcis.event`` entry carries, its hash recomputed (a mismatch is a VerificationError)."""
    b = entry.body
    data = json.loads(b["event"])
    ctx = json.loads(b["context"]) if b.get("context") else None
    h = event_hash(data, ctx)
    if h != b.get("hash"):
        raise VerificationError("the logged event does not hash to the hash it is logged under",
                                expected=b.get("hash"), found=h)
    return Event(data, ctx, h)


def _stock(ledger: Any, cls: str) -> float:
    total = 0.0
    seen: set[str] = set()
    for _idx, _e, ev in _candidates(ledger, f"subject:epc:{cls}"):
        if ev.hash in seen:
            continue
        seen.add(ev.hash)
        total += sum(q for c, q in ev.quantity_changes() if c == cls)
    return total


def _consumed_epcs(ledger: Any, epc: str) -> int | None:
    for idx, _e, ev in _candidates(ledger, f"subject:epc:{epc}"):
        if ev.type == "TransformationEvent" and epc in ev.inputs:
            return int(idx)
    return None


def check_stock(ledger: Any, events: list[Event]) -> None:
    """A transformation may not consume more of a lot/class than the logged events (and the earlier events
    of the same document) produced, nor an EPC another transformation already consumed."""
    balance: dict[str, float] = {}
    used: dict[str, int] = {}
    counted: set[str] = set()  # events whose stock changes are already in the log or counted once here
    pending: list[Event] = []  # the document's earlier new events
    for i, ev in enumerate(events):
        if ev.hash in counted or find_event(ledger, ev.hash) is not None:
            counted.add(ev.hash)
            continue
        counted.add(ev.hash)
        if ev.type == "TransformationEvent":
            for epc in ev._ids("inputEPCList"):
                at = used.get(epc)
                if at is None:
                    at = _consumed_epcs(ledger, epc)
                if at is not None:
                    raise BadInputError(f"event {i}: transformation consumes {epc}, already consumed by "
                                        f"{'entry ' + str(at) if at >= 0 else 'an earlier event of this document'}",
                                        field="inputEPCList")
                used[epc] = -1
        for c, q in ev.quantity_changes():
            if c not in balance:
                balance[c] = _stock(ledger, c) + sum(q2 for e2 in pending for c2, q2 in e2.quantity_changes()
                                                     if c2 == c)
            if ev.type == "TransformationEvent" and q < 0 and balance[c] + q < -_EPS:
                raise BadInputError(f"event {i}: transformation consumes {-q:g} of {c} but only "
                                    f"{max(balance[c], 0):g} exist (logged stock events)", field="inputQuantityList")
            balance[c] += q
        pending.append(ev)


def event_body(ev: Event) -> dict[str, Any]:
    """The body of an ``epcis.event`` entry: the event's JSON, the document's ``@context``, its hash, and as
    ``subjects`` (indexed by every write path) the hash and every item the event names."""
    body: dict[str, Any] = {"hash": ev.hash, "event_type": ev.type, "event": _dumps(ev.data),
                            "subjects": [f"epcis:{_hex(ev.hash)}", *(f"epc:{x}" for x in ev.items if len(x) < 290)]}
    if ev.context is not None:
        body["context"] = _dumps(ev.context)
    return body


def capture(ledger: Any, identity: Any, doc: Any) -> list[Captured]:
    """Validate every event of the document, then log each one not logged yet (an event already in the log,
    by anyone, keeps its first index: ``duplicate``).  Any bad event: nothing is logged."""
    events = validate_document(doc)
    check_stock(ledger, events)
    found: dict[str, int] = {}
    fresh: list[Event] = []
    for ev in events:
        if ev.hash in found or any(f.hash == ev.hash for f in fresh):
            continue
        at = find_event(ledger, ev.hash)
        if at is not None:
            found[ev.hash] = at
        else:
            fresh.append(ev)
    if fresh:  # one durable commit for the document's new events
        datas = [ledger.make_entry(EVENT_RECORD, event_body(ev), identity).leaf_bytes for ev in fresh]
        results = ledger.append_entries(datas, parallel=False)
        for ev, r in zip(fresh, results):
            if isinstance(r, str):
                raise BadInputError(f"event {ev.hash} was not logged: {r}", field="event")
            found[ev.hash] = int(r.index)
    new = {ev.hash for ev in fresh}
    out: list[Captured] = []
    for ev in events:
        first = ev.hash in new
        new.discard(ev.hash)
        out.append(Captured(ev.hash, found[ev.hash], ev.type, not first))
    return out


def _edges(ev: Event, item: str, forward: bool) -> list[str]:
    """The items one step away from ``item`` through this event (forward: where it went; backward: what
    went into it)."""
    if ev.type == "TransformationEvent":
        if forward and item in ev.inputs:
            return ev.outputs
        if not forward and item in ev.outputs:
            return ev.inputs
    if (ev.type == "AggregationEvent" and ev.action == "ADD") or (
            ev.type == "AssociationEvent" and ev.action in ("ADD", "OBSERVE")):
        # an aggregation packs children into a parent; an association (EPCIS 2.0 section 7.4.6) attaches them to
        # one (a tank, a trailer, a device), ADD or a confirming OBSERVE; DELETE ends it and is not followed
        if forward and item in ev.children and ev.parent:
            return [ev.parent]
        if not forward and item == ev.parent:
            return ev.children
    return []


def _judge(ledger: Any, insp: dict[str, str], statuses: dict[str, Any]) -> dict[str, Any]:
    """An inspection verdict with its model's status now: suspect when the model is no longer usable."""
    name = insp.get("model", "")
    if name not in statuses:
        statuses[name] = model_status(ledger, name)
    st = statuses[name]
    out: dict[str, Any] = dict(insp, model_status=st.state, suspect=not st.usable)
    if not st.usable:
        out["why"] = st.describe()
    return out


def check_inference(evidence: dict[str, Any], insp: dict[str, str], ev: Event, signer: str,
                    verifier: Verifier) -> None:
    """Check an inspection verdict against the inference record it references: ``evidence`` holds the record's
    receipt proof (``ailedger-inference-receipt/v1``: the record in its signed ``inference.batch`` entry, that
    entry's inclusion proof) and the disclosed output with its salt.  The record must be the one the event names,
    in the batch entry the event names, signed by the event's signer, for the event's model and registration and
    item, and its committed output must be the event's verdict and score.  Raises ``VerificationError``."""
    res = verify_receipt_proof(evidence["receipt_proof"], verifier)
    rec = res["record"]
    want = {"receipt": insp.get("inferenceRecord"), "batch entry": insp.get("inferenceEntry"), "signer": signer,
            "model": insp.get("model"), "model record": insp.get("modelRecord")}
    got = {"receipt": res["receipt"], "batch entry": f"#{res['batch_index']}", "signer": res["operator"],
           "model": rec.get("model"), "model record": f"#{rec.get('model_index')}"}
    for k, expected in want.items():
        if expected != got[k]:
            raise VerificationError(f"the inference record's {k} is not the event's", expected=expected, found=got[k])
    meta = rec.get("meta") if isinstance(rec.get("meta"), dict) else {}
    if digital_link(str(meta.get("epc", ""))) not in ev.items:
        raise VerificationError("the inference record is about another item", expected=ev.items, found=meta.get("epc"))
    try:
        salt = bytes.fromhex(evidence["salt"])
        text = str(evidence["output"])
    except (KeyError, TypeError, ValueError) as exc:
        raise VerificationError(f"the inference evidence is malformed: {exc}") from None
    c_out = hashlib.sha256(salt + text.encode()).hexdigest()
    if c_out != rec.get("out"):
        raise VerificationError("the disclosed output is not the one the record commits to", expected=rec.get("out"),
                                found=c_out)
    try:
        out = json.loads(text)
    except ValueError:
        out = None
    if out != {"verdict": insp.get("verdict"), "score": insp.get("score")}:
        raise VerificationError("the event's verdict is not the inference's output",
                                expected={"verdict": insp.get("verdict"), "score": insp.get("score")}, found=out)


def _inference(ledger: Any, ev: Event, signer: str, insp: dict[str, str], verifier: Verifier) -> dict[str, Any]:
    """The inference evidence of an inspection event, checked: ``{"verified": True, ...evidence}`` or
    ``{"verified": False, "why": ...}``."""
    rid = insp.get("inferenceRecord")
    if not rid:
        return {"verified": False, "why": "the verdict references no inference record"}
    try:
        proof = receipt_proof(ledger, rid)
        d = disclose(ledger, rid)
        evidence = {"receipt_proof": proof, "salt": d["salt"], "output": d["output"]}
        check_inference(evidence, insp, ev, signer, verifier)
    except AiledgerError as exc:
        return {"verified": False, "why": f"inference record {rid}: {exc}"}
    return {"verified": True, **evidence}


def trace(ledger: Any, epc: str, *, forward: bool = True, max_depth: int = 64,
          proofs: bool = True) -> dict[str, Any]:
    """Follow ``epc`` (an EPC URI or Digital Link URI) forward (where did it go) or backward (what went into
    it): every item reached with its depth and the event that links it, and every event on the way with
    its inclusion proof."""
    root = digital_link(epc.strip())
    items: dict[str, dict[str, Any]] = {root: {"item": root, "depth": 0, "via": None}}
    events: dict[int, dict[str, Any]] = {}
    statuses: dict[str, Any] = {}
    verifier = parse_vkey(ledger.vkey)
    queue = deque([root])
    while queue:
        item = queue.popleft()
        depth = items[item]["depth"]
        for idx, e, ev in _candidates(ledger, f"subject:epc:{item}"):
            if item not in ev.items:  # terms find candidates; the event itself decides
                continue
            if idx not in events:
                events[idx] = {"index": int(idx), "hash": ev.hash, "type": ev.type, "signer": e.signer,
                               "eventTime": ev.data.get("eventTime"), "bizStep": ev.data.get("bizStep"),
                               "items": ev.items}
                insp = inspection_of(ev)
                if insp is not None:
                    judged = events[idx]["inspection"] = _judge(ledger, insp, statuses)
                    inf = judged["inference"] = _inference(ledger, ev, e.signer, insp, verifier)
                    if not inf["verified"]:
                        judged["suspect"] = True
                        judged["why"] = "; ".join(w for w in (judged.get("why"), inf["why"]) if w)
            if depth >= max_depth:
                continue
            for nxt in _edges(ev, item, forward):
                if nxt not in items:
                    items[nxt] = {"item": nxt, "depth": depth + 1, "via": int(idx), "via_type": ev.type,
                                  "from": item}
                    queue.append(nxt)
    if len(events) == 0:
        raise NotFoundError(f"no logged EPCIS event names {root}", field="epc")
    ordered = [events[i] for i in sorted(events)]
    if proofs:
        for ev_d in ordered:
            ev_d["proof"] = ledger.prove(ev_d["index"]).decode()
    return {"item": root, "direction": "forward" if forward else "backward", "items": list(items.values()),
            "events": ordered, "size": ledger.size, "vkey": ledger.vkey}


def recall(ledger: Any, epc: str) -> dict[str, Any]:
    """A recall report for ``epc`` (typically a lot): every downstream item, each with the event that links it
    and that event's inclusion proof."""
    t = trace(ledger, epc, forward=True)
    by_index = {e["index"]: e for e in t["events"]}
    affected = [dict(it, event=by_index[it["via"]]["hash"], proof=by_index[it["via"]]["proof"])
                for it in t["items"] if it["via"] is not None]
    suspect = [e for e in t["events"] if e.get("inspection", {}).get("suspect")]
    return {"recall": t["item"], "affected": affected, "events": t["events"], "suspect_inspections": suspect,
            "size": t["size"], "vkey": t["vkey"]}


def verify_logged(ledger: Any, report: dict[str, Any]) -> dict[str, Any]:
    """Check every event of a trace/recall report: its proof against the log key, that the entry it proves
    carries an event with that hash, and for an inspection verdict the report calls verified, its inference
    record (``check_inference``).  Raises ``VerificationError`` on the first failure."""
    verifier: Verifier = parse_vkey(report["vkey"])
    n = inferences = 0
    counts: dict[str, int] = defaultdict(int)
    for ev in report["events"]:
        entry = ledger.entry(ev["index"])
        verify_proof_bundle(ev["proof"].encode(), verifier, entry=entry.leaf_bytes)
        got = logged_event(entry)
        if got.hash != ev["hash"]:
            raise VerificationError(f"entry {ev['index']} holds another event", expected=ev["hash"], found=got.hash)
        insp = inspection_of(got)
        said = ev.get("inspection")
        if insp is not None and said is not None:
            for k, v in insp.items():
                if said.get(k) != v:
                    raise VerificationError(f"entry {ev['index']}: the report's inspection {k} is not the event's",
                                            expected=v, found=said.get(k))
            inf = said.get("inference") or {}
            if inf.get("verified"):
                check_inference(inf, insp, got, entry.signer, verifier)
                inferences += 1
            elif not said.get("suspect"):
                raise VerificationError(f"entry {ev['index']}: an unchecked verdict not marked suspect")
        counts[got.type] += 1
        n += 1
    return {"ok": True, "events": n, "by_type": dict(counts), "inferences_verified": inferences}
