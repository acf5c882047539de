"""Explorer pages: log health, a menu to a list page per kind of record (web.lists), each record's page
(entry with proof and verdict, model with status, versions and lineage, dataset, identity, proposal,
checkpoint) and one search box (web.search).

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
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ailedger.encoding.records import parse_entry
from ailedger.errors import AiledgerError, BadInputError, NotFoundError, StorageError, TamperError
from ailedger.http import lists
from ailedger.http.errors import is_db_error
from ailedger.http.lists import summary
from ailedger.http.search import MAX_QUERY
from ailedger.http.search import search as run_search
from ailedger.tlog.checkpoint import parse_checkpoint_text
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.note import parse_note
from ailedger.tlog.proofbundle import parse_proof_bundle, verify_proof_bundle

__all__ = ["web_routes"]

log = logging.getLogger("ailedger.http")

_env = Environment(loader=FileSystemLoader(str(Path(__file__).parent / "templates")),
                   autoescape=select_autoescape(["html"]))
MODEL = "model.register"
DATASET = "dataset.commit"


def _row(idx: int, data: bytes) -> dict[str, Any]:
    try:
        e = json.loads(data)
    except ValueError:
        e = {}
    return {"index": idx, "type": str(e.get("type", "?")), "signer": str(e.get("signer", "?")),
            "time": str(e.get("time", "?")), "summary": summary(e)}


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
        ctx.setdefault("menu", [{"href": "/" + k, "label": v[0], "kind": k} for k, v in lists.KINDS.items()])
        ctx.setdefault("active", "")
        return HTMLResponse(_env.get_template(template_name + ".html").render(**ctx), status_code=status)

    def error(self, exc: AiledgerError) -> HTMLResponse:
        from ailedger.http.errors import status_of

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
                if is_db_error(exc):
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
                "anchors": _anchors(led), "counts": lists.counts(led, _witnesses(led), _anchors(led)),
                "cp": {"size": cp.size, "root": cp.root.hex(), "note": note.decode(errors="replace")}}

    async def home(self, request: Request) -> Response:
        ctx = await run_in_threadpool(self._home_ctx)
        return self.render("home", title="log health", active="home", **ctx)

    # -- entry ------------------------------------------------------------------------
    def _verdict_ctx(self, index: int) -> dict[str, Any]:
        """Entry ``index`` checked by the server (signature, stored leaf hash, inclusion proof to the signed
        checkpoint) and the data the page's script needs to check it again in the browser."""
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
        try:
            obj = json.loads(data) if e is None else e.to_dict()
        except ValueError:
            obj = {}
        if not isinstance(obj, dict):
            obj = {}
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
        return {"index": index, "obj": obj, "bundle": bundle.decode(errors="replace"),
                "leaf_hash": leaf_hash(data).hex(), "data_json": data_json, "log_vkey": led.verifier.vkey,
                "server_verdict": "passed" if server_ok else "FAILED: " + server_error}

    def _entry_ctx(self, index: int) -> dict[str, Any]:
        v = self._verdict_ctx(index)
        obj = v.pop("obj")
        links = []
        etype = obj.get("type")
        body = obj.get("body") if isinstance(obj.get("body"), dict) else {}
        if etype == MODEL:
            links.append({"href": f"/model/%23{index}", "text": "model page (status, versions, lineage)"})
        if etype == DATASET:
            links.append({"href": f"/dataset/%23{index}", "text": "dataset page"})
        if etype == "gov.propose":
            links.append({"href": f"/proposals/{index}", "text": "proposal page (state, votes)"})
        if isinstance(etype, str):
            links.append({"href": "/entries?type=" + _q(etype), "text": f"every {etype} entry"})
        for s in (body.get("subjects") or [])[:10] if isinstance(body.get("subjects"), list) else []:
            if isinstance(s, str):
                links.append({"href": "/search?q=" + _q(s), "text": s[:40]})
        return {**v, "e": _Obj(obj), "pretty": json.dumps(obj, indent=2, ensure_ascii=False), "links": links}

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
        versions: list[dict[str, Any]] = []
        status: dict[str, Any] | None = None
        ignored: str | None = None
        if kind == "model":
            from ailedger.authority.rules import model_name_of
            from ailedger.authority.service import is_effective_registration, model_status, state

            if is_effective_registration(led, idx):
                st = model_status(led, str(model_name_of(e)))  # the one rule set (docs/authority.md)
                status = st.to_dict()
                for v in reversed(st.versions):
                    ve = led.entry(v)
                    man = ve.body.get("manifest") if isinstance(ve.body.get("manifest"), dict) else {}
                    versions.append({"index": v, "time": ve.time, "root": str(man.get("root", "")),
                                     "files": man.get("files"), "bytes": man.get("bytes"), "shown": v == idx,
                                     "latest": v == st.versions[-1]})
            else:
                ignored = next((r for i, r in state(led).ignored if i == idx), "it names no model")
            if not ignored:
                svg, nodes = _lineage(led, idx, e)
            related = _rows(led, _find(led, f"base:{e.body.get('name')}"))
            title = "Fine-tunes"
        else:
            from ailedger.provenance.datasets import dataset_versions

            name = e.body.get("name")
            chain = dataset_versions(led, name)["versions"] if isinstance(name, str) else []  # its version rule
            for v in reversed(chain if idx in chain else []):
                ve = led.entry(v)
                versions.append({"index": v, "time": ve.time, "root": str(ve.body.get("root", "")),
                                 "files": ve.body.get("records"), "bytes": None, "shown": v == idx,
                                 "latest": v == chain[-1]})
            related = _rows(led, _find(led, f"trained-on:{name}"))
            title = "Models trained on it"
        verdict = self._verdict_ctx(idx)
        return {"kind": kind, "name": str(e.body.get("name", f"#{idx}")), "index": idx, "e": e, "svg": svg,
                "nodes": nodes, "mstatus": status, "ignored": ignored, "versions": versions,
                "related": related, "related_title": title, "data_json": verdict["data_json"],
                "server_verdict": verdict["server_verdict"], "log_vkey": verdict["log_vkey"],
                "pretty": json.dumps(e.to_dict(), indent=2, ensure_ascii=False)}

    async def model(self, request: Request) -> Response:
        ctx = await run_in_threadpool(self._artifact_ctx, "model", request.path_params["ref"])
        return self.render("artifact", title=f"model {ctx['name']}", active="models", **ctx)

    async def dataset(self, request: Request) -> Response:
        ctx = await run_in_threadpool(self._artifact_ctx, "dataset", request.path_params["ref"])
        return self.render("artifact", title=f"dataset {ctx['name']}", active="datasets", **ctx)

    # -- identity -----------------------------------------------------------------------
    def _identity_ctx(self, did: str, pg: int) -> dict[str, Any]:
        from ailedger.encoding.identity import public_key_from_did

        led = self.ledger
        total = led.store.count(f"signer:{did}")
        if not total:
            try:
                public_key_from_did(did)
            except AiledgerError:
                raise BadInputError(f"{did[:80]!r} is not an Ed25519 did:key (did:key:z6Mk...)",
                                    field="did") from None
        p = lists.paging(pg, total)
        reg = None
        for i in led.store.find(f"subject:{did}", -1, 200) + led.store.find(f"identity:{did}", -1, 1):
            e = led.entry(i)
            if e.type == "identity.register" and e.signer == did:
                reg = {"index": i, "name": str(e.body.get("name", ""))}
                break
        rev = led.store.find(f"revoked:{did}", -1, 1)
        return {"did": did, "rows": _rows(led, led.store.find_newest(f"signer:{did}", p["offset"], lists.PER_PAGE)),
                "p": p, "reg": reg, "revoked": rev[0] if rev else None, "base": f"/identity/{did}?"}

    async def identity(self, request: Request) -> Response:
        did = request.path_params["did"]
        pg = lists.page_number(request.query_params.get("page"))
        ctx = await run_in_threadpool(self._identity_ctx, did, pg)
        return self.render("identity", title="identity", active="identities", **ctx)

    # -- lists ---------------------------------------------------------------------------
    def list_page(self, kind: str) -> Any:
        async def handler(request: Request) -> Response:
            pg = lists.page_number(request.query_params.get("page"))
            etype = (request.query_params.get("type") or None) if kind == "entries" else None
            if etype is not None:
                lists.check_type(etype)
            ctx = await run_in_threadpool(lists.build, self.ledger, kind, pg, etype)
            base = f"/{kind}?" + (f"type={_q(etype)}&" if etype else "")
            return self.render("list", title=ctx["label"].lower(), active=kind, base=base, **ctx)
        handler.__name__ = f"list_{kind}"
        return handler

    # -- proposal ------------------------------------------------------------------------
    def _proposal_ctx(self, pid: int) -> dict[str, Any]:
        from ailedger.governance import service as gov

        led = self.ledger
        st = gov.state(led)
        prop = st.proposals.get(pid)
        if prop is None:
            raise NotFoundError(f"no proposal {pid}: proposals are numbered by the entry of their gov.propose "
                                f"({len(st.proposals)} in this log)", field="id")
        info = gov.proposal_info(led, pid)
        votes = [{"did": d, "support": sup, "weight": w, "index": i}
                 for d, (sup, w, i) in sorted(prop.voters.items(), key=lambda kv: kv[1][2])]
        try:  # the analyst's advice beside the proposal (ailedger.daoai; never read by the tally)
            from ailedger.daoai.analyst import effective_advice

            advice = [{"index": i, "signer": e.signer, **e.body} for i, e in effective_advice(led, pid)[0]]
        except ImportError:  # pragma: no cover - daoai extra (scikit-learn) not installed
            advice = []
        return {"pid": pid, "info": info, "votes": votes, "advice": advice,
                "actions": json.dumps(info["actions"], indent=2, ensure_ascii=False)}

    async def proposal(self, request: Request) -> Response:
        pid = int(request.path_params["pid"])
        ctx = await run_in_threadpool(self._proposal_ctx, pid)
        return self.render("proposal", title=f"proposal {pid}", active="proposals", **ctx)

    # -- subnet --------------------------------------------------------------------------
    def _subnet_ctx(self, name: str) -> dict[str, Any]:
        from ailedger.subnets import service as subnets

        info = subnets.show(self.ledger, name)
        eps = info["epoch_results"][-60:]
        top = max([sum(e["pay"]["miners"]) + sum(e["pay"]["validators"]) + e["pay"]["owner"] for e in eps] or [1]) or 1
        bars = []
        for k, e in enumerate(eps):
            parts = [(sum(e["pay"]["miners"]), "#2a7"), (sum(e["pay"]["validators"]), "#36c"), (e["pay"]["owner"], "#c83")]
            y = 160
            for amount, color in parts:
                h = round(150 * amount / top)
                y -= h
                bars.append({"x": 40 + k * 10, "y": y, "h": h, "color": color, "epoch": e["epoch"], "amount": amount})
        people = ([{"role": "miner", "uid": u, "did": d, "earned": info["earned"].get(d, 0),
                    "stake": info["stake"].get(d, 0)} for u, d in enumerate(info["miners"])]
                  + [{"role": "validator", "uid": u, "did": d, "earned": info["earned"].get(d, 0),
                      "stake": info["stake"].get(d, 0)} for u, d in enumerate(info["validators"])])
        return {"info": info, "epochs": list(reversed(info["epoch_results"][-50:])), "bars": bars,
                "people": people, "task": json.dumps(info["task"], indent=2, ensure_ascii=False),
                "width": 60 + 10 * len(eps)}

    async def subnet(self, request: Request) -> Response:
        name = request.path_params["name"]
        ctx = await run_in_threadpool(self._subnet_ctx, name)
        return self.render("subnet", title=f"subnet {name}", active="subnets", **ctx)

    # -- contract audits -----------------------------------------------------------------
    def _contract_ctx(self, sha: str) -> dict[str, Any]:
        from ailedger.contractaudit import service as audits

        if len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
            raise NotFoundError(f"{sha[:24]!r} is not a source SHA-256 (64 lowercase hex digits)", field="sha256")
        led = self.ledger
        idxs = sorted(_find(led, f"source:{sha}"), reverse=True)
        history = []
        for i in idxs:
            e = led.entry(i)
            if e.type == audits.AUDIT_TYPE and e.body.get("source_sha256") == sha:
                history.append({"index": i, "signer": e.signer, "time": e.time, "body": e.body})
        if not history:
            raise NotFoundError(f"no contract.audit of source {sha}", field="sha256")
        latest = history[0]
        _, _, report = audits.stored_report(led, f"#{latest['index']}")
        return {"sha": sha, "file": latest["body"].get("file", ""), "history": history, "latest": latest,
                "findings": (report or {}).get("findings"), "replay": f"ailedger audit-contract --replay '#{latest['index']}'"}

    async def contract(self, request: Request) -> Response:
        sha = request.path_params["sha"]
        ctx = await run_in_threadpool(self._contract_ctx, sha)
        return self.render("contract", title=f"contract {ctx['file']}", active="contracts", **ctx)

    # -- an EPCIS item's journey (docs/supply-chain.md) ----------------------------------
    def _item_ctx(self, epc: str) -> dict[str, Any]:
        from ailedger.supplychain.journey import journey, journey_svg

        j = journey(self.ledger, epc)
        return {"j": _Obj(j), "svg": journey_svg(j)}

    async def item(self, request: Request) -> Response:
        epc = request.path_params["epc"]
        ctx = await run_in_threadpool(self._item_ctx, epc)
        return self.render("item", title=f"item {epc}", **ctx)

    # -- checkpoint ----------------------------------------------------------------------
    def _checkpoint_ctx(self, size: int) -> dict[str, Any]:
        led = self.ledger
        note = led.store.checkpoint_at(size)
        if note is None:
            raise NotFoundError(f"no stored checkpoint at size {size}", field="size")
        f = lists.checkpoint_fields(note)
        cosigners: list[str] = []
        from ailedger.tlog.witness import cosigned_checkpoint

        cn = cosigned_checkpoint(led, size)
        if cn:
            cosigners = [x.name for x in parse_note(cn).signatures if x.name != led.origin]
        anchored = [a for a in lists.anchors(led) if a["tree_size"] == size]
        return {"size": size, "root": f["root"], "signers": f["signers"], "note": bytes(note).decode(errors="replace"),
                "cosigners": cosigners, "anchored": anchored, "last": size - 1}

    async def checkpoint(self, request: Request) -> Response:
        size = int(request.path_params["size"])
        ctx = await run_in_threadpool(self._checkpoint_ctx, size)
        return self.render("checkpoint", title=f"checkpoint {size}", active="checkpoints", **ctx)

    # -- search --------------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        q = request.query_params.get("q", "").strip()
        if not q:
            return self.render("search", title="search", hits=[], q=q, max_query=MAX_QUERY)
        hits = await run_in_threadpool(run_search, self.ledger, q)
        if len(hits) == 1 and hits[0].href:  # an exact hit: straight to its page
            return RedirectResponse(hits[0].href, status_code=303)
        return self.render("search", title="search", q=q, hits=hits, max_query=MAX_QUERY)


