"""The explorer's list pages: one per kind of record, newest first, paged, with the count.

Each builder returns the page's table as data (column names; rows of cells ``{"text", "href", "code"}``) so
that one template renders them all.  Entry-backed lists page through the log's term index
(``store.find_newest`` / ``store.count``: no scan of the log); models and proposals come from their folds
(services.authority, services.governance), the one place their state is decided.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from ailedger.errors import AiledgerError, BadInputError, NotFoundError

__all__ = ["KINDS", "PER_PAGE", "build", "counts", "page_number", "paging", "summary"]

PER_PAGE = 50

# path -> (menu label, what the page lists); the order is the menu's
KINDS: dict[str, tuple[str, str]] = {
    "models": ("Models", "Models by name (the authority rules decide each one's owner, versions and status)"),
    "datasets": ("Datasets", "Dataset commitments (dataset.commit)"),
    "identities": ("Identities", "Registered identities (identity.register)"),
    "content": ("Content", "Registered content (content.register)"),
    "proposals": ("Proposals", "Governance proposals (gov.propose) and their state"),
    "inference": ("Inference", "Inference batches (inference.batch): each commits to a batch of receipts"),
    "subnets": ("Subnets", "Incentivised AI subnets (subnet.create): miners, staked validators, epochs and payouts"),
    "contracts": ("Contract audits", "Smart-contract audits (contract.audit): findings per DASP category"),
    "checkpoints": ("Checkpoints", "Signed checkpoints of this log"),
    "witnesses": ("Witnesses", "Witnesses asked to cosign this log's checkpoints"),
    "anchors": ("Anchors", "Checkpoints anchored on a chain"),
    "compute": ("Compute", "Compute marketplace jobs (compute.job) and where each stands (the compute fold)"),
    "entries": ("All entries", "Every entry of the log"),
}

_TYPE_OF = {"datasets": "dataset.commit", "identities": "identity.register", "content": "content.register",
            "inference": "inference.batch", "contracts": "contract.audit"}


def page_number(raw: str | None) -> int:
    """``?page=`` as a number from 1; BadInputError (400) for anything else."""
    if raw is None or raw == "":
        return 1
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        raise BadInputError(f"page must be a whole number from 1, not {raw[:40]!r}", field="page")
    return int(raw)


def paging(page: int, total: int, per: int = PER_PAGE) -> dict[str, Any]:
    pages = max(1, -(-total // per))
    if page > pages:
        raise NotFoundError(f"there is no page {page}: {total} item{'' if total == 1 else 's'} make "
                            f"{pages} page{'' if pages == 1 else 's'} of {per}", field="page")
    first = (page - 1) * per
    return {"page": page, "pages": pages, "total": total, "offset": first, "per": per,
            "first": first + 1 if total else 0, "last": min(total, first + per)}


def _c(text: Any, href: str | None = None, code: bool = False, title: str | None = None) -> dict[str, Any]:
    return {"text": "" if text is None else str(text), "href": href, "code": code, "title": title}


def _did(did: str) -> dict[str, Any]:
    return _c(did[:24] + "…" if len(did) > 25 else did, f"/identity/{did}", True, did)


def _hex(h: Any) -> dict[str, Any]:
    s = h if isinstance(h, str) else ""
    return _c(s[:16] + "…" if len(s) > 17 else s, None, True, s or None)


def _q(s: str) -> str:
    return quote(s, safe="")


def _body(e: Any) -> dict[str, Any]:
    return e.body if isinstance(e.body, dict) else {}


def _str(v: Any, n: int = 80) -> str:
    s = v if isinstance(v, str) else ("" if v is None else str(v))
    return s if len(s) <= n else s[: n - 1] + "…"


# -- entry-backed lists ------------------------------------------------------------------------------------

def _entries(led: Any, term: str | None, pg: int) -> tuple[dict[str, Any], list[tuple[int, Any]]]:
    if term is None:
        size = led.store.size()
        p = paging(pg, size)
        idxs = list(range(size - 1 - p["offset"], max(-1, size - 1 - p["offset"] - PER_PAGE), -1))
    else:
        p = paging(pg, led.store.count(term))
        idxs = led.store.find_newest(term, p["offset"], PER_PAGE)
    return p, [(i, led.entry(i)) for i in idxs]


def summary(e: dict[str, Any]) -> str:
    """One line saying what an entry is about (its name, title, subject or decision)."""
    b: dict[str, Any] = e["body"] if isinstance(e.get("body"), dict) else {}
    for k in ("name", "title", "subject", "decision", "description"):
        if isinstance(b.get(k), str):
            return f"{k}: {b[k][:80]}"
    subj = b.get("subjects")
    if isinstance(subj, list) and subj:
        return f"subject: {str(subj[0])[:80]}"
    return ""


def _row_entry(i: int, e: Any) -> list[dict[str, Any]]:
    return [_c(i, f"/entry/{i}"), _c(e.type, f"/entries?type={_q(e.type)}"), _did(e.signer), _c(e.time),
            _c(summary(e.to_dict()))]


def _row_dataset(i: int, e: Any) -> list[dict[str, Any]]:
    b = _body(e)
    return [_c(_str(b.get("name")) or f"#{i}", f"/dataset/%23{i}"), _c(b.get("records")), _hex(b.get("root")),
            _did(e.signer), _c(e.time), _c(i, f"/entry/{i}")]


def _row_identity(i: int, e: Any) -> list[dict[str, Any]]:
    b = _body(e)
    return [_c(_str(b.get("name")), f"/identity/{e.signer}"), _did(e.signer), _c(e.time), _c(i, f"/entry/{i}")]


def _row_content(i: int, e: Any) -> list[dict[str, Any]]:
    b = _body(e)
    return [_c(_str(b.get("name")) or f"#{i}", f"/entry/{i}"), _c(b.get("kind")), _c(b.get("media_type")),
            _hex(b.get("sha256")), _did(e.signer), _c(e.time)]


def _row_inference(i: int, e: Any) -> list[dict[str, Any]]:
    b = _body(e)
    models = [str(m["name"]) for m in b.get("models") or [] if isinstance(m, dict) and isinstance(m.get("name"), str)]
    model = _c(models[0], f"/model/{_q(models[0])}") if len(models) == 1 else _c(", ".join(models))
    return [_c(i, f"/entry/{i}"), _c(b.get("stream"), None, True), _c(b.get("seq")), _c(b.get("count")), model,
            _c(f"{_str(b.get('from'), 40)} – {_str(b.get('to'), 40)}"), _hex(b.get("root"))]


def _row_contract(i: int, e: Any) -> list[dict[str, Any]]:
    b = _body(e)
    raw = b.get("by_category")
    cats: dict[str, Any] = raw if isinstance(raw, dict) else {}
    sha = _str(b.get("source_sha256"), 64)
    return [_c(_str(b.get("file")) or f"#{i}", f"/contract/{_q(sha)}" if sha else None), _c(b.get("findings")),
            _c(", ".join(f"{k} {v}" for k, v in sorted(cats.items()))), _hex(sha), _did(e.signer), _c(e.time),
            _c(i, f"/entry/{i}")]


_ROWS = {
    "datasets": (["name", "records", "root", "signer", "time", "entry"], _row_dataset),
    "identities": (["name", "did:key", "registered", "entry"], _row_identity),
    "content": (["name", "kind", "media type", "SHA-256", "signer", "time"], _row_content),
    "inference": (["entry", "stream", "batch", "records", "model", "time span", "root"], _row_inference),
    "contracts": (["file", "findings", "by DASP category", "source SHA-256", "signer", "time", "entry"],
                  _row_contract),
    "entries": (["#", "type", "signer", "time", "summary"], _row_entry),
}


# -- fold-backed and side lists ----------------------------------------------------------------------------

def _models(led: Any, pg: int) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    from ailedger.authority.service import model_status, state

    book = state(led).models.models
    names = sorted(book, key=lambda n: book[n].versions[-1] if book[n].versions else -1, reverse=True)
    p = paging(pg, len(names))
    rows = []
    for name in names[p["offset"]:p["offset"] + PER_PAGE]:
        st = model_status(led, name)
        latest = st.registration
        e = led.entry(latest) if latest is not None else None
        rows.append([_c(name, f"/model/{_q(name)}"), _c(st.state), _did(st.owner or ""), _c(len(st.versions)),
                     _c(e.time if e else ""), _c(latest, f"/entry/{latest}" if latest is not None else None)])
    return p, rows


def _proposals(led: Any, pg: int) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    from ailedger.governance import service as gov

    ids = sorted(gov.state(led).proposals, reverse=True)
    p = paging(pg, len(ids))
    rows = []
    for pid in ids[p["offset"]:p["offset"] + PER_PAGE]:
        d = gov.proposal_info(led, pid)
        t = d["tally"]
        rows.append([_c(pid, f"/proposals/{pid}"), _c(_str(d["description"])), _c(d["state"]), _did(d["proposer"]),
                     _c(f"for {t['for']} · against {t['against']} · abstain {t['abstain']}"), _c(d["created"])])
    return p, rows


def _subnet_totals(led: Any) -> list[dict[str, Any]]:
    from ailedger.subnets import service as subnets

    out = []
    for name, sn in sorted(subnets.book(led).subnets.items(), key=lambda kv: -kv[1].created):
        pays = [ep["result"]["pay"] for ep in sn.epochs]
        out.append({"name": name, "owner": sn.owner, "created": sn.created, "miners": len(sn.miners),
                    "validators": len(sn.validators), "epochs": len(sn.epochs),
                    "paid": {"miners": sum(sum(x["miners"]) for x in pays),
                             "validators": sum(sum(x["validators"]) for x in pays),
                             "owner": sum(x["owner"] for x in pays)}})
    return out


def subnet_chart(led: Any) -> dict[str, Any]:
    """Stacked horizontal bars of what each subnet paid in total (miners, validators, owner), newest first."""
    totals = _subnet_totals(led)[:PER_PAGE]
    top = max([sum(t["paid"].values()) for t in totals] or [1]) or 1
    bars = []
    for k, t in enumerate(totals):
        x = 160
        for part, color in (("miners", "#2a7"), ("validators", "#36c"), ("owner", "#c83")):
            w = round(400 * t["paid"][part] / top)
            bars.append({"x": x, "y": 8 + 22 * k, "w": w, "color": color, "name": t["name"], "part": part,
                         "amount": t["paid"][part]})
            x += w
    return {"bars": bars, "names": [{"y": 22 + 22 * k, "name": t["name"]} for k, t in enumerate(totals)],
            "height": 30 + 22 * len(totals)}


def _subnets(led: Any, pg: int) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    totals = _subnet_totals(led)
    p = paging(pg, len(totals))
    rows = [[_c(t["name"], f"/subnet/{_q(t['name'])}"), _did(t["owner"]), _c(t["miners"]), _c(t["validators"]),
             _c(t["epochs"]), _c(f"{sum(t['paid'].values()):,}"), _c(t["created"], f"/entry/{t['created']}")]
            for t in totals[p["offset"]:p["offset"] + PER_PAGE]]
    return p, rows


def checkpoint_fields(note: bytes) -> dict[str, Any]:
    from ailedger.tlog.checkpoint import parse_checkpoint_text
    from ailedger.tlog.note import parse_note

    n = parse_note(bytes(note))
    cp = parse_checkpoint_text(n.text)
    return {"size": cp.size, "root": cp.root.hex(), "signers": [s.name for s in n.signatures]}


def _checkpoints(led: Any, pg: int) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    p = paging(pg, led.store.checkpoint_count())
    rows = []
    for size, note in led.store.checkpoints_newest(p["offset"], PER_PAGE):
        try:
            f = checkpoint_fields(note)
            root, signers = _hex(f["root"]), _c(", ".join(f["signers"]))
        except Exception:  # noqa: BLE001 - a stored note that does not parse is shown as such
            root, signers = _c("(unreadable note)"), _c("")
        rows.append([_c(size, f"/checkpoints/{size}"), root, signers])
    return p, rows


def witnesses(led: Any) -> list[dict[str, Any]]:
    """Configured witnesses and every key that cosigned the latest cosigned checkpoint."""
    from ailedger.tlog.note import parse_note, parse_vkey
    from ailedger.tlog.witness import configured_witnesses, cosigned_checkpoint

    out: list[dict[str, Any]] = []
    note = cosigned_checkpoint(led)
    cosigners: dict[str, int] = {}
    if note:
        n = parse_note(note)
        size = checkpoint_fields(note)["size"]
        cosigners = {s.name: size for s in n.signatures if s.name != led.origin}
    for url, vkey in configured_witnesses(led):
        name = parse_vkey(vkey).name if vkey else None
        out.append({"url": url, "name": name, "vkey": vkey or "", "size": cosigners.pop(name, None) if name else None})
    for name, size in cosigners.items():
        out.append({"url": "", "name": name, "vkey": "", "size": size})
    return out


def _witnesses(led: Any, pg: int) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    ws = witnesses(led)
    p = paging(pg, len(ws))
    rows = [[_c(w["name"] or "(key not given)"), _c(w["url"] or "(not configured)"), _c(w["vkey"], None, True),
             _c(w["size"], f"/checkpoints/{w['size']}" if w["size"] is not None else None)]
            for w in ws[p["offset"]:p["offset"] + PER_PAGE]]
    return p, rows


def anchors(led: Any) -> list[dict[str, Any]]:
    if not (Path(led.path) / "anchors.db").exists():
        return []
    from ailedger.anchoring.service import AnchorQueue

    q = AnchorQueue(led.path)
    try:
        rs = q.receipts(statuses=("confirmed", "mined", "sent", "pending"))
    finally:
        q.close()
    return [{"tree_size": r.tree_size, "chain_id": r.chain_id, "block_number": r.block_number,
             "tx_hash": r.tx_hash, "status": r.status, "contract": r.contract}
            for r in sorted(rs, key=lambda r: r.tree_size, reverse=True)]


def _anchors(led: Any, pg: int) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    got = anchors(led)
    p = paging(pg, len(got))
    rows = [[_c(a["tree_size"], f"/checkpoints/{a['tree_size']}"), _c(a["chain_id"]), _c(a["contract"], None, True),
             _c(a["block_number"]), _c(a["tx_hash"], None, True), _c(a["status"])]
            for a in got[p["offset"]:p["offset"] + PER_PAGE]]
    return p, rows


def _compute(led: Any, pg: int) -> tuple[dict[str, Any], list[list[dict[str, Any]]]]:
    from ailedger.compute.service import job_view

    p = paging(pg, led.store.count("type:compute.job"))
    rows = []
    for i in led.store.find_newest("type:compute.job", p["offset"], PER_PAGE):
        b = _body(led.entry(i))
        try:
            v = job_view(led, str(b.get("contract", "")), int(b.get("job", -1)))
        except (AiledgerError, TypeError, ValueError):
            rows.append([_c(i, f"/entry/{i}"), _c(b.get("job")), _c("(has no effect)"), _c(""), _c(""), _hex(None)])
            continue
        stage = ("ruled: provider " + ("right" if v.verdict["provider_right"] else "wrong") if v.verdict else
                 "challenged" if v.challenges else "result logged" if v.result else
                 "accepted" if v.accepted else f"open ({len(v.bids)} bids)")
        if v.settlements:
            stage += f"; settled: {_str(v.settlements[-1].get('outcome'), 40)}"
        spec_v = b.get("spec")
        spec: dict[str, Any] = spec_v if isinstance(spec_v, dict) else {}
        prov = v.accepted["provider"] if v.accepted else None
        rows.append([_c(i, f"/entry/{i}"), _c(f"{b.get('job')} @ {_str(b.get('contract'), 12)}"),
                     _c(f"{spec.get('steps')} steps of {spec.get('dataset')}"), _c(stage),
                     _did(prov) if isinstance(prov, str) else _c("-"),
                     _hex(v.result.get("final_root") if v.result else None)])
    return p, rows


_OTHER = {
    "compute": (["entry", "job @ contract", "work", "stage", "provider", "final root"], _compute),
    "models": (["name", "status", "owner", "versions", "latest version", "entry"], _models),
    "proposals": (["id", "description", "state", "proposer", "tally", "created"], _proposals),
    "subnets": (["name", "owner", "miners", "validators", "epochs folded", "paid in total", "created at entry"],
                _subnets),
    "checkpoints": (["size", "root", "signed by"], _checkpoints),
    "witnesses": (["name", "URL", "key", "latest size cosigned"], _witnesses),
    "anchors": (["tree size", "chain", "contract", "block", "transaction", "status"], _anchors),
}


def check_type(t: str) -> str:
    if not t or len(t) > 100 or not all(c.isascii() and (c.isalnum() or c in "._-") for c in t):
        raise BadInputError(f"type must be an entry type like model.register, not {t[:40]!r}", field="type")
    return t


def build(led: Any, kind: str, pg: int, etype: str | None = None) -> dict[str, Any]:
    """The context of list page ``kind`` at page ``pg`` (``etype`` filters /entries by entry type)."""
    if kind in _OTHER:
        cols, fn = _OTHER[kind]
        p, rows = fn(led, pg)
    else:
        cols, row = _ROWS[kind]
        term = f"type:{etype}" if kind == "entries" and etype else (f"type:{_TYPE_OF[kind]}" if kind in _TYPE_OF else None)
        p, items = _entries(led, term, pg)
        rows = [row(i, e) for i, e in items]
    label, what = KINDS[kind]
    return {"kind": kind, "label": label, "what": what if not etype else f"Entries of type {etype}",
            "columns": cols, "rows": rows, "p": p, "etype": etype,
            "chart": subnet_chart(led) if kind == "subnets" and rows else None}


def counts(led: Any, ws: list[Any], ans: list[Any]) -> list[dict[str, Any]]:
    """How many of each kind this log holds (the home page's table of contents)."""
    from ailedger.authority.service import state
    from ailedger.governance import service as gov
    from ailedger.subnets import service as subnets

    n = {"models": len(state(led).models.models), "proposals": len(gov.state(led).proposals),
         "subnets": len(subnets.book(led).subnets),
         "checkpoints": led.store.checkpoint_count(), "witnesses": len(ws), "anchors": len(ans),
         "entries": led.store.size(), "compute": led.store.count("type:compute.job")}
    for k, t in _TYPE_OF.items():
        n[k] = led.store.count(f"type:{t}")
    return [{"kind": k, "label": KINDS[k][0], "what": KINDS[k][1], "count": n[k]} for k in KINDS if k in n]
