"""The authority rules applied to a ledger: one function per derived state, and one admission check that
every write path calls.

* :func:`model_status` -- the one answer to "may model NAME be used, and on whose word?" (a frozen
  :class:`~ailedger.authority.rules.ModelStatus`).  The gateway, the inference SDK, ``model verify``, the
  explorer and the HTTP API all call it.
* :func:`model_registration` -- the effective registration of a model name (the owner's latest version;
  a stranger's ``model.register`` of an owned name is ignored).  Every reader that looks a model up by
  name goes through it.
* :func:`admit` -- before anything is appended (HTTP ``POST /v1/entries`` and ``/batch``, ``ailedger
  append``, ``Ledger.append_entry`` / ``append_entries``): for each entry, None or the
  :class:`NotAuthorisedError` saying why its signer may not sign it with effect.
* :func:`write_genesis` -- the operator's ``log.genesis`` naming who may found the DAO.

The state is a fold over the log (``core.authority.AuthorityState``), cached per ledger in the process;
only entries appended since the last call are folded.  Every entry the fold applies has its signature
checked (these entries are few), so an entry forged into the store is ignored too.
"""

from __future__ import annotations

import base64
import copy
import functools
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ailedger.authority import hooks
from ailedger.authority.rules import (
    GENESIS,
    TIME_SKEW_SECONDS,
    AuthorityState,
    ModelStatus,
    fl_update_statement,
    operator_did,
)
from ailedger.authority.rules import (
    model_status as _combine,
)
from ailedger.encoding.identity import verify_did_signature
from ailedger.encoding.leaves import LightEntry
from ailedger.encoding.leaves import verify_leaf as _verify_one
from ailedger.encoding.refs import entry_ref
from ailedger.errors import (
    AiledgerError,
    BadInputError,
    ConflictError,
    NotAuthorisedError,
    NotFoundError,
    VerificationError,
)
from ailedger.tlog.sparse import indexed_leaves

__all__ = [
    "admit",
    "eval_reveal_allowed",
    "fl_entry_allowed",
    "guarded",
    "is_effective_registration",
    "model_owner",
    "model_registration",
    "model_status",
    "operator_of",
    "require_model_usable",
    "state",
    "write_genesis",
    "zk_setup_allowed",
]

_MARKS = (b'"type":"model.', b'"type":"log.', b'"type":"identity.', b'"type":"dataset.approve"',
          b'"type":"dataset.revoke"')
_INDEXED_TYPES = sorted(AuthorityState.TYPES | {GENESIS})
SPARSE_SCAN_FROM = 20000
BLOB_OWNED = ("blob.readers", "blob.supersede")
DATASET_OWNED = ("dataset.commit", "dataset.source-removal")
FL_RUN_OWNED = ("fl.round", "fl.remove")


def operator_of(ledger: Any) -> str:
    """The log operator's did:key (the log's signing key, fixed when the ledger was created)."""
    return operator_did(ledger.verifier.public_key)


# -- the fold, cached per ledger -----------------------------------------------------------------------------

def _relevant(leaf: bytes) -> bool:
    return any(m in leaf for m in _MARKS)


def _leaves(ledger: Any, start: int, end: int) -> Iterator[tuple[int, bytes]]:
    found = indexed_leaves(ledger.store, _INDEXED_TYPES, start, end) if end - start >= SPARSE_SCAN_FROM else None
    if found is not None:
        yield from found
        return
    for idx, _h, data in ledger.store.iter_leaves(start, end, 20000):
        data = bytes(data)
        if _relevant(data):
            yield idx, data


def fold(st: AuthorityState, items: Any) -> AuthorityState:
    for idx, leaf in items:
        try:
            e = LightEntry(leaf)
        except (ValueError, KeyError, TypeError):
            continue
        if not isinstance(e.type, str) or not AuthorityState.handles(e.type) or not isinstance(e.body, dict):
            continue
        try:
            good = _verify_one(leaf)
        except Exception:  # noqa: BLE001 - a malformed leaf is simply not a valid signature
            good = False
        if not good:
            st.ignored.append((idx, "signature does not verify"))
            continue
        st.replay_apply(idx, e)
    return st


_cache: dict[str, tuple[AuthorityState, int]] = {}
_lock = threading.RLock()  # held while folding and while admission reads the shared state


def _key(ledger: Any) -> str:
    return str(Path(ledger.path).resolve())


