"""Explorer pages: log health, entry with proof and verdict, model (lineage), dataset, identity, search.

Rendering is server-side (Jinja2, autoescape on). An entry's verdict is computed by the server
(entry signature, checkpoint signature, inclusion proof) and then re-checked in the browser:
a small script recomputes the RFC 6962 leaf hash and folds the inclusion proof with WebCrypto
SHA-256 up to the root in the signed checkpoint. Green only if both agree.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ailedger.core.checkpoint import parse_checkpoint_text
from ailedger.core.errors import AiledgerError, NotFoundError, StorageError, TamperError
from ailedger.core.merkle import leaf_hash
from ailedger.core.note import parse_note
from ailedger.core.proofbundle import parse_proof_bundle, verify_proof_bundle
from ailedger.core.records import parse_entry

__all__ = ["web_routes"]

log = logging.getLogger("ailedger.web")

_env = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                   autoescape=select_autoescape(["html"]))
MODEL = "model.register"
DATASET = "dataset.commit"


def _summary(e: dict[str, Any]) -> str:
    b = e.get("body") if isinstance(e.get("body"), dict) else {}
    for k in ("name", "title", "subject", "decision"):
        if isinstance(b.get(k), str):
            return f"{k}: {b[k][:80]}"
    subj = b.get("subjects")
    if isinstance(subj, list) and subj:
        return f"subject: {str(subj[0])[:80]}"
    return ""


def _row(idx: int, data: bytes) -> dict[str, Any]:
    try:
        e = json.loads(data)
    except ValueError:
        e = {}
    return {"index": idx, "type": str(e.get("type", "?")), "signer": str(e.get("signer", "?")),
            "time": str(e.get("time", "?")), "summary": _summary(e)}


def _rows(ledger: Any, idxs: list[int]) -> list[dict[str, Any]]:
    out = []
    for i in idxs:
        got = ledger.store.leaves(i, i + 1)
        if got:
            out.append(_row(i, bytes(got[0])))
    return out


def _find(ledger: Any, term: str, limit: int = 200) -> list[int]:
    return list(ledger.store.find(term, -1, limit))


class Pages:
    def __init__(self, api: Any) -> None:
        self.api = api
        self.ledger = api.ledger

    def render(self, template_name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("origin", self.ledger.origin)
        ctx.setdefault("title", template_name)
        return HTMLResponse(_env.get_template(template_name + ".html").render(**ctx), status_code=status)

    def error(self, exc: AiledgerError) -> HTMLResponse:
        from ailedger.api.errors import status_of

        status = status_of(exc)
        return self.render("error", status, title="error", heading="Not found" if status == 404 else "Error",
                           code=exc.code, message=exc.message)

    def guard(self, fn: Any) -> Any:
        async def wrapper(request: Request) -> Response:
            try:
                return await fn(request)
            except AiledgerError as exc:
                return self.error(exc)
            except Exception as exc:
                from ailedger.api.app import _is_db_error

                if _is_db_error(exc):
                    return self.error(StorageError(f"the store failed: {str(exc).strip()[:200]}"))
                log.exception("internal error on %s", request.url.path)
                return self.render("error", 500, title="error", heading="Error", code="internal",
                                   message="internal server error")
        wrapper.__name__ = fn.__name__
        return wrapper

    # -- home -------------------------------------------------------------------------
    def _home_ctx(self) -> dict[str, Any]:
        led = self.ledger
        note = led.store.latest_checkpoint() or led.checkpoint()
        cp = parse_checkpoint_text(parse_note(note).text)
        size = led.store.size()
        rows = _rows(led, list(range(size - 1, max(-1, size - 21), -1)))
        return {"size": size, "vkey": led.vkey, "rows": rows, "witnesses": _witnesses(led),
                "anchors": _anchors(led),
                "cp": {"size": cp.size, "root": cp.root.hex(), "note": note.decode(errors="replace")}}

    async def home(self, request: Request) -> Response:
        ctx = await run_in_threadpool(self._home_ctx)
        return self.render("home", title="log health", **ctx)

    # -- entry ------------------------------------------------------------------------
    def _entry_ctx(self, index: int) -> dict[str, Any]:
        led = self.ledger
        got = led.store.leaves(index, index + 1) if index < led.store.size() else []
        if not got:
            raise NotFoundError(f"no entry {index}: the log has {led.store.size()} entries", field="index")
        data = bytes(got[0])
        server_ok, server_error = True, ""
        try:
            e = parse_entry(data, verify=True)
            stored = led.store.leaf_hashes(index, index + 1)
            if not stored or bytes(stored[0]) != leaf_hash(data):
                raise TamperError("the stored leaf hash does not match the entry bytes")
            bundle = led.prove(index)
            verify_proof_bundle(bundle, led.verifier, entry=data)
        except AiledgerError as exc:
            server_ok, server_error = False, exc.message
            try:
                e = parse_entry(data, verify=False)
            except AiledgerError:
                e = None
            try:
                bundle = led.prove(index)
            except AiledgerError:
                bundle = b""
        pb = parse_proof_bundle(bundle) if bundle else None
        note = parse_note(pb.checkpoint) if pb else None
        cp = parse_checkpoint_text(note.text) if note else None
        obj = json.loads(data) if e is None else e.to_dict()
        # what the browser needs to check the two Ed25519 signatures itself: the checkpoint text and the
        # log's signature on it (matched to the log key by name and key id), and the log's public key
        cp_text, cp_sig = "", ""
        if note:
            v = led.verifier
            cp_text = note.text
            cp_sig = next((base64.b64encode(x.sig).decode() for x in note.signatures
                           if x.name == v.name and x.key_id == v.key_id), "")
        data_json = json.dumps({
            "server_ok": server_ok, "server_error": server_error, "index": index,
            "checkpoint_text": base64.b64encode(cp_text.encode()).decode(), "checkpoint_sig": cp_sig,
            "log_key": base64.b64encode(led.verifier.public_key).decode(), "log_vkey": led.verifier.vkey,
            "leaf": base64.b64encode(data).decode(), "leaf_hash": leaf_hash(data).hex(),
            "size": cp.size if cp else 0, "root": base64.b64encode(cp.root).decode() if cp else "",
            "proof": [base64.b64encode(h).decode() for h in pb.proof] if pb else [],
        }).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
        links = []
        etype = obj.get("type")
        body = obj.get("body") if isinstance(obj.get("body"), dict) else {}
        if etype == MODEL:
            links.append({"href": f"/model/%23{index}", "text": "model page (lineage)"})
        if etype == DATASET:
            links.append({"href": f"/dataset/%23{index}", "text": "dataset page"})
        for s in (body.get("subjects") or [])[:10] if isinstance(body.get("subjects"), list) else []:
            if isinstance(s, str):
                links.append({"href": "/search?q=" + _q(s), "text": s[:40]})
        return {"index": index, "e": _Obj(obj), "pretty": json.dumps(obj, indent=2, ensure_ascii=False),
                "bundle": bundle.decode(errors="replace"), "leaf_hash": leaf_hash(data).hex(),
                "data_json": data_json, "links": links, "log_vkey": led.verifier.vkey,
                "server_verdict": "passed" if server_ok else "FAILED: " + server_error}

    async def entry(self, request: Request) -> Response:
        index = int(request.path_params["index"])
        ctx = await run_in_threadpool(self._entry_ctx, index)
        return self.render("entry", title=f"entry {index}", **ctx)

    # -- model / dataset ----------------------------------------------------------------
    def _artifact_ctx(self, kind: str, ref: str) -> dict[str, Any]:
        led = self.ledger
        rtype = MODEL if kind == "model" else DATASET
        idx = _resolve(led, rtype, ref)
        e = led.entry(idx)
        svg = None
        related: list[dict[str, Any]] = []
        nodes: list[dict[str, Any]] = []
        status: dict[str, Any] | None = None
        ignored: str | None = None
        if kind == "model":
            from ailedger.core.authority import model_name_of
            from ailedger.services.authority import is_effective_registration, model_status, state

            if is_effective_registration(led, idx):
                status = model_status(led, str(model_name_of(e))).to_dict()
            else:
                ignored = next((r for i, r in state(led).ignored if i == idx), "it names no model")
            svg = None if ignored else _lineage_svg(led, idx, e)
            nodes = [] if ignored else _lineage_nodes(led, idx)
            related = _rows(led, _find(led, f"base:{e.body.get('name')}"))
            title = "Fine-tunes"
        else:
            related = _rows(led, _find(led, f"trained-on:{e.body.get('name')}"))
            title = "Models trained on it"
        return {"kind": kind, "name": str(e.body.get("name", f"#{idx}")), "index": idx, "e": e, "svg": svg,
                "nodes": nodes, "mstatus": status, "ignored": ignored,
                "related": related, "related_title": title,
                "pretty": json.dumps(e.to_dict(), indent=2, ensure_ascii=False)}

    async def model(self, request: Request) -> Response:
        ctx = await run_in_threadpool(self._artifact_ctx, "model", request.path_params["ref"])
        return self.render("artifact", title=f"model {ctx['name']}", **ctx)

    async def dataset(self, request: Request) -> Response:
        ctx = await run_in_threadpool(self._artifact_ctx, "dataset", request.path_params["ref"])
        return self.render("artifact", title=f"dataset {ctx['name']}", **ctx)

    # -- identity -----------------------------------------------------------------------
    def _identity_ctx(self, did: str) -> dict[str, Any]:
        led = self.ledger
        idxs = led.store.find(f"signer:{did}", -1, 501)
        reg = None
        for i in led.store.find(f"subject:{did}", -1, 200) + led.store.find(f"identity:{did}", -1, 1):
            e = led.entry(i)
            if e.type == "identity.register" and e.signer == did:
                reg = {"index": i, "name": str(e.body.get("name", ""))}
                break
        rev = led.store.find(f"revoked:{did}", -1, 1)
        return {"did": did, "rows": _rows(led, idxs[:500]), "more": len(idxs) > 500, "reg": reg,
                "revoked": rev[0] if rev else None}

    async def identity(self, request: Request) -> Response:
        did = request.path_params["did"]
        ctx = await run_in_threadpool(self._identity_ctx, did)
        return self.render("identity", title="identity", **ctx)

    # -- search --------------------------------------------------------------------------
    def _search_ctx(self, q: str) -> dict[str, Any]:
        led = self.ledger
        groups = []
        if len(q) > 512:
            return {"groups": [], "message": "query too long"}
        probes = [("subject", f"subject:{q}"), ("signed by", f"signer:{q}"), ("type", f"type:{q}"),
                  ("model", f"model:{q}"), ("dataset", f"dataset:{q}"), ("index term", q)]
        seen: set[str] = set()
        for title, term in probes:
            if term in seen:
                continue
            seen.add(term)
            idxs = _find(led, term, 100)
            if idxs:
                groups.append({"title": f"{title} = {q}", "rows": _rows(led, idxs)})
        if q.isascii() and q.isdigit() and int(q) < led.store.size():
            groups.insert(0, {"title": f"entry {q}", "rows": _rows(led, [int(q)])})
        return {"groups": groups, "message": "" if groups else f"nothing found for {q!r}"}

    async def search(self, request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        if not q:
            return self.render("search", title="search", groups=[], message="type a query", q=q)
        ctx = await run_in_threadpool(self._search_ctx, q)
        return self.render("search", title="search", q=q, **ctx)


class _Obj(dict):  # type: ignore[type-arg]
    """Dict whose keys read as attributes in templates."""

    def __getattr__(self, k: str) -> Any:
        return self.get(k)


def _q(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")


def _resolve(led: Any, rtype: str, ref: str) -> int:
    if ref.startswith("#") and ref[1:].isascii() and ref[1:].isdigit():
        if len(ref) > 20:  # more than 19 digits: beyond any log (and never an int() of thousands of digits)
            raise NotFoundError(f"entry {ref[:24]}... is beyond the log", field="ref")
        idx = int(ref[1:])
        if idx >= led.store.size() or led.entry(idx).type != rtype:
            raise NotFoundError(f"entry {ref} is not a {rtype}", field="ref")
        return idx
    kind = "model" if rtype == MODEL else "dataset"
    if rtype == MODEL:  # the effective registration (its owner's latest version): services.authority
        from ailedger.services.authority import model_registration

        return int(model_registration(led, ref)[0])
    hits = _find(led, f"{kind}:{ref}", 100000)
    hits = [i for i in hits if led.entry(i).type == rtype]
    if not hits:
        raise NotFoundError(f"no {kind} named {ref!r}", field="ref")
    return hits[-1]


def _lineage_nodes(led: Any, idx: int) -> list[dict[str, Any]]:
    """Links to every node of the lineage graph (the SVG itself has none)."""
    try:
        from ailedger.services.artifacts.lineage import lineage_graph
    except ImportError:
        return []
    out = []
    for n in lineage_graph(led, f"#{idx}")["nodes"]:
        kind = "dataset" if n.get("kind") == "dataset" else "model"
        out.append({"href": f"/{kind}/%23{int(n['index'])}", "text": f"{kind} {n.get('name')} (entry {n['index']})"})
    return out


def _lineage_svg(led: Any, idx: int, e: Any) -> str:
    try:
        from ailedger.services.artifacts.lineage import lineage_graph, lineage_svg

        return lineage_svg(lineage_graph(led, f"#{idx}"))
    except ImportError:
        pass
    # fallback: the record's own lineage fields as a one-level SVG
    from html import escape

    lin = e.body.get("lineage") or {}
    parents = [("dataset", d.get("name")) for d in lin.get("datasets") or [] if isinstance(d, dict)]
    if isinstance(lin.get("base_model"), dict):
        parents.append(("model", lin["base_model"].get("name")))
    h = 40 + 50 * max(1, len(parents))
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="620" height="{h}" font-family="sans-serif" '
            'font-size="12">')]
    for i, (k, n) in enumerate(parents):
        out.append(f'<rect x="10" y="{20 + 50 * i}" width="220" height="36" fill="#e8f1fb" stroke="#555"/>'
                   f'<text x="20" y="{42 + 50 * i}">{escape(k)}: {escape(str(n))}</text>'
                   f'<line x1="230" y1="{38 + 50 * i}" x2="380" y2="{h / 2}" stroke="#444"/>')
    out.append(f'<rect x="380" y="{h / 2 - 18}" width="220" height="36" fill="#eaf7e8" stroke="#c0392b"/>'
               f'<text x="390" y="{h / 2 + 4}">model: {escape(str(e.body.get("name")))}</text></svg>')
    return "".join(out)


def _witnesses(led: Any) -> list[dict[str, Any]]:
    try:
        from ailedger.services.witness import cosigned_checkpoint
    except ImportError:
        return []
    try:
        note = cosigned_checkpoint(led)
    except Exception:  # noqa: BLE001 - the page shows what exists
        return []
    if not note:
        return []
    n = parse_note(note)
    cp = parse_checkpoint_text(n.text)
    return [{"name": s.name, "size": cp.size} for s in n.signatures if s.name != led.origin]


def _anchors(led: Any) -> list[dict[str, Any]]:
    p = Path(led.path) / "anchors.db"
    if not p.exists():
        return []
    try:
        from ailedger.services.anchoring import AnchorQueue
    except ImportError:
        return []
    try:
        q = AnchorQueue(led.path)
        try:
            rs = q.receipts(statuses=("confirmed", "mined", "sent", "pending"))
        finally:
            q.close()
    except Exception:  # noqa: BLE001
        return []
    return [{"tree_size": r.tree_size, "chain_id": r.chain_id, "block_number": r.block_number,
             "tx_hash": r.tx_hash, "status": r.status} for r in rs[-20:]]


def web_routes(api: Any) -> list[Route]:
    p = Pages(api)
    g = p.guard
    return [
        Route("/", g(p.home), methods=["GET"]),
        Route("/entry/{index:index}", g(p.entry), methods=["GET"]),  # api.app's bounded index convertor
        Route("/model/{ref:path}", g(p.model), methods=["GET"]),
        Route("/dataset/{ref:path}", g(p.dataset), methods=["GET"]),
        Route("/identity/{did:path}", g(p.identity), methods=["GET"]),
        Route("/search", g(p.search), methods=["GET"]),
    ]
