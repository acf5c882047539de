"""The explorer's one search box: what a query names, and what kind of thing each hit is.

A query is tried as every kind of reference a newcomer may paste (an entry id ``#N`` or ``N``, a did:key, a
leaf hash / manifest root / dataset root / content SHA-256 (``sha256:`` prefix allowed), a CID, an inference
receipt id, a name, an index term) and every hit says what it is and where its page is.  Names of models
come from the authority fold (services.authority: complete whatever path wrote them); everything else from
the log's term index (services.ledger.entry_terms), and each candidate is re-read so that a hit is shown
only when the signed body says what the term claims.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ailedger.errors import AiledgerError, BadInputError
from ailedger.tlog.merkle import leaf_hash

__all__ = ["MAX_QUERY", "Hit", "search"]

MAX_QUERY = 512
PER_TERM = 50
MAX_HITS = 200
_ENTRY_ID = re.compile(r"#?([0-9]{1,19})")
_HEX64 = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64})")
_RECEIPT = re.compile(r"[0-9a-f]{12}-[0-9]{1,18}")
_CID = re.compile(r"(?:b[a-z2-7]{20,200}|Qm[1-9A-HJ-NP-Za-km-z]{44})")


@dataclass
class Hit:
    kind: str        # what it is: model, dataset, identity, content, proposal, inference batch, entry, ...
    label: str       # its name or number
    href: str        # its page
    matched: str     # what matched the query
    index: int | None = None
    detail: str = ""
    name: str | None = None  # the model / dataset name an entry hit is a version of


def _q(s: str) -> str:
    return quote(s, safe="")


def _short(s: str, n: int = 80) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def entry_hit(led: Any, idx: int, matched: str, direct: bool = False) -> Hit:
    """The hit for entry ``idx``, typed by the entry it is.  It leads to the record's page (a model registration
    to the model's page), or with ``direct`` (the query named the entry itself) to the entry's page."""
    h = _typed_hit(led, idx, matched)
    if direct:
        h.href = f"/entry/{idx}"
    return h


def _typed_hit(led: Any, idx: int, matched: str) -> Hit:
    from ailedger.authority.service import is_effective_registration, state

    e = led.entry(idx)
    b = e.body if isinstance(e.body, dict) else {}
    name = b.get("name") if isinstance(b.get("name"), str) else None
    detail = f"{e.type} by {e.signer[:24]}… at {e.time}"
    if e.type == "model.register" and name and is_effective_registration(led, idx):
        m = state(led).models.models.get(name)
        latest = bool(m and m.versions and m.versions[-1] == idx)
        href = f"/model/{_q(name)}" if latest else f"/model/%23{idx}"
        return Hit("model", name if latest else f"{name} (version at entry {idx})", href, matched, idx, detail,
                   name)
    if e.type == "dataset.commit":
        return Hit("dataset", name or f"#{idx}", f"/dataset/%23{idx}", matched, idx, detail, name)
    if e.type == "identity.register" and isinstance(b.get("did"), str) and b["did"] == e.signer:
        return Hit("identity", f"{name or '?'} ({e.signer[:24]}…)", f"/identity/{e.signer}", matched, idx, detail)
    if e.type == "gov.propose":
        from ailedger.governance import service as gov

        if idx in gov.state(led).proposals:
            desc = b.get("description") if isinstance(b.get("description"), str) else ""
            return Hit("proposal", _short(f"proposal {idx}: {desc}"), f"/proposals/{idx}", matched, idx, detail)
    if e.type == "content.register":
        return Hit("content", name or f"#{idx}", f"/entry/{idx}", matched, idx, detail)
    if e.type == "inference.batch":
        return Hit("inference batch", f"stream {b.get('stream')} batch {b.get('seq')}", f"/entry/{idx}", matched,
                   idx, detail)
    return Hit(f"entry ({e.type})", f"entry {idx}", f"/entry/{idx}", matched, idx, detail)


def _from_terms(led: Any, terms: list[tuple[str, str]], out: list[Hit], check: Any = None) -> None:
    for term, why in terms:
        for idx in led.store.find_newest(term, 0, PER_TERM):
            if check is not None and not check(led.entry(idx)):
                continue  # the index only finds candidates; the signed body must say it
            out.append(entry_hit(led, idx, why))


def _body_names_hash(e: Any, h: str) -> bool:
    b = e.body if isinstance(e.body, dict) else {}
    man: dict[str, Any] = b["manifest"] if isinstance(b.get("manifest"), dict) else {}
    subj: list[Any] = b["subjects"] if isinstance(b.get("subjects"), list) else []
    return h in (b.get("root"), b.get("sha256"), man.get("root")) or f"sha256:{h}" in subj


def search(led: Any, q: str) -> list[Hit]:
    """Every hit for ``q``, exact references first, each page once.  BadInputError for an over-long query."""
    q = q.strip()
    if len(q) > MAX_QUERY:
        raise BadInputError(f"the query is {len(q)} characters; at most {MAX_QUERY}", field="q")
    if not q:
        return []
    size = led.store.size()
    hits: list[Hit] = []
    m = _ENTRY_ID.fullmatch(q)
    if m and int(m.group(1)) < size:
        hits.append(entry_hit(led, int(m.group(1)), "entry id", direct=True))
    if q.startswith("did:key:"):
        from ailedger.encoding.identity import public_key_from_did

        try:
            public_key_from_did(q)
            hits.append(Hit("identity", _short(q, 40), f"/identity/{q}", "did:key", None,
                            f"{led.store.count(f'signer:{q}')} entries signed"))
        except AiledgerError:
            pass
    m = _HEX64.fullmatch(q)
    if m:
        h = m.group(1).lower()
        for idx in led.store.indices_of([bytes.fromhex(h)]).values():
            hits.append(entry_hit(led, int(idx), "leaf hash", direct=True))
        _from_terms(led, [(f"hash:{h}", "root / SHA-256"), (f"manifest:{h}", "manifest root"),
                          (f"dataset-root:{h}", "dataset root"), (f"subject:sha256:{h}", "subject SHA-256"),
                          (f"sha256:{h}", "content SHA-256")], hits, lambda e: _body_names_hash(e, h))
        cp = _checkpoint_with_root(led, h)
        if cp is not None:
            hits.append(Hit("checkpoint", f"checkpoint at size {cp}", f"/checkpoints/{cp}", "checkpoint root", None))
    if _CID.fullmatch(q):
        _from_terms(led, [(f"cid:{q}", "CID"), (f"blob:{q}", "CID")], hits,
                    lambda e: isinstance(e.body, dict) and e.body.get("cid") == q)
    if _RECEIPT.fullmatch(q):
        hits.extend(_receipt(led, q))
    # names: models from the authority fold (complete), the rest from the name index
    from ailedger.authority.service import model_status, state

    if q in state(led).models.models:
        st = model_status(led, q)
        hits.append(Hit("model", q, f"/model/{_q(q)}", "model name", st.registration,
                        f"{st.state}, {len(st.versions)} version(s)", q))
    if not q.startswith("#"):
        from ailedger.provenance.models import find_dataset

        try:
            di, de = find_dataset(led, q)  # the current version of the name (the service's version rule)
            hits.append(Hit("dataset", q, f"/dataset/{_q(q)}", "dataset name", di,
                            f"current version: entry {di} by {de.signer[:24]}… at {de.time}", q))
        except AiledgerError:
            pass
    _from_terms(led, [(f"name:{q}", "name"), (f"dataset:{q}", "dataset name")], hits,
                lambda e: isinstance(e.body, dict) and e.body.get("name") == q)
    # index terms as typed (type:..., subject:..., signer:..., a raw term)
    _from_terms(led, [(f"subject:{q}", "subject"), (q, "index term")], hits)
    if "." in q and led.store.count(f"type:{q}"):
        hits.append(Hit("entry type", q, f"/entries?type={_q(q)}", "entry type", None,
                        f"{led.store.count(f'type:{q}')} entries"))
    out: list[Hit] = []
    seen: set[str] = set()
    named = {(h.kind, h.name) for h in hits if h.matched in ("model name", "dataset name") and h.index is not None
             and h.href.startswith(("/model/", "/dataset/")) and "%23" not in h.href}
    for h in hits:
        if h.href in seen:
            continue
        if h.matched in ("name", "dataset name") and "%23" in h.href and (h.kind, h.name) in named:
            continue  # another version of a model or dataset found by its name: listed on its page
        seen.add(h.href)
        out.append(h)
        if len(out) >= MAX_HITS:
            break
    return out


def _checkpoint_with_root(led: Any, h: str) -> int | None:
    """The size of the latest stored checkpoint whose root is ``h`` (only the newest 1000 are looked at)."""
    import base64

    want = base64.b64encode(bytes.fromhex(h)).decode()
    for size, note in led.store.checkpoints_newest(0, 1000):
        lines = bytes(note).split(b"\n")
        if len(lines) > 2 and lines[2].decode(errors="replace") == want:
            return int(size)
    return None


def _receipt(led: Any, rid: str) -> list[Hit]:
    """An inference receipt id: the batch entry that commits to its record (read from the inference store,
    never written: a GET does not append a pending batch)."""
    p = Path(led.path) / "inference" / "records.db"
    if not p.exists():
        return []
    import sqlite3

    from ailedger.inference.store import split_rid, unpack_records

    stream, n = split_rid(rid)
    try:
        con = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return []
    try:
        for rids, entry, blob in con.execute(
                "SELECT rids, entry, records FROM batches WHERE stream=? AND n_min<=? AND n_max>=? ORDER BY id",
                (stream, n, n)):
            names = str(rids).split("\n")
            if rid not in names:
                continue
            pos = names.index(rid)
            got = led.store.indices_of([leaf_hash(bytes(entry))])
            rec = leaf_hash(unpack_records(bytes(blob))[pos]).hex()
            if not got:
                return [Hit("inference receipt", rid, "", "receipt id", None,
                            f"record {pos} of a batch not yet in the log")]
            idx = int(next(iter(got.values())))
            return [Hit("inference receipt", rid, f"/entry/{idx}", "receipt id", idx,
                        f"record {pos} of the batch in entry {idx}; record leaf hash {rec}")]
    except sqlite3.Error:
        return []
    finally:
        con.close()
    return []
