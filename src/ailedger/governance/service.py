"""DAO governance of models and datasets on the ledger: tokens, reputation, delegation, proposals,
signed votes, timelocked execution and the guardian kill switch.

The rules are the pure fold in :mod:`ailedger.governance.state`; this module signs entries, checks
them against the replayed state *before* they are logged (bad input changes nothing), appends them, and
answers questions (``model_status``, ``proposal_info``, ``recount``).

Functions other features call:

* ``model_status(ledger, name) -> dict | None`` -- the DAO's own ruling on a model (``{"state": "revoked",
  "by": "proposal 3", ...}``, ``{"state": "suspended", "by": "guardians (2 of 3)", ...}``, ``approved`` /
  ``active``; None when governance never ruled on it).  It is one input of
  ``services.authority.model_status``, the one answer to "may this model be used?" (which also weighs the
  owner's own revocation): call that one to decide.
* ``require_model_usable(ledger, name)`` -- raises VerificationError "model m1 was revoked by proposal 3"
  (through ``services.authority``).
* ``dataset_status(ledger, name) -> dict | None``.

Entries are dated by the ledger's clock (``ledger.now()``); ``time=`` must lie within the stated skew of it
(600 s, as on HTTP), so no signer can move the governance clock ahead.  Tests control the clock by setting
``ledger.clock``.
"""

from __future__ import annotations

import base64
import collections
import copy
import fcntl
import multiprocessing
import os
import random
import threading
import time as _time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ailedger.authority.service import genesis_info, operator_of, write_genesis
from ailedger.authority.service import require_model_usable as _require
from ailedger.encoding.identity import public_key_from_did
from ailedger.encoding.leaves import LightEntry
from ailedger.encoding.leaves import verify_leaf as _verify_one
from ailedger.encoding.records import SignedEntry, build_entry, parse_entry
from ailedger.errors import (
    AiledgerError,
    BadInputError,
    NotFoundError,
    SignatureError,
    VerificationError,
)
from ailedger.governance.state import (
    ACTION_KINDS,
    CONTEXT_TYPES,
    GOV_TYPES,
    STAKE_TYPES,
    STRATEGIES,
    GovState,
    check_action,
    guardian_statement,
    iso,
    time_ms,
    vote_weight,
)
from ailedger.tlog.sparse import indexed_leaves

__all__ = [
    "ACTION_KINDS",
    "STRATEGIES",
    "AuthorityView",
    "LightEntry",
    "balances",
    "cancel",
    "dataset_status",
    "delegate",
    "execute",
    "grant_reputation",
    "guardian_cosign",
    "guardian_suspend",
    "init_dao",
    "mint",
    "model_status",
    "proposal_info",
    "propose",
    "queue",
    "recount",
    "replay",
    "simulate",
    "state",
    "submit",
    "transfer",
    "verify_leaves",
    "vote",
]

_TYPE_MARKS = (b'"type":"gov.', b'"type":"stake.', b'"type":"log.genesis"', b'"type":"identity.revoke"')
_ALL_TYPES = frozenset(GOV_TYPES + STAKE_TYPES + CONTEXT_TYPES)
_VERIFY_IN_LIVE_FOLD = frozenset(CONTEXT_TYPES + ("gov.init",))


def is_gov_leaf(leaf: bytes) -> bool:
    return any(m in leaf for m in _TYPE_MARKS)


# -- signature checks on many leaves (process pool) ------------------------------------------------------

def verify_leaves(items: Sequence[tuple[int, bytes]]) -> list[int]:
    """Worker: the indices whose signature does not hold (fast path, then the strict parser to confirm)."""
    bad = []
    for idx, leaf in items:
        try:
            if _verify_one(leaf):
                continue
        except Exception:  # noqa: BLE001, S110 - any oddity goes to the strict path
            pass
        try:
            parse_entry(leaf, verify=True)
        except AiledgerError:
            bad.append(idx)
    return bad


# -- replay ---------------------------------------------------------------------------------------------

def _gov_leaves(ledger: Any, start: int, end: int, batch: int = 20000) -> Iterator[tuple[int, bytes]]:
    for idx, _h, data in ledger.store.iter_leaves(start, end, batch):
        data = bytes(data)
        if is_gov_leaf(data):
            yield idx, data


SPARSE_SCAN_FROM = 20000