def state(ledger: Any) -> AuthorityState:
    """The authority state at the ledger's current size (cached; only new entries are folded)."""
    with _lock:
        key = _key(ledger)
        st, done = _cache.get(key, (None, 0))
        size = ledger.size
        if st is None or done > size or st.config.operator != operator_of(ledger):
            st, done = AuthorityState(operator_of(ledger)), 0
        if size > done:
            fold(st, _leaves(ledger, done, size))
            done = size
        _cache[key] = (st, done)
        return st


def replay(ledger: Any) -> AuthorityState:
    """A fresh fold from entry 0 (every leaf scanned)."""
    return fold(AuthorityState(operator_of(ledger)), (
        (i, bytes(d)) for i, _h, d in ledger.store.iter_leaves(0, ledger.size, 20000) if _relevant(bytes(d))))


# -- models ------------------------------------------------------------------------------------------------

def model_status(ledger: Any, name: str) -> ModelStatus:
    """Whether model ``name`` may be used and on whose word: the owner's ruling and the DAO's, combined by
    the rules of docs/authority.md.  ``status.usable`` is False for ``revoked`` and ``suspended``."""
    st = state(ledger)
    view = hooks.dao()  # the DAO's side of the model-status protocol (ailedger.governance), when installed
    dao = view.model_ruling(ledger, name) if view is not None else None
    return _combine(st.models, name, dao)


def require_model_usable(ledger: Any, name: str) -> ModelStatus:
    """Raise :class:`VerificationError` ("model m1 was revoked by proposal 3 ...") unless usable."""
    s = model_status(ledger, name)
    if not s.usable:
        raise VerificationError(s.describe(), expected="a usable model", found=f"{s.state} by {s.by}", model=name,
                                status=s.to_dict())
    return s


def model_owner(ledger: Any, name: str) -> str | None:
    return state(ledger).models.owner_of(name)


def is_effective_registration(ledger: Any, index: int) -> bool:
    """Is the ``model.register`` at ``index`` one the rules honour (not a stranger's claim on an owned name)?"""
    return index in state(ledger).models.registrations


def model_registration(ledger: Any, ref: str) -> tuple[int, Any]:
    """The effective registration a reference names: ``NAME`` (the owner's latest version), ``#INDEX`` (that
    entry, if it is an effective registration) or a manifest root (the latest effective registration with
    it).  NotFoundError otherwise, saying when a registration exists but is ignored and why."""
    st = state(ledger)
    idx = entry_ref(ref, "model")  # "#N", ASCII digits; a malformed "#..." is BadInputError
    if idx is not None:
        if idx >= ledger.size:
            raise NotFoundError(f"no entry {ref}", field="model")
        e = ledger.entry(idx)
        if e.type != "model.register":
            raise NotFoundError(f"entry {ref} is a {e.type}, not a model.register", field="model")
        if not is_effective_registration(ledger, idx):
            why = next((r for i, r in st.ignored if i == idx), "it names no model")
            raise NotFoundError(f"entry {ref} is a model.register the rules ignore: {why}", field="model")
        return idx, e
    m = st.models.models.get(ref)
    if m is not None and m.versions:
        return m.versions[-1], ledger.entry(m.versions[-1])
    best = None
    # ``hash:`` is what every write path indexes a manifest root under; ``manifest:`` what older ledgers carry
    for term in (f"hash:{ref}", f"manifest:{ref}"):
        for idx, e in ledger.find(type="model.register", term=term):
            m = e.body.get("manifest") if isinstance(e.body, dict) else None
            # the term index only finds candidates: the signed body must name this root
            if isinstance(m, dict) and m.get("root") == ref and is_effective_registration(ledger, idx) \
                    and (best is None or idx > best[0]):
                best = (idx, e)
    if best is None:
        raise NotFoundError(f"no registered model named {ref!r}", field="model")
    return best


# -- admission: the check every write path makes -------------------------------------------------------------

def _gov_types() -> frozenset[str]:
    view = hooks.dao()
    return view.types if view is not None else frozenset()


@functools.lru_cache(maxsize=4096)  # a pure function of the type; asked once or twice per entry written
def _guarded(t: str) -> bool:
    return (AuthorityState.handles(t) or t.startswith(("gov.", "stake.")) or t in BLOB_OWNED
            or t == "blob.attach" or t in DATASET_OWNED or t in FL_RUN_OWNED or t in ("model.zk", "eval.reveal")
            or hooks.judge_for(t) is not None)


# Does the signer's standing matter for entries of this type?  (The kernel's admission protocol asks.)
guarded = _guarded