class _Obj(dict):  # type: ignore[type-arg]
    """Dict whose keys read as attributes in templates."""

    def __getattr__(self, k: str) -> Any:
        return self.get(k)


def _q(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")


def _resolve(led: Any, rtype: str, ref: str) -> int:
    """The entry a model / dataset page shows: ``#INDEX`` (that entry, if it is one), or a name resolved by
    the service's own rule (services.authority.model_registration: the owner's latest version;
    services.artifacts.find_dataset: the end of the name's version chain)."""
    kind = "model" if rtype == MODEL else "dataset"
    if ref.startswith("#"):
        digits = ref[1:]
        if not (digits.isascii() and digits.isdigit()) or len(digits) > 19:
            raise NotFoundError(f"{ref[:24]!r} is not an entry number (#12) or a {kind} name", field="ref")
        idx = int(digits)
        if idx >= led.store.size() or led.entry(idx).type != rtype:
            raise NotFoundError(f"entry {ref} is not a {rtype}", field="ref")
        return idx
    if rtype == MODEL:
        from ailedger.authority.service import model_registration

        return int(model_registration(led, ref)[0])
    from ailedger.provenance.models import find_dataset

    return int(find_dataset(led, ref)[0])


def _lineage(led: Any, idx: int, e: Any) -> tuple[str, list[dict[str, Any]]]:
    """The lineage graph of model entry ``idx`` as SVG, and a link to every node (the SVG itself has none)."""
    from ailedger.provenance.lineage import lineage_graph, lineage_svg

    g = lineage_graph(led, f"#{idx}")
    out = []
    for n in g["nodes"]:
        kind = "dataset" if n.get("kind") == "dataset" else "model"
        out.append({"href": f"/{kind}/%23{int(n['index'])}", "text": f"{kind} {n.get('name')} (entry {n['index']})"})
    return lineage_svg(g), out


def _witnesses(led: Any) -> list[dict[str, Any]]:
    try:
        return lists.witnesses(led)
    except Exception:
        log.exception("cannot read the witness state")
        return []


def _anchors(led: Any) -> list[dict[str, Any]]:
    try:
        return lists.anchors(led)[:20]
    except Exception:
        log.exception("cannot read the anchor queue")
        return []


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
        Route("/proposals/{pid:index}", g(p.proposal), methods=["GET"]),
        Route("/subnet/{name}", g(p.subnet), methods=["GET"]),
        Route("/contract/{sha}", g(p.contract), methods=["GET"]),
        Route("/item/{epc:path}", g(p.item), methods=["GET"]),
        Route("/checkpoints/{size:index}", g(p.checkpoint), methods=["GET"]),
    ] + [Route(f"/{kind}", g(p.list_page(kind)), methods=["GET"]) for kind in lists.KINDS]