def _indexed_gov_leaves(ledger: Any, start: int, end: int) -> Iterator[tuple[int, bytes]] | None:
    """Governance leaves in [start, end) found through the log's type index; None when they are not sparse,
    so scanning is cheaper."""
    return indexed_leaves(ledger.store, sorted(_ALL_TYPES - {"identity.revoke"}) + ["identity.revoke"], start, end)


def _sig_ok(leaf: bytes) -> bool:
    try:
        return _verify_one(leaf)
    except Exception:  # noqa: BLE001 - malformed: not a valid signature
        return False


def _operator(ledger: Any) -> str:
    return operator_of(ledger)


def fold(st: GovState, items: Iterable[tuple[int, bytes]], bad: set[int] | None = None) -> GovState:
    """Apply governance leaves in order; entries that are not governance records are skipped."""
    for idx, leaf in items:
        try:
            e = LightEntry(leaf)
        except (ValueError, KeyError, TypeError):  # orjson.JSONDecodeError is a ValueError
            continue
        if e.type not in _ALL_TYPES:
            continue
        if bad and idx in bad:
            st.rejected.append((idx, "signature does not verify"))
            continue
        if bad is None and e.type in _VERIFY_IN_LIVE_FOLD and not _sig_ok(leaf):
            # the few entries that decide who founds the DAO are checked even in the live fold
            st.rejected.append((idx, "signature does not verify"))
            continue
        st.replay_apply(idx, e)
    return st


def replay(ledger: Any, *, upto: int | None = None, verify_signatures: bool = False, workers: int | None = None,
           progress: Any = None) -> GovState:
    """Recompute the governance state from the log alone (a fresh fold from entry 0)."""
    end = ledger.size if upto is None else min(upto, ledger.size)
    st = GovState(_operator(ledger))
    if not verify_signatures:
        for idx, leaf in _gov_leaves(ledger, 0, end):
            fold(st, [(idx, leaf)])
            if progress is not None and st.applied % 10000 == 0:
                progress(st.applied)
        return st
    n = workers or os.cpu_count() or 1
    step = 4000
    window: collections.deque[tuple[list[tuple[int, bytes]], Any]] = collections.deque()
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(n) as pool:
        def drain_one() -> None:
            items, res = window.popleft()
            fold(st, items, set(res.get()) | {-1})
        batch: list[tuple[int, bytes]] = []
        for item in _gov_leaves(ledger, 0, end):
            batch.append(item)
            if len(batch) >= step:
                window.append((batch, pool.apply_async(verify_leaves, (batch,))))
                batch = []
                if len(window) > 2 * n + 2:
                    drain_one()
        if batch:
            window.append((batch, pool.apply_async(verify_leaves, (batch,))))
        while window:
            drain_one()
    return st


_cache: dict[str, tuple[GovState, int]] = {}
_cache_lock = threading.Lock()


def _key(ledger: Any) -> str:
    return str(Path(ledger.path).resolve())


def state(ledger: Any) -> GovState:
    """The current state (cached per ledger; only entries appended since the last call are folded).

    Large gaps are read through the log's ``type:`` index when governance entries are sparse in them (a
    log full of inference records); ``replay`` always scans every leaf, and ``gov replay`` reports whether
    the two agree."""
    with _cache_lock:
        key = _key(ledger)
        st, done = _cache.get(key, (None, 0))
        size = ledger.size
        if st is None or done > size:
            st, done = GovState(_operator(ledger)), 0
        if size > done:
            found = _indexed_gov_leaves(ledger, done, size) if size - done >= SPARSE_SCAN_FROM else None
            fold(st, found if found is not None else _gov_leaves(ledger, done, size))
            done = size
        _cache[key] = (st, done)
        return st


def _invalidate(ledger: Any) -> None:
    with _cache_lock:
        _cache.pop(_key(ledger), None)