def _blob_owner_check(ledger: Any, st: AuthorityState, e: Any) -> None:
    put = e.body.get("put")
    if type(put) is not int or not 0 <= put < ledger.size:
        raise NotAuthorisedError(f"{e.type} by {e.signer} has no effect: body.put names no blob.put entry",
                                 field="body.put")
    p = ledger.entry(put)
    if p.type != "blob.put":
        raise NotAuthorisedError(f"{e.type} by {e.signer} has no effect: entry {put} is a {p.type}, not a blob.put",
                                 field="body.put")
    if e.signer != p.signer:  # per key, as the blob fold (BlobService.state): the content key is wrapped to it
        raise NotAuthorisedError(f"{e.type} by {e.signer} has no effect: only the blob's owner {p.signer} (signer "
                                 f"of entry {put}) may change it", field="signer")


def attach_allowed(ledger: Any, index_or_entry: Any) -> str | None:
    """Why a ``blob.attach`` has no effect (None when it does): its signer must own the artifact record."""
    e = index_or_entry if not isinstance(index_or_entry, int) else ledger.entry(index_or_entry)
    st = state(ledger)
    rec = e.body.get("record")
    if type(rec) is not int or not 0 <= rec < ledger.size:
        return "body.record names no entry of this log"
    r = ledger.entry(rec)
    if r.type not in ("model.register", "dataset.commit"):
        return f"entry {rec} is a {r.type}, not a model or dataset record"
    if not st.keys.acts_for(e.signer, st.keys.principal(r.signer)):
        return f"only the signer of record {rec} ({r.signer}) may attach a stored copy to it"
    return None


def _fl_removed(ledger: Any, run: int, run_signer: str, st: AuthorityState) -> dict[str, int]:
    """Clients removed from federated run ``run`` by its server: did -> index of the ``fl.remove``."""
    out: dict[str, int] = {}
    for idx in ledger.store.find("type:fl.remove", run, 100000):
        r = ledger.entry(idx)
        if r.body.get("run") == run and st.keys.acts_for(r.signer, st.keys.principal(run_signer)):
            c = r.body.get("client")
            if isinstance(c, str):
                out.setdefault(c, idx)
    return out


def _author_only(ledger: Any, e: Any, field: str, rtype: str, missing: str,
                 not_author: str) -> tuple[int, Any, AuthorityState] | str:
    """``e`` acts on the ``rtype`` entry at ``body.<field>`` and only that entry's signer (or the key it rotated
    to) may sign it: (its index, the entry, the authority state), or why not (``missing`` when the field names
    no entry; ``not_author`` formatted with the entry's ``signer``, ``index`` and ``e``'s ``type``)."""
    i = e.body.get(field)
    if type(i) is not int or not 0 <= i < ledger.size:
        return missing
    r = ledger.entry(i)
    if r.type != rtype:
        return f"entry {i} is a {r.type}, not an {rtype}"
    st = state(ledger)
    if not st.keys.acts_for(e.signer, st.keys.principal(r.signer)):
        return not_author.format(signer=r.signer, index=i, type=e.type)
    return i, r, st


def fl_entry_allowed(ledger: Any, e: Any, *, before: int | None = None) -> str | None:
    """Why an ``fl.round`` / ``fl.remove`` has no effect (None when it does): its signer must be the run's
    server (the signer of the ``fl.run`` at ``body.run``, or the key it rotated to); every update an
    ``fl.round`` lists must come from a client enrolled in the run, registered, not revoked, not removed
    before the round (``before``: the round's own index; default the end of the log), and carry that
    client's valid signature over :func:`~ailedger.authority.rules.fl_update_statement`.  The federated
    fold (``federated.audit``) and admission both call this."""
    found = _author_only(ledger, e, "run", "fl.run", "body.run names no fl.run entry of this log",
                         "only the run's server {signer} (signer of entry {index}) may sign its {type}")
    if isinstance(found, str):
        return found
    run, r, st = found
    if e.type != "fl.round":
        return None
    enrolled = r.body.get("clients")
    enrolled = set(enrolled) if isinstance(enrolled, list) else set()
    removed = _fl_removed(ledger, run, r.signer, st)
    end = ledger.size if before is None else before
    rnd, base, clients = e.body.get("round"), e.body.get("root_before"), e.body.get("clients")
    if type(rnd) is not int or not isinstance(base, str) or not isinstance(clients, list):
        return "fl.round needs body.round (int), body.root_before (hex) and body.clients (list)"
    registered = {d for d in (c.get("did") for c in clients if isinstance(c, dict)) if isinstance(d, str)
                  and any(True for _ in ledger.find(type="identity.register", signer=d, limit=1))}
    for c in clients:
        did = c.get("did") if isinstance(c, dict) else None
        if not isinstance(did, str) or did not in enrolled:
            return f"client {did} is not enrolled in run {run}"
        if did not in registered:
            return f"client {did} is not a registered identity"
        if not st.keys.can_act(did):
            return f"client {did} cannot sign: {st.keys.why_not(did, st.keys.principal(did))}"
        if did in removed and removed[did] < end:
            return f"client {did} was removed from run {run} at entry {removed[did]}"
        try:
            msg = fl_update_statement(run, rnd, c["digest"], c["n"], base)
            verify_did_signature(did, msg, base64.b64decode(c["sig"], validate=True))
        except (KeyError, TypeError, ValueError, VerificationError):
            return f"client {did}'s signature on its round {rnd} update does not verify"
    return None


def zk_setup_allowed(ledger: Any, e: Any, index: int, *, admission: bool = False) -> str | None:
    """Why a ``model.zk`` (a circuit bound to a registered model) has no effect, None when it has: its signer
    must act for the owner of ``body.model``, ``body.model_index`` must be an effective registration of that
    name logged before it, and (when it is logged) the model must be usable: a revoked or suspended model gets
    no new circuit.  Every reader of a binding (``verifiable.zk``) asks this."""
    st = state(ledger)
    name, reg = e.body.get("model"), e.body.get("model_index")
    if not isinstance(name, str) or type(reg) is not int:
        return "body.model (a name) and body.model_index (its model.register entry) are required"
    owner = st.models.owner_of(name)
    if owner is None:
        return f"model {name} is not registered in this ledger"
    if not st.keys.acts_for(e.signer, owner):
        return f"only the owner of model {name} may bind a circuit to it; " + st.keys.why_not(e.signer, owner)
    if st.models.registrations.get(reg) != name or reg >= index:
        return f"entry {reg} is not an effective registration of model {name} before this entry"
    if admission:
        s = _combine(st.models, name, _dao_ruling(ledger, name))
        if not s.usable:
            return f"model {name} is {s.state}: {s.describe()}"
    return None


def eval_reveal_allowed(ledger: Any, e: Any) -> str | None:
    """Why an ``eval.reveal`` has no effect, None when it has: ``body.commit`` must be an ``eval.commit`` and
    its signer the committer (or the committer's rotated key).  ``verifiable.evalreveal`` asks this."""
    found = _author_only(ledger, e, "commit", "eval.commit", "body.commit names no entry of this log",
                         "only the committer of entry {index} ({signer}) may reveal it")
    return found if isinstance(found, str) else None


def _dao_ruling(ledger: Any, name: str) -> Any:
    view = hooks.dao()
    return view.model_ruling(ledger, name) if view is not None else None


def _dataset_check(ledger: Any, e: Any) -> None:
    """Dataset name ownership lives with the dataset feature (``provenance.datasets.dataset_owner``, installed
    through :mod:`ailedger.authority.hooks`); used when present."""
    owner_fn = hooks.dataset_owner()
    name = e.body.get("name") if e.type == "dataset.commit" else e.body.get("dataset")
    if owner_fn is None or not isinstance(name, str):
        return
    try:
        owner = owner_fn(ledger, name)
    except NotFoundError:
        return
    if owner is None:
        return
    owner = owner if isinstance(owner, str) else getattr(owner, "did", None) or getattr(owner, "signer", None)
    st = state(ledger)
    if isinstance(owner, str) and not st.keys.acts_for(e.signer, st.keys.principal(owner)):
        raise NotAuthorisedError(f"{e.type} by {e.signer} has no effect: dataset {name} belongs to its original "
                                 f"committer {owner}", field="signer")


def admit(ledger: Any, entries: Sequence[Any], *, governance_checked: bool = False) -> list[AiledgerError | None]:
    """For each entry (taken in order, as if appended at ``ledger.size`` onwards): None if its signer may
    sign it with effect, else the :class:`NotAuthorisedError` saying why.  Nothing is changed.

    Only authority is judged here: a malformed governance entry by someone with standing is not refused
    (the fold ignores it, as before); ``services.governance`` refuses those itself before logging."""
    out: list[AiledgerError | None] = [None] * len(entries)
    guarded = [i for i, e in enumerate(entries) if _guarded(e.type)]
    if not guarded:
        return out
    gov_types = _gov_types()
    g_sim = None
    view = hooks.dao()
    if not governance_checked:
        if view is None:
            for i in guarded:
                if entries[i].type.startswith(("gov.", "stake.")):
                    out[i] = NotAuthorisedError(
                        f"{entries[i].type} by {entries[i].signer} cannot be judged: the governance capability "
                        "is not installed (install ailedger[governance])", field="type")
        elif any(entries[i].type in gov_types for i in guarded):
            g_sim = view.simulator(ledger)  # a private copy, taken under the DAO's own lock
    with _lock:
        _admit(ledger, entries, [i for i in guarded if out[i] is None], gov_types, g_sim, out)
    return out