@contextmanager
def _locked(ledger: Any) -> Iterator[None]:
    with open(Path(ledger.path) / "governance.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _now(ledger: Any) -> str:
    return str(ledger.now())


def submit(ledger: Any, record_type: str, body: dict[str, Any], ident: Any, *, time: str | None = None,
           terms: Iterable[str] = ()) -> tuple[int, GovState]:
    """Sign, check against the replayed state, then log one governance/staking entry.

    ``time`` defaults to the ledger's clock and must lie within its skew.  A refused entry raises with the
    reason and nothing is logged."""
    entry = build_entry(record_type, body, ident.did, time or _now(ledger), ident.sign)
    return submit_entry(ledger, entry, terms=terms)


def submit_entry(ledger: Any, entry: SignedEntry, *, terms: Iterable[str] = ()) -> tuple[int, GovState]:
    if entry.type not in GOV_TYPES + STAKE_TYPES:
        raise BadInputError(f"{entry.type} is not a governance or staking record", field="type")
    entry.verify()
    ledger.check_signer_allowed(entry)
    ledger.check_time(entry.time)  # before the fold sees it: no entry moves the governance clock ahead
    with _locked(ledger):
        st = state(ledger)
        expected = ledger.size
        st.apply(expected, entry)  # raises and changes nothing when the rules refuse it
        try:
            res = ledger.append_entry(entry, terms=terms, governance_checked=True)
        except BaseException:
            _invalidate(ledger)
            raise
        if res.duplicate or res.index != expected:
            _invalidate(ledger)  # someone else appended meanwhile: recompute from the log
            st = state(ledger)
        else:
            with _cache_lock:
                _cache[_key(ledger)] = (st, expected + 1)
    return res.index, st


# -- writes ---------------------------------------------------------------------------------------------

def name_founders(ledger: Any, founders: Sequence[str], *, note: str = "") -> dict[str, Any]:
    """The operator names who may found the DAO (``log.genesis``, signed with the log key; once per log)."""
    for d in founders:
        verify_did(d)
    idx = write_genesis(ledger, founders, note=note)
    _invalidate(ledger)
    return {"index": idx, **genesis_info(ledger)}


def init_dao(ledger: Any, ident: Any, name: str, *, params: dict[str, Any] | None = None,
             allocations: dict[str, int] | None = None, reputation: dict[str, int] | None = None,
             time: str | None = None) -> dict[str, Any]:
    body = {"name": name, "params": params or {}, "allocations": allocations or {}, "reputation": reputation or {}}
    idx, st = submit(ledger, "gov.init", body, ident, time=time)
    return {"index": idx, "dao": st.dao, "name": st.name, "params": st.params, "supply": st.supply.now()}


def mint(ledger: Any, ident: Any, allocations: dict[str, int], *, time: str | None = None) -> dict[str, Any]:
    idx, st = submit(ledger, "gov.mint", {"allocations": allocations}, ident, time=time)
    return {"index": idx, "supply": st.supply.now()}


def transfer(ledger: Any, ident: Any, to: str, amount: int, *, time: str | None = None) -> dict[str, Any]:
    idx, st = submit(ledger, "gov.transfer", {"to": to, "amount": amount}, ident, time=time)
    return {"index": idx, "from": ident.did, "to": to, "amount": amount, "balance": st.balances.get(ident.did, 0)}


def delegate(ledger: Any, ident: Any, to: str, *, time: str | None = None) -> dict[str, Any]:
    idx, st = submit(ledger, "gov.delegate", {"to": to}, ident, time=time)
    return {"index": idx, "delegator": ident.did, "delegate": to, "votes_of_delegate": st.votes_now(to)}


def grant_reputation(ledger: Any, ident: Any, grants: dict[str, int], *, reason: str = "",
                     time: str | None = None) -> dict[str, Any]:
    idx, _ = submit(ledger, "gov.reputation", {"grants": grants, "reason": reason}, ident, time=time)
    return {"index": idx, "grants": grants}


def propose(ledger: Any, ident: Any, actions: list[dict[str, Any]], description: str, *,
            time: str | None = None) -> dict[str, Any]:
    for a in actions:
        check_action(a)
    subjects = sorted({f"model:{a['model']}" for a in actions if "model" in a}
                      | {f"dataset:{a['dataset']}" for a in actions if "dataset" in a})
    body = {"actions": actions, "description": description, "subjects": subjects}
    idx, st = submit(ledger, "gov.propose", body, ident, time=time)
    return st.proposals[idx].to_dict(st.clock)


def _pref(st: GovState, pid: int) -> dict[str, Any]:
    return {"proposal": pid, "proposal_hash": st.proposal(pid).leaf_hash}


def vote(ledger: Any, ident: Any, proposal: int, support: str, *, reason: str = "",
         time: str | None = None) -> dict[str, Any]:
    body = {**_pref(state(ledger), proposal), "support": support}
    if reason:
        body["reason"] = reason
    idx, st = submit(ledger, "gov.vote", body, ident, time=time, terms=[f"proposal:{proposal}"])
    p = st.proposals[proposal]
    return {"index": idx, "proposal": proposal, "support": support, "weight": p.voters[ident.did][1],
            "tally": dict(p.tally)}


def queue(ledger: Any, ident: Any, proposal: int, *, time: str | None = None) -> dict[str, Any]:
    idx, st = submit(ledger, "gov.queue", _pref(state(ledger), proposal), ident, time=time,
                     terms=[f"proposal:{proposal}"])
    return {"index": idx, **st.proposals[proposal].to_dict(st.clock)}


def execute(ledger: Any, ident: Any, proposal: int, *, time: str | None = None) -> dict[str, Any]:
    idx, st = submit(ledger, "gov.execute", _pref(state(ledger), proposal), ident, time=time,
                     terms=[f"proposal:{proposal}"])
    return {"index": idx, **st.proposals[proposal].to_dict(st.clock)}


def cancel(ledger: Any, ident: Any, proposal: int, *, time: str | None = None) -> dict[str, Any]:
    idx, st = submit(ledger, "gov.cancel", _pref(state(ledger), proposal), ident, time=time,
                     terms=[f"proposal:{proposal}"])
    return {"index": idx, **st.proposals[proposal].to_dict(st.clock)}


def guardian_cosign(ledger: Any, ident: Any, model: str, reason: str, nonce: str) -> dict[str, str]:
    """One guardian's signature on the suspension statement (exchanged off-ledger, then combined)."""
    st = state(ledger)
    if st.dao is None:
        raise NotFoundError("no DAO in this ledger (run gov init first)")
    sig = ident.sign(guardian_statement(st.dao, model, reason, nonce))
    return {"signer": ident.did, "sig": base64.b64encode(sig).decode()}


def guardian_suspend(ledger: Any, ident: Any, model: str, reason: str, nonce: str, cosigs: list[dict[str, str]],
                     *, time: str | None = None) -> dict[str, Any]:
    body = {"model": model, "reason": reason, "nonce": nonce, "cosigs": cosigs, "subjects": [f"model:{model}"]}
    idx, st = submit(ledger, "gov.guardian.suspend", body, ident, time=time)
    return {"index": idx, "model": model, **_public(st.models[model])}


# -- reads ----------------------------------------------------------------------------------------------

def _public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "previous"}