def _admit(ledger: Any, entries: Sequence[Any], guarded: list[int], gov_types: frozenset[str], g_sim: Any,
           out: list[AiledgerError | None]) -> None:
    a_st = state(ledger)
    a_sim = copy.deepcopy(a_st) if sum(1 for i in guarded if AuthorityState.handles(entries[i].type)) > 1 else None
    base = ledger.size
    for i in guarded:
        e = entries[i]
        index = base + i
        try:
            if AuthorityState.handles(e.type):
                if a_sim is not None:
                    a_sim.apply(index, e)
                else:
                    a_st.check(index, e)
            if g_sim is not None and e.type in gov_types:
                try:
                    g_sim.apply(index, e)
                except NotAuthorisedError:
                    raise
                except AiledgerError:
                    pass  # not a question of authority: the fold will judge (and ignore) it
            if e.type in BLOB_OWNED:
                _blob_owner_check(ledger, a_sim or a_st, e)
            elif e.type == "blob.attach":
                why = attach_allowed(ledger, e)
                if why:
                    raise NotAuthorisedError(f"blob.attach by {e.signer} has no effect: {why}", field="signer")
            elif e.type in DATASET_OWNED:
                _dataset_check(ledger, e)
            elif e.type in FL_RUN_OWNED:
                why = fl_entry_allowed(ledger, e)
                if why:
                    raise NotAuthorisedError(f"{e.type} by {e.signer} has no effect: {why}", field="body")
            elif e.type == "model.zk":
                why = zk_setup_allowed(ledger, e, index, admission=True)
                if why:
                    raise NotAuthorisedError(f"model.zk by {e.signer} has no effect: {why}", field="signer")
            elif e.type == "eval.reveal":
                why = eval_reveal_allowed(ledger, e)
                if why:
                    raise NotAuthorisedError(f"eval.reveal by {e.signer} has no effect: {why}", field="signer")
        except NotAuthorisedError as exc:
            out[i] = exc
        except BadInputError:
            pass  # malformed or conflicting, not a question of standing: the fold ignores it, as before
    judged: dict[Any, list[int]] = {}
    for i in guarded:
        judge = hooks.judge_for(entries[i].type) if out[i] is None else None
        if judge is not None:
            judged.setdefault(judge, []).append(i)
    for judge, ixs in judged.items():  # a capability's own rules, on its entries of the batch, in order
        try:
            verdicts = judge(ledger, [(base + i, entries[i]) for i in ixs])
        except BadInputError:
            continue  # cannot be judged here (e.g. its extra is missing): the fold decides
        for i, err in zip(ixs, verdicts, strict=True):
            if isinstance(err, NotAuthorisedError):
                out[i] = err


def raise_first(errors: Sequence[AiledgerError | None]) -> None:
    for err in errors:
        if err is not None:
            raise err


# -- genesis -------------------------------------------------------------------------------------------------

def write_genesis(ledger: Any, founders: Sequence[str], *, note: str = "") -> int:
    """Log the operator's ``log.genesis`` (signed with the log key): who may found the DAO.  Once per log."""
    op = ledger.operator_identity()
    st = state(ledger)
    if st.config.genesis is not None:
        raise ConflictError(f"this log already has its genesis (entry {st.config.genesis}): "
                            f"{st.config.founding_rule()}", field="founders")
    fs = list(dict.fromkeys(founders))
    body: dict[str, Any] = {"operator": op.did, "founders": fs, "time_skew_seconds": TIME_SKEW_SECONDS,
                            "subjects": [op.did, *fs]}
    if note:
        body["note"] = note
    res = ledger.append_record(GENESIS, body, op)
    if res.duplicate:
        raise BadInputError("this genesis entry is already logged", field="founders")
    return int(res.index)


def genesis_info(ledger: Any) -> dict[str, Any]:
    st = state(ledger)
    c = st.config
    return {"operator": c.operator, "genesis": c.genesis, "founders": list(c.founders),
            "founding_rule": c.founding_rule()}