def model_status(ledger: Any, name: str) -> dict[str, Any] | None:
    """The DAO's own ruling on model ``name``: None if governance never ruled on it, else a dict with
    ``state`` (approved / revoked / suspended / active) and ``by`` ("proposal N" or "guardians (k of n)").

    Whether the model may be used is ``services.authority.model_status`` (this ruling and the owner's)."""
    rec = state(ledger).models.get(name)
    return None if rec is None else _public(rec)


dao_ruling = model_status


class AuthorityView:
    """The DAO's side of the model-status protocol (:class:`ailedger.authority.hooks.DaoView`): what the
    authority rules read of governance.  Installed by ``ailedger/_registry.py``."""

    types = _ALL_TYPES

    def model_ruling(self, ledger: Any, name: str) -> dict[str, Any] | None:
        return state(ledger).models.get(name)

    def simulator(self, ledger: Any) -> GovState:
        g_st = state(ledger)
        with _cache_lock:  # not while another thread folds into it
            return copy.deepcopy(g_st)


def require_model_usable(ledger: Any, name: str) -> dict[str, Any] | None:
    """Raise :class:`VerificationError` ("model m1 was revoked by proposal 17 (reason) at entry 20") unless
    the model may be used (``services.authority.require_model_usable``); else return the DAO's ruling."""
    _require(ledger, name)
    return model_status(ledger, name)


def dataset_status(ledger: Any, name: str) -> dict[str, Any] | None:
    rec = state(ledger).datasets.get(name)
    return None if rec is None else dict(rec)


def proposal_info(ledger: Any, pid: int, *, at: str | None = None) -> dict[str, Any]:
    st = state(ledger)
    now = max(st.clock, time_ms(at or _now(ledger)))
    return st.proposal(pid).to_dict(now)


def balances(ledger: Any, did: str) -> dict[str, Any]:
    st = state(ledger)
    return {"did": did, "balance": st.balances.get(did, 0), "delegate": st.delegates.get(did, did),
            "votes": st.votes_now(did), "reputation": st.rep_now(did), "reputation_locked": st.locked.get(did, 0),
            "voting_power": st.power_now(did) if st.dao else 0}


def recount(ledger: Any, pid: int, *, verify_signatures: bool = True, workers: int | None = None) -> dict[str, Any]:
    """Re-tally proposal ``pid`` from the log alone: a fresh replay (signatures checked on every core)."""
    t0 = _time.perf_counter()
    st = replay(ledger, verify_signatures=verify_signatures, workers=workers)
    secs = _time.perf_counter() - t0
    p = st.proposal(pid)
    refused = [(i, r) for i, r in st.rejected if i > pid]
    cached = state(ledger).proposals.get(pid)
    return {**p.to_dict(st.clock), "votes_counted": len(p.voters), "entries_replayed": st.applied,
            "refused_entries": len(refused), "refused_sample": refused[:10], "signatures_checked": verify_signatures,
            "seconds": round(secs, 3), "matches_live_state": cached is not None and cached.tally == p.tally}


# -- whale analysis -------------------------------------------------------------------------------------

def simulate(*, holders: int = 1000, trials: int = 2000, alpha: float = 0.9, cap_bps: int = 500,
             turnout: float = 0.3, seed: int = 7, strategies: Sequence[str] = STRATEGIES) -> dict[str, Any]:
    """How often do the 3 largest token holders alone decide a vote?

    Tokens follow a Pareto distribution (``alpha`` 0.9: heavier-tailed than the 80/20 shape, 1.16); reputation, earned rather than
    bought, follows a milder log-normal one.  In each trial the other holders turn out with probability
    ``turnout`` and vote For/Against at random around a per-proposal mood; the top 3 vote as a bloc.  The top
    3 *decide* a trial when flipping their bloc flips the outcome.  ``dominant`` counts trials where their
    weight alone exceeds everyone else who voted."""
    rng = random.Random(seed)
    tokens = sorted((max(1, int(rng.paretovariate(alpha) * 1000)) for _ in range(holders)), reverse=True)
    reps = [max(1, int(rng.lognormvariate(3.0, 0.8))) for _ in range(holders)]
    supply = sum(tokens)
    cap = supply * cap_bps // 10000
    weights = {s: [vote_weight(s, t, r, cap) for t, r in zip(tokens, reps)] for s in strategies}
    decided = {s: 0 for s in strategies}
    dominant = {s: 0 for s in strategies}
    for _ in range(trials):
        mood = rng.random()
        others = [(i, rng.random() < mood) for i in range(3, holders) if rng.random() < turnout]
        for s in strategies:
            w = weights[s]
            f = sum(w[i] for i, yes in others if yes)
            a = sum(w[i] for i, yes in others if not yes)
            top = w[0] + w[1] + w[2]
            if (f + top > a) != (f > a + top):
                decided[s] += 1
            if top > f + a:
                dominant[s] += 1
    top3_share = {s: round(sum(weights[s][:3]) / max(1, sum(weights[s])), 4) for s in strategies}
    return {"holders": holders, "trials": trials, "pareto_alpha": alpha, "turnout": turnout, "cap_bps": cap_bps,
            "seed": seed, "top3_token_share": round(sum(tokens[:3]) / supply, 4),
            "strategies": {s: {"top3_decide_rate": round(decided[s] / trials, 4),
                               "top3_dominant_rate": round(dominant[s] / trials, 4),
                               "top3_weight_share": top3_share[s]} for s in strategies}}


def simulate_chart(result: dict[str, Any], path: str | os.PathLike[str]) -> str:
    """Bar chart of the simulate result (PNG or SVG by the file suffix)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(result["strategies"])
    dec = [result["strategies"][s]["top3_decide_rate"] * 100 for s in names]
    share = [result["strategies"][s]["top3_weight_share"] * 100 for s in names]
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = range(len(names))
    ax.bar([x - 0.2 for x in xs], dec, width=0.4, label="top 3 decide the outcome (% of votes)")
    ax.bar([x + 0.2 for x in xs], share, width=0.4, label="top 3 share of voting weight (%)")
    ax.set_xticks(list(xs), names)
    ax.set_ylim(0, 118)
    ax.set_ylabel("%")
    ax.set_title(f"Whale influence: {result['holders']} holders, Pareto a={result['pareto_alpha']}, "
                 f"turnout {int(result['turnout'] * 100)}%", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = str(path)
    fig.savefig(p, format="svg" if p.endswith(".svg") else "png", dpi=110)
    plt.close(fig)
    return p


def verify_did(did: str) -> str:
    try:
        public_key_from_did(did)
    except AiledgerError:
        raise BadInputError(f"{did!r} is not a did:key", field="did") from None
    return did


_ = (SignatureError, iso, VerificationError)
