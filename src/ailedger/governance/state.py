"""Governance and reputation-staking state as a pure, deterministic fold over ledger entries.

Anyone holding the log recomputes the same state by applying the ``gov.*`` and ``stake.*`` entries in
log order to a fresh :class:`GovState`.  No I/O, no clock, no globals: the clock is the entry's signed
``time`` (RFC 3339, ms), made monotonic (an entry is evaluated at ``max(previous clock, its time)``, so
back-dating never reopens a closed window); identifiers are log indices (proposal N is the
``gov.propose`` entry at index N).

Every ``apply`` either changes the state completely or raises an :class:`AiledgerError` naming the reason
and leaves the state untouched (checks first, then mutations).  During replay a refused entry (one that
reached the log without going through the service) is recorded in ``rejected`` and skipped.

Who may sign each type with effect is the authority table (docs/authority.md, ``core.authority.RULES``);
a signer without standing gets :class:`NotAuthorisedError` (refused at ingest with 403, ignored in replay).
The fold also reads two kinds of context entries, which change no governance state themselves and do not
move the clock: ``log.genesis`` (the operator's founding key set: only the log operator, or a founder it
named, may sign ``gov.init``) and self-signed ``identity.revoke`` (a revoked key loses all standing).

Model of the DAO (one per ledger, created by ``gov.init``):

* tokens: balances, transfers, mints by the minter (the ``gov.init`` signer); ERC20Votes-like delegation
  (every holder is self-delegated until a ``gov.delegate``); per-account vote checkpoints by log index,
  so a proposal reads voting power *at the index it was created* (no flash-loan votes).
* reputation points: granted by the minter, locked by stakes, slashed and rewarded by disputes.
* strategies: ``token`` (delegated votes), ``quadratic`` (isqrt of votes), ``reputation`` (reputation
  points), ``capped`` (votes capped at ``cap_bps`` of the total supply).
* proposal lifecycle as OpenZeppelin Governor: pending, active, defeated, succeeded, queued, executed,
  canceled, expired; quorum counts For + Abstain; success needs For > Against and quorum.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from bisect import bisect_left
from dataclasses import dataclass, field
from math import isqrt
from typing import Any, Protocol

from ailedger.authority import rules
from ailedger.authority.rules import LogConfig
from ailedger.encoding.canonical import canonical_json
from ailedger.encoding.identity import public_key_from_did, verify_did_signature
from ailedger.encoding.times import iso, time_ms  # governance periods are in these units (re-exported)
from ailedger.errors import (
    AiledgerError,
    BadInputError,
    ConflictError,
    NotAuthorisedError,
    NotFoundError,
)

__all__ = [
    "ACTION_KINDS",
    "CLAIM_KINDS",
    "CONTEXT_TYPES",
    "DEFAULT_PARAMS",
    "GOV_TYPES",
    "STAKE_TYPES",
    "STRATEGIES",
    "Claim",
    "Dispute",
    "EntryLike",
    "GovState",
    "Proposal",
    "guardian_statement",
    "iso",
    "jury_order",
    "leaf_hash_hex",
    "time_ms",
    "vote_weight",
]

CONTEXT_TYPES = ("log.genesis", "identity.revoke")
GOV_TYPES = ("gov.init", "gov.mint", "gov.transfer", "gov.delegate", "gov.reputation", "gov.propose",
             "gov.vote", "gov.queue", "gov.execute", "gov.cancel", "gov.guardian.suspend")
STAKE_TYPES = ("stake.claim", "stake.dispute", "stake.vote", "stake.resolve", "stake.slash", "stake.release")
STRATEGIES = ("token", "quadratic", "reputation", "capped")
CLAIM_KINDS = ("authentic", "human-made", "licensed", "consented", "accurate", "subnet")
ACTION_KINDS = ("model.approve", "model.revoke", "dataset.approve", "dataset.revoke", "param.set",
                "suspension.confirm", "suspension.lift")
SUPPORT = ("for", "against", "abstain")
MAX_AMOUNT = 2**96
DAY = 86400

# durations are seconds; shares are basis points (1/10000)
DEFAULT_PARAMS: dict[str, Any] = {
    "strategy": "token",
    "cap_bps": 1000,            # capped strategy: no voter above 10 % of the supply
    "voting_delay": 0,
    "voting_period": 3 * DAY,
    "quorum_bps": 400,          # 4 % of the total voting power at the snapshot
    "timelock": 2 * DAY,
    "grace_period": 14 * DAY,   # queued proposals expire if not executed within this after the eta
    "proposal_threshold": 1,    # voting power (in strategy units) needed to propose
    "guardian_threshold": 1,
    "guardians": [],
    "challenge_window": 7 * DAY,
    "dispute_period": 3 * DAY,
    "jury_size": 0,             # 0: every reputation holder votes, weighted by reputation
    "min_stake": 1,
    "bond_bps": 10000,          # a dispute bond is at least this share of the claim's stake
    "reward_bps": 5000,         # share of the loser's stake paid to the winner; the rest is burned
}
_DURATIONS = ("voting_delay", "voting_period", "timelock", "grace_period", "challenge_window", "dispute_period")
_BPS = ("cap_bps", "quorum_bps", "bond_bps", "reward_bps")


class EntryLike(rules.EntryLike, Protocol):  # the authority rules' entry, with its bytes
    @property
    def leaf_bytes(self) -> bytes: ...


def leaf_hash_hex(leaf: bytes) -> str:
    return hashlib.sha256(b"\x00" + leaf).hexdigest()


def guardian_statement(dao: str, model: str, reason: str, nonce: str) -> bytes:
    """The bytes each guardian signs to suspend a model (RFC 8785 canonical JSON)."""
    return canonical_json({"type": "ailedger/guardian-suspend/v1", "dao": dao, "model": model,
                           "reason": reason, "nonce": nonce})


def vote_weight(strategy: str, votes: int, rep: int, cap: int) -> int:
    if strategy == "token":
        return votes
    if strategy == "quadratic":
        return isqrt(votes)
    if strategy == "capped":
        return min(votes, cap)
    if strategy == "reputation":
        return rep
    raise BadInputError(f"unknown strategy {strategy!r}", field="strategy")


def jury_order(seed: bytes, dids: list[str]) -> list[str]:
    """Deterministic draw: order candidates by SHA-256(seed || did)."""
    return sorted(dids, key=lambda d: hashlib.sha256(seed + d.encode()).digest())


# -- small validators -------------------------------------------------------------------------------

def _amount(body: dict[str, Any], key: str, *, allow_zero: bool = False) -> int:
    v = body.get(key)
    if type(v) is not int or v < (0 if allow_zero else 1) or v >= MAX_AMOUNT:
        raise BadInputError(f"{key} must be a positive integer below 2^96", field=key, found=v)
    return v


def _did(v: Any, key: str) -> str:
    if not isinstance(v, str):
        raise BadInputError(f"{key} must be a did:key", field=key)
    public_key_from_did(v)
    return v


def _str(body: dict[str, Any], key: str, *, required: bool = True, max_len: int = 300) -> str:
    v = body.get(key, None if required else "")
    if not isinstance(v, str) or (required and not v) or len(v) > max_len:
        raise BadInputError(f"{key} must be a non-empty string (at most {max_len} characters)", field=key)
    return v


def _int_field(body: dict[str, Any], key: str) -> int:
    v = body.get(key)
    if type(v) is not int or v < 0:
        raise BadInputError(f"{key} must be a log index (non-negative integer)", field=key, found=v)
    return v


def check_param(key: str, value: Any) -> Any:
    """Validate one governance parameter; returns the value or raises BadInputError."""
    if key not in DEFAULT_PARAMS:
        raise BadInputError(f"unknown governance parameter {key!r} (known: {', '.join(sorted(DEFAULT_PARAMS))})",
                            field="key")
    if key == "strategy":
        if value not in STRATEGIES:
            raise BadInputError(f"strategy must be one of {', '.join(STRATEGIES)}", field="strategy", found=value)
        return value
    if key == "guardians":
        if not isinstance(value, list) or len(value) > 50 or len(set(value)) != len(value):
            raise BadInputError("guardians must be a list of distinct did:key (at most 50)", field="guardians")
        for d in value:
            _did(d, "guardians")
        return value
    if type(value) is not int or value < 0:
        raise BadInputError(f"{key} must be a non-negative integer", field=key, found=value)
    if key in _BPS and value > 10000:
        raise BadInputError(f"{key} is in basis points (0..10000)", field=key, found=value)
    if key in _DURATIONS and value > 3650 * DAY:
        raise BadInputError(f"{key} is at most 10 years (seconds)", field=key, found=value)
    if key == "voting_period" and value == 0:
        raise BadInputError("voting_period must be at least 1 second", field=key)
    if key in ("min_stake", "guardian_threshold") and value == 0:
        raise BadInputError(f"{key} must be at least 1", field=key)
    return value


def check_action(a: Any) -> dict[str, Any]:
    if not isinstance(a, dict):
        raise BadInputError("each action must be an object", field="actions")
    kind = a.get("kind")
    if kind not in ACTION_KINDS:
        raise BadInputError(f"unknown action kind {kind!r} (known: {', '.join(ACTION_KINDS)})",
                            field="actions", found=kind)
    if kind.startswith(("model.", "suspension.")):
        _str(a, "model", max_len=200)
    elif kind.startswith("dataset."):
        _str(a, "dataset", max_len=200)
    else:  # param.set
        _str(a, "key", max_len=64)
        if "value" not in a:
            raise BadInputError("param.set needs a value", field="value")
        check_param(a["key"], a["value"])
    extra = set(a) - {"kind", "model", "dataset", "key", "value", "reason", "manifest"}
    if extra:
        raise BadInputError(f"action has unknown field {min(extra)!r}", field="actions")
    return a


# -- history of a number by log index (ERC20Votes-style checkpoints) ---------------------------------

class _Hist:
    __slots__ = ("idx", "val")

    def __init__(self) -> None:
        self.idx: list[int] = []
        self.val: list[int] = []

    def set(self, index: int, value: int) -> None:
        if self.idx and self.idx[-1] == index:
            self.val[-1] = value
        else:
            self.idx.append(index)
            self.val.append(value)

    def now(self) -> int:
        return self.val[-1] if self.val else 0

    def before(self, index: int) -> int:
        """The value as it was just before log index ``index`` (changes at index < ``index``)."""
        i = bisect_left(self.idx, index)
        return self.val[i - 1] if i else 0


@dataclass
class Proposal:
    id: int
    proposer: str
    description: str
    actions: list[dict[str, Any]]
    created: int                # ms
    start: int                  # ms: voting opens
    end: int                    # ms: voting closes (exclusive)
    strategy: str
    cap: int
    quorum: int                 # absolute power needed (For + Abstain)
    total_power: int
    timelock: int               # ms
    grace: int                  # ms
    leaf_hash: str
    tally: dict[str, int] = field(default_factory=lambda: {"for": 0, "against": 0, "abstain": 0})
    voters: dict[str, tuple[str, int, int]] = field(default_factory=dict)   # did -> (support, weight, index)
    eta: int | None = None
    queued_at: int | None = None
    executed_at: int | None = None
    canceled_at: int | None = None

    def state(self, now: int) -> str:
        if self.executed_at is not None:
            return "executed"
        if self.canceled_at is not None:
            return "canceled"
        if now < self.start:
            return "pending"
        if now < self.end:
            return "active"
        if self.eta is not None:
            return "expired" if now >= self.eta + self.grace else "queued"
        return "succeeded" if self.passed() else "defeated"

    def quorum_reached(self) -> bool:
        return self.tally["for"] + self.tally["abstain"] >= self.quorum

    def passed(self) -> bool:
        return self.quorum_reached() and self.tally["for"] > self.tally["against"]

    def to_dict(self, now: int) -> dict[str, Any]:
        return {"id": self.id, "state": self.state(now), "proposer": self.proposer,
                "description": self.description, "actions": self.actions, "strategy": self.strategy,
                "created": iso(self.created), "voting_starts": iso(self.start), "voting_ends": iso(self.end),
                "snapshot_index": self.id, "tally": dict(self.tally), "voters": len(self.voters),
                "quorum": self.quorum, "quorum_reached": self.quorum_reached(), "total_power": self.total_power,
                "cap": self.cap if self.strategy == "capped" else None,
                "eta": iso(self.eta) if self.eta is not None else None,
                "executed": iso(self.executed_at) if self.executed_at is not None else None,
                "proposal_hash": self.leaf_hash}


@dataclass
class Dispute:
    id: int
    claim: int
    challenger: str
    bond: int
    reason: str
    created: int
    ends: int
    jury: list[str] | None
    seed: str
    votes: dict[str, tuple[str, int]] = field(default_factory=dict)  # did -> (side, weight)
    tally: dict[str, int] = field(default_factory=lambda: {"claim": 0, "challenger": 0})
    winner: str | None = None     # "claimant" | "challenger"
    resolved_at: int | None = None
    slashed_at: int | None = None
    slashed_index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "challenger": self.challenger, "bond": self.bond, "reason": self.reason,
                "opened": iso(self.created), "voting_ends": iso(self.ends),
                "jury": self.jury, "seed": self.seed, "tally": dict(self.tally), "voters": len(self.votes),
                "winner": self.winner, "resolved": iso(self.resolved_at) if self.resolved_at is not None else None,
                "slashed": iso(self.slashed_at) if self.slashed_at is not None else None}


@dataclass
class Claim:
    id: int
    subject: str
    claim: str
    staker: str
    stake: int
    created: int
    window_ends: int
    note: str = ""
    dispute: Dispute | None = None
    released_at: int | None = None
    released_index: int | None = None

    def locked_at(self, index: int) -> bool:
        """Is the stake still locked just before entry ``index`` (made before it, not released or slashed)?"""
        if self.id >= index:
            return False
        if self.released_index is not None and self.released_index < index:
            return False
        d = self.dispute
        return not (d is not None and d.slashed_index is not None and d.slashed_index < index)  # settled: unlocked

    def status(self, now: int) -> str:
        d = self.dispute
        if d is not None:
            if d.slashed_at is not None:
                return "upheld, challenger slashed" if d.winner == "claimant" else "refuted, stake slashed"
            if d.winner is not None:
                return "upheld (slash pending)" if d.winner == "claimant" else "refuted (slash pending)"
            return "disputed" if now < d.ends else "disputed (voting closed, awaiting resolution)"
        if self.released_at is not None:
            return "stands (stake released)"
        return "open to challenge" if now < self.window_ends else "stands (unchallenged)"

    def to_dict(self, now: int) -> dict[str, Any]:
        return {"claim_id": self.id, "subject": self.subject, "claim": self.claim, "staker": self.staker,
                "stake": self.stake, "status": self.status(now), "staked_at": iso(self.created),
                "challenge_window_ends": iso(self.window_ends), "note": self.note,
                "dispute": self.dispute.to_dict() if self.dispute else None}


class GovState:
    """The whole governance + staking state.  ``apply(index, entry)`` is the only way it changes."""

    def __init__(self, operator: str | None = None) -> None:
        self.config = LogConfig(operator)     # who may found the DAO (the log operator, fixed at creation)
        self.revoked: dict[str, int] = {}     # keys that revoked themselves -> index
        self.dao: str | None = None          # leaf hash of gov.init: names this DAO in signed statements
        self.name = ""
        self.minter: str | None = None
        self.params: dict[str, Any] = dict(DEFAULT_PARAMS)
        self.clock = 0                        # ms, monotonic
        self.applied = 0
        self.last_index = -1
        self.balances: dict[str, int] = {}
        self.delegates: dict[str, str] = {}
        self.votes: dict[str, _Hist] = {}
        self.supply = _Hist()
        self.rep: dict[str, _Hist] = {}
        self.rep_total = _Hist()
        self.locked: dict[str, int] = {}
        self.proposals: dict[int, Proposal] = {}
        self.models: dict[str, dict[str, Any]] = {}
        self.datasets: dict[str, dict[str, Any]] = {}
        self.claims: dict[int, Claim] = {}
        self.disputes: dict[int, Dispute] = {}
        self.used_statements: set[str] = set()
        self.rejected: list[tuple[int, str]] = []
        self.burned_rep = 0
        self._days: dict[str, int] = {}

    # -- reading ------------------------------------------------------------------------------------
    def votes_now(self, did: str) -> int:
        h = self.votes.get(did)
        return h.now() if h else 0

    def votes_at(self, did: str, index: int) -> int:
        h = self.votes.get(did)
        return h.before(index) if h else 0

    def rep_now(self, did: str) -> int:
        h = self.rep.get(did)
        return h.now() if h else 0

    def rep_at(self, did: str, index: int) -> int:
        h = self.rep.get(did)
        return h.before(index) if h else 0

    def rep_free(self, did: str) -> int:
        return self.rep_now(did) - self.locked.get(did, 0)

    def power_now(self, did: str) -> int:
        p = self.params
        cap = self.supply.now() * p["cap_bps"] // 10000
        return vote_weight(p["strategy"], self.votes_now(did), self.rep_now(did), cap)

    def proposal(self, pid: int) -> Proposal:
        p = self.proposals.get(pid)
        if p is None:
            raise NotFoundError(f"no proposal {pid} in this ledger", field="proposal", found=pid)
        return p

    def claim(self, cid: int) -> Claim:
        c = self.claims.get(cid)
        if c is None:
            raise NotFoundError(f"no stake claim {cid} in this ledger", field="claim", found=cid)
        return c

    def summary(self) -> dict[str, Any]:
        return {"dao": self.dao, "name": self.name, "minter": self.minter, "params": dict(self.params),
                "operator": self.config.operator, "genesis": self.config.genesis,
                "founders": list(self.config.founders), "revoked_keys": len(self.revoked),
                "clock": iso(self.clock) if self.clock else None, "entries_applied": self.applied,
                "last_index": self.last_index, "rejected": len(self.rejected),
                "supply": self.supply.now(), "holders": sum(1 for v in self.balances.values() if v),
                "reputation_total": self.rep_total.now(), "reputation_burned": self.burned_rep,
                "proposals": len(self.proposals), "claims": len(self.claims),
                "models": {k: dict(v) for k, v in sorted(self.models.items())},
                "datasets": {k: dict(v) for k, v in sorted(self.datasets.items())}}

    def digest(self) -> str:
        """SHA-256 over a canonical dump of the state: two replays agree iff their digests agree."""
        doc = {
            "summary": {k: v for k, v in self.summary().items() if k != "clock"},
            "balances": {k: v for k, v in sorted(self.balances.items()) if v},
            "delegates": dict(sorted(self.delegates.items())),
            "reputation": {k: h.now() for k, h in sorted(self.rep.items()) if h.now()},
            "locked": {k: v for k, v in sorted(self.locked.items()) if v},
            "proposals": {str(k): p.to_dict(self.clock) for k, p in sorted(self.proposals.items())},
            "claims": {str(k): c.to_dict(self.clock) for k, c in sorted(self.claims.items())},
            "rejected": self.rejected,
        }
        return hashlib.sha256(canonical_json(doc)).hexdigest()

    # -- the fold -------------------------------------------------------------------------------------
    def apply(self, index: int, e: EntryLike) -> None:
        """Apply one entry at log ``index``; raise (and change nothing) if the rules refuse it."""
        if index <= self.last_index:
            raise ConflictError(f"entry {index} is not after the last applied entry {self.last_index}",
                                field="index")
        if not isinstance(e.body, dict):
            raise BadInputError("body must be an object", field="body")
        if e.type in CONTEXT_TYPES:
            self._context(index, e)
            self.last_index = index
            return
        handler = _HANDLERS.get(e.type)
        if handler is None:
            raise BadInputError(f"{e.type} is not a governance or staking record", field="type")
        if e.signer in self.revoked:
            raise NotAuthorisedError(f"{e.type} by {e.signer} has no effect: the key revoked itself at entry "
                                     f"{self.revoked[e.signer]}", field="signer")
        if self.dao is None and e.type != "gov.init":
            raise NotAuthorisedError("no DAO in this ledger yet (gov.init must come first)", field="type")
        now = max(self.clock, self._ms(e.time))
        handler(self, index, e, now)
        self.clock = now
        self.applied += 1
        self.last_index = index

    def _context(self, index: int, e: EntryLike) -> None:
        if e.type == "log.genesis":
            self.config.apply(index, e)
        elif e.body.get("did") == e.signer:  # identity.revoke: only a self-revocation counts
            self.revoked.setdefault(e.signer, index)
        else:
            raise NotAuthorisedError(f"identity.revoke by {e.signer} has no effect: only a key may revoke itself",
                                     field="signer")

    def replay_apply(self, index: int, e: EntryLike) -> str | None:
        """Apply, or record the refusal; returns the reason when refused."""
        try:
            self.apply(index, e)
            return None
        except AiledgerError as exc:
            self.rejected.append((index, exc.message))
            return exc.message

    def _ms(self, t: str) -> int:
        """time_ms with the day part memoised per state (replays read many times of the same day)."""
        if type(t) is not str or len(t) < 20 or t[10] != "T" or t[-1] != "Z":
            return time_ms(t)
        day = self._days.get(t[:10])
        if day is None:
            day = time_ms(t[:10] + "T00:00:00Z")
            if len(self._days) > 10000:
                self._days.clear()
            self._days[t[:10]] = day
        try:
            frac = t[20:-1] if t[19] == "." else ""
            return (day + (int(t[11:13]) * 3600 + int(t[14:16]) * 60 + int(t[17:19])) * 1000
                    + (int((frac + "000")[:3]) if frac else 0))
        except ValueError:
            return time_ms(t)

    # -- token bookkeeping (called only after all checks passed) ---------------------------------------
    def _move_votes(self, index: int, src: str | None, dst: str | None, amount: int) -> None:
        if src is not None:
            h = self.votes.setdefault(src, _Hist())
            h.set(index, h.now() - amount)
        if dst is not None:
            h = self.votes.setdefault(dst, _Hist())
            h.set(index, h.now() + amount)

    def _delegate_of(self, did: str) -> str:
        return self.delegates.get(did, did)

    def _credit(self, index: int, did: str, amount: int) -> None:
        self.balances[did] = self.balances.get(did, 0) + amount
        self._move_votes(index, None, self._delegate_of(did), amount)

    def _add_rep(self, index: int, did: str, delta: int) -> None:
        h = self.rep.setdefault(did, _Hist())
        h.set(index, h.now() + delta)
        self.rep_total.set(index, self.rep_total.now() + delta)


# -- handlers ----------------------------------------------------------------------------------------

def _grants(body: dict[str, Any], key: str) -> list[tuple[str, int]]:
    g = body.get(key, {})
    if not isinstance(g, dict):
        raise BadInputError(f"{key} must be an object of did -> amount", field=key)
    out = []
    for did, amt in sorted(g.items()):
        _did(did, key)
        if type(amt) is not int or amt <= 0 or amt >= MAX_AMOUNT:
            raise BadInputError(f"{key}[{did}] must be a positive integer", field=key, found=amt)
        out.append((did, amt))
    return out


def _h_init(s: GovState, index: int, e: EntryLike, now: int) -> None:
    if not s.config.may_found(e.signer):
        raise NotAuthorisedError(f"gov.init by {e.signer} has no effect: who may found the DAO was fixed when "
                                 f"the ledger was created: {s.config.founding_rule()}", field="signer")
    if s.dao is not None:
        raise ConflictError("this ledger already has a DAO (gov.init was applied before)", field="type")
    b = e.body
    name = _str(b, "name", max_len=100)
    params = dict(DEFAULT_PARAMS)
    given = b.get("params", {})
    if not isinstance(given, dict):
        raise BadInputError("params must be an object", field="params")
    for k, v in given.items():
        params[k] = check_param(k, v)
    if params["guardian_threshold"] > max(1, len(params["guardians"])):
        raise BadInputError("guardian_threshold is larger than the number of guardians", field="guardian_threshold")
    alloc = _grants(b, "allocations")
    reps = _grants(b, "reputation")
    s.dao = leaf_hash_hex(e.leaf_bytes)
    s.name = name
    s.minter = e.signer
    s.params = params
    for did, amt in alloc:
        s._credit(index, did, amt)
    if alloc:
        s.supply.set(index, s.supply.now() + sum(a for _, a in alloc))
    for did, amt in reps:
        s._add_rep(index, did, amt)


def _only_minter(s: GovState, e: EntryLike) -> None:
    if e.signer != s.minter:
        raise NotAuthorisedError(f"only the DAO minter {s.minter} may mint tokens or grant reputation", field="signer")


def _h_mint(s: GovState, index: int, e: EntryLike, now: int) -> None:
    _only_minter(s, e)
    alloc = _grants(e.body, "allocations")
    if not alloc:
        raise BadInputError("gov.mint needs allocations", field="allocations")
    total = sum(a for _, a in alloc)
    if s.supply.now() + total >= MAX_AMOUNT:
        raise BadInputError("total supply would exceed 2^96", field="allocations")
    for did, amt in alloc:
        s._credit(index, did, amt)
    s.supply.set(index, s.supply.now() + total)


def _h_transfer(s: GovState, index: int, e: EntryLike, now: int) -> None:
    b = e.body
    to = _did(b.get("to"), "to")
    amt = _amount(b, "amount")
    have = s.balances.get(e.signer, 0)
    if have == 0:
        raise NotAuthorisedError(f"{e.signer} holds no tokens; a transfer needs a balance", field="signer")
    if have < amt:
        raise BadInputError(f"balance {have} is less than the transfer amount {amt}", field="amount",
                            expected=amt, found=have)
    if to == e.signer:
        raise BadInputError("a transfer to oneself changes nothing", field="to")
    s.balances[e.signer] = have - amt
    s.balances[to] = s.balances.get(to, 0) + amt
    s._move_votes(index, s._delegate_of(e.signer), s._delegate_of(to), amt)


def _h_delegate(s: GovState, index: int, e: EntryLike, now: int) -> None:
    to = _did(e.body.get("to"), "to")
    old = s._delegate_of(e.signer)
    if old == to:
        raise ConflictError(f"{e.signer} already delegates to {to}", field="to")
    bal = s.balances.get(e.signer, 0)
    s.delegates[e.signer] = to
    if bal:
        s._move_votes(index, old, to, bal)


def _h_reputation(s: GovState, index: int, e: EntryLike, now: int) -> None:
    _only_minter(s, e)
    grants = _grants(e.body, "grants")
    if not grants:
        raise BadInputError("gov.reputation needs grants", field="grants")
    for did, amt in grants:
        s._add_rep(index, did, amt)


def _h_propose(s: GovState, index: int, e: EntryLike, now: int) -> None:
    b = e.body
    desc = _str(b, "description", max_len=4000)
    actions = b.get("actions")
    if not isinstance(actions, list) or not actions or len(actions) > 20:
        raise BadInputError("a proposal needs 1..20 actions", field="actions")
    acts = [check_action(a) for a in actions]
    p = s.params
    power = s.power_now(e.signer)
    if power < p["proposal_threshold"]:
        raise NotAuthorisedError(f"proposer has voting power {power}, below the proposal threshold "
                            f"{p['proposal_threshold']}", field="signer", expected=p["proposal_threshold"], found=power)
    strategy = p["strategy"]
    supply = s.supply.now()
    cap = supply * p["cap_bps"] // 10000
    if strategy == "token":
        total = supply
    elif strategy == "reputation":
        total = s.rep_total.now()
    else:  # quadratic / capped: the sum of every account's weight at the snapshot
        total = sum(vote_weight(strategy, h.now(), 0, cap) for h in s.votes.values())
    quorum = -(-total * p["quorum_bps"] // 10000)
    start = now + p["voting_delay"] * 1000
    s.proposals[index] = Proposal(
        id=index, proposer=e.signer, description=desc, actions=acts, created=now, start=start,
        end=start + p["voting_period"] * 1000, strategy=strategy, cap=cap, quorum=quorum, total_power=total,
        timelock=p["timelock"] * 1000, grace=p["grace_period"] * 1000, leaf_hash=leaf_hash_hex(e.leaf_bytes))


def _proposal_ref(s: GovState, b: dict[str, Any]) -> Proposal:
    pid = _int_field(b, "proposal")
    p = s.proposal(pid)
    h = b.get("proposal_hash")
    if h is not None and h != p.leaf_hash:
        raise BadInputError(f"proposal_hash does not match proposal {pid} of this ledger (a vote replayed "
                            "from another ledger?)", field="proposal_hash", expected=p.leaf_hash, found=h)
    return p


def _h_vote(s: GovState, index: int, e: EntryLike, now: int) -> None:
    b = e.body
    p = _proposal_ref(s, b)
    support = b.get("support")
    if support not in SUPPORT:
        raise BadInputError("support must be for, against or abstain", field="support", found=support)
    # who may vote first (weight at the snapshot), then when
    votes = s.votes_at(e.signer, p.id) if p.strategy != "reputation" else 0
    rep = s.rep_at(e.signer, p.id) if p.strategy == "reputation" else 0
    w = vote_weight(p.strategy, votes, rep, p.cap)
    if w <= 0:
        what = "reputation" if p.strategy == "reputation" else "delegated token votes"
        raise NotAuthorisedError(f"{e.signer} had no {what} at proposal {p.id}'s snapshot (log index {p.id})",
                                 field="signer")
    st = p.state(now)
    if st != "active":
        when = f"opens {iso(p.start)}" if st == "pending" else f"closed {iso(p.end)}"
        raise BadInputError(f"proposal {p.id} is {st}: voting {when}", field="proposal", found=st)
    prev = p.voters.get(e.signer)
    if prev is not None:
        raise ConflictError(f"{e.signer} already voted on proposal {p.id} (entry {prev[2]})", field="signer")
    p.voters[e.signer] = (support, w, index)
    p.tally[support] += w


def _h_queue(s: GovState, index: int, e: EntryLike, now: int) -> None:
    p = _proposal_ref(s, e.body)
    st = p.state(now)
    if st != "succeeded":
        raise BadInputError(f"proposal {p.id} is {st}; only a succeeded proposal can be queued", field="proposal",
                            found=st)
    p.queued_at = now
    p.eta = now + p.timelock


def _h_cancel(s: GovState, index: int, e: EntryLike, now: int) -> None:
    p = _proposal_ref(s, e.body)
    st = p.state(now)
    if e.signer != p.proposer:
        raise NotAuthorisedError(f"only the proposer {p.proposer} may cancel proposal {p.id}", field="signer")
    if st != "pending":
        raise BadInputError(f"proposal {p.id} is {st}; a proposal can be canceled only while pending",
                            field="proposal", found=st)
    p.canceled_at = now


def _h_execute(s: GovState, index: int, e: EntryLike, now: int) -> None:
    p = _proposal_ref(s, e.body)
    st = p.state(now)
    if st != "queued":
        raise BadInputError(f"proposal {p.id} is {st}; only a queued proposal can be executed", field="proposal",
                            found=st)
    assert p.eta is not None
    if now < p.eta:
        raise BadInputError(f"proposal {p.id} is in its timelock until {iso(p.eta)}", field="proposal",
                            expected=iso(p.eta), found=iso(now))
    # check every action against the current state first; then apply them all
    for a in p.actions:
        if a["kind"].startswith("suspension."):
            cur = s.models.get(a["model"])
            if cur is None or cur["state"] != "suspended":
                raise BadInputError(f"model {a['model']} is not suspended; {a['kind']} cannot run",
                                    field="actions")
        if (a["kind"] == "param.set" and a["key"] == "guardian_threshold"
                and a["value"] > max(1, len(s.params["guardians"]))):
                raise BadInputError("guardian_threshold is larger than the number of guardians", field="actions")
    by = f"proposal {p.id}"
    for a in p.actions:
        k = a["kind"]
        rec = {"by": by, "proposal": p.id, "entry": index, "time": iso(now), "reason": a.get("reason", "")}
        if k == "model.approve":
            s.models[a["model"]] = {"state": "approved", **rec, **({"manifest": a["manifest"]} if "manifest" in a else {})}
        elif k == "model.revoke":
            s.models[a["model"]] = {"state": "revoked", **rec}
        elif k == "dataset.approve":
            s.datasets[a["dataset"]] = {"state": "approved", **rec}
        elif k == "dataset.revoke":
            s.datasets[a["dataset"]] = {"state": "revoked", **rec}
        elif k == "suspension.confirm":
            prev = s.models[a["model"]]
            s.models[a["model"]] = {"state": "revoked", **rec, "suspended_by": prev.get("by")}
        elif k == "suspension.lift":
            prev = s.models[a["model"]]
            before = prev.get("previous")
            s.models[a["model"]] = dict(before) if before else {"state": "active", **rec}
            s.models[a["model"]]["lifted_by"] = by
        elif k == "param.set":
            s.params[a["key"]] = a["value"]
    p.executed_at = now


def _h_guardian_suspend(s: GovState, index: int, e: EntryLike, now: int) -> None:
    b = e.body
    model = _str(b, "model", max_len=200)
    reason = _str(b, "reason", max_len=1000)
    nonce = _str(b, "nonce", max_len=100)
    guardians = s.params["guardians"]
    if not guardians:
        raise NotAuthorisedError("this DAO has no guardians", field="signer")
    assert s.dao is not None
    stmt = guardian_statement(s.dao, model, reason, nonce)
    sh = hashlib.sha256(stmt).hexdigest()
    if sh in s.used_statements:
        raise ConflictError("this guardian statement was used before (replay); use a new nonce", field="nonce")
    cosigs = b.get("cosigs")
    if not isinstance(cosigs, list):
        raise BadInputError("cosigs must be a list of {signer, sig}", field="cosigs")
    ok: set[str] = set()
    for c in cosigs:
        if not isinstance(c, dict) or not isinstance(c.get("signer"), str) or not isinstance(c.get("sig"), str):
            raise BadInputError("each cosig is {signer: did, sig: base64}", field="cosigs")
        if c["signer"] not in guardians:
            raise NotAuthorisedError(f"{c['signer']} is not a guardian", field="cosigs")
        try:
            sig = base64.b64decode(c["sig"], validate=True)
        except (binascii.Error, ValueError):  # non-ASCII text raises a plain ValueError: refused, not a crash
            raise BadInputError("cosig sig is not base64", field="cosigs") from None
        verify_did_signature(c["signer"], stmt, sig)
        ok.add(c["signer"])
    k = s.params["guardian_threshold"]
    if len(ok) < k:
        raise NotAuthorisedError(f"{len(ok)} guardian signature(s); {k} of {len(guardians)} needed", field="cosigs",
                            expected=k, found=len(ok))
    cur = s.models.get(model)
    if cur is not None and cur["state"] in ("suspended", "revoked"):
        raise ConflictError(f"model {model} is already {cur['state']}", field="model")
    s.used_statements.add(sh)
    s.models[model] = {"state": "suspended", "by": f"guardians ({len(ok)} of {len(guardians)})", "entry": index,
                       "time": iso(now), "reason": reason, "guardians": sorted(ok),
                       "previous": dict(cur) if cur else None}


# -- staking ------------------------------------------------------------------------------------------

def _h_claim(s: GovState, index: int, e: EntryLike, now: int) -> None:
    b = e.body
    subject = _str(b, "subject", max_len=300)
    kind = b.get("claim")
    if kind not in CLAIM_KINDS:
        raise BadInputError(f"claim must be one of {', '.join(CLAIM_KINDS)}", field="claim", found=kind)
    amt = _amount(b, "stake")
    if amt < s.params["min_stake"]:
        raise BadInputError(f"stake {amt} is below the minimum {s.params['min_stake']}", field="stake")
    free = s.rep_free(e.signer)
    if s.rep_now(e.signer) <= 0:
        raise NotAuthorisedError(f"{e.signer} holds no reputation (0 free reputation); a stake needs reputation",
                                 field="signer")
    if free < amt:
        raise BadInputError(f"{e.signer} has {free} free reputation; the stake is {amt}", field="stake",
                            expected=amt, found=free)
    note = _str(b, "note", required=False, max_len=1000)
    s.locked[e.signer] = s.locked.get(e.signer, 0) + amt
    s.claims[index] = Claim(index, subject, kind, e.signer, amt, now, now + s.params["challenge_window"] * 1000,
                            note)


def _claim_ref(s: GovState, b: dict[str, Any]) -> Claim:
    return s.claim(_int_field(b, "claim"))


def _h_dispute(s: GovState, index: int, e: EntryLike, now: int) -> None:
    b = e.body
    c = _claim_ref(s, b)
    if e.signer == c.staker:
        raise NotAuthorisedError("a staker cannot dispute their own claim", field="signer")
    if s.rep_now(e.signer) <= 0:
        raise NotAuthorisedError(f"{e.signer} holds no reputation; a dispute bond needs reputation", field="signer")
    if c.dispute is not None:
        raise ConflictError(f"claim {c.id} is already disputed (dispute {c.dispute.id})", field="claim")
    if c.released_at is not None or now >= c.window_ends:
        raise BadInputError(f"the challenge window of claim {c.id} closed {iso(c.window_ends)}", field="claim")
    bond = _amount(b, "bond")
    need = -(-c.stake * s.params["bond_bps"] // 10000)
    if bond < need:
        raise BadInputError(f"bond {bond} is below the required {need}", field="bond", expected=need, found=bond)
    free = s.rep_free(e.signer)
    if free < bond:
        raise BadInputError(f"{e.signer} has {free} free reputation; the bond is {bond}", field="bond",
                            expected=bond, found=free)
    reason = _str(b, "reason", max_len=2000)
    seed_obj = b.get("seed")
    if not isinstance(seed_obj, dict) or type(seed_obj.get("size")) is not int or not isinstance(seed_obj.get("root"), str):
        raise BadInputError("seed must be {size, root} of a checkpoint of this log", field="seed")
    if seed_obj["size"] > index or seed_obj["size"] < 1:
        raise BadInputError("the seed checkpoint must be of a log size at or before the dispute", field="seed")
    try:
        root = bytes.fromhex(seed_obj["root"])
    except ValueError:
        raise BadInputError("seed root must be hex", field="seed") from None
    if len(root) != 32:
        raise BadInputError("seed root must be 32 bytes", field="seed")
    seed = hashlib.sha256(root + c.id.to_bytes(8, "big")).digest()
    jury: list[str] | None = None
    n = s.params["jury_size"]
    if n:
        cands = [d for d, h in s.rep.items() if h.now() > 0 and d not in (c.staker, e.signer)]
        jury = jury_order(seed, sorted(cands))[:n]
        if not jury:
            raise BadInputError("no reputation holder is eligible for the jury", field="claim")
    s.locked[e.signer] = s.locked.get(e.signer, 0) + bond
    c.dispute = Dispute(index, c.id, e.signer, bond, reason, now, now + s.params["dispute_period"] * 1000,
                        jury, seed.hex())
    s.disputes[index] = c.dispute


def _dispute_ref(s: GovState, b: dict[str, Any]) -> Dispute:
    did = _int_field(b, "dispute")
    d = s.disputes.get(did)
    if d is None:
        raise NotFoundError(f"no dispute {did} in this ledger", field="dispute", found=did)
    return d


def _h_stake_vote(s: GovState, index: int, e: EntryLike, now: int) -> None:
    b = e.body
    d = _dispute_ref(s, b)
    side = b.get("side")
    if side not in ("claim", "challenger"):
        raise BadInputError("side must be claim or challenger", field="side", found=side)
    c = s.claims[d.claim]
    if e.signer in (c.staker, d.challenger):
        raise NotAuthorisedError("the parties of a dispute cannot vote on it", field="signer")
    if d.jury is not None:
        if e.signer not in d.jury:
            raise NotAuthorisedError(f"{e.signer} is not on the jury drawn for dispute {d.id}", field="signer")
        w = 1
    else:
        w = s.rep_at(e.signer, d.id)
        if w <= 0:
            raise NotAuthorisedError(f"{e.signer} had no reputation when dispute {d.id} opened", field="signer")
    if now >= d.ends or d.winner is not None:
        raise BadInputError(f"voting on dispute {d.id} closed {iso(d.ends)}", field="dispute")
    if e.signer in d.votes:
        raise ConflictError(f"{e.signer} already voted on dispute {d.id}", field="signer")
    d.votes[e.signer] = (side, w)
    d.tally[side] += w


def _h_resolve(s: GovState, index: int, e: EntryLike, now: int) -> None:
    d = _dispute_ref(s, e.body)
    if d.winner is not None:
        raise ConflictError(f"dispute {d.id} is already resolved", field="dispute")
    if now < d.ends:
        raise BadInputError(f"dispute {d.id} is open for votes until {iso(d.ends)}", field="dispute")
    # the challenger carries the burden: a tie (or no votes) upholds the claim
    d.winner = "challenger" if d.tally["challenger"] > d.tally["claim"] else "claimant"
    d.resolved_at = now


def _h_slash(s: GovState, index: int, e: EntryLike, now: int) -> None:
    d = _dispute_ref(s, e.body)
    if d.winner is None:
        raise BadInputError(f"dispute {d.id} is not resolved; nothing can be slashed before resolution",
                            field="dispute")
    if d.slashed_at is not None:
        raise ConflictError(f"dispute {d.id} was already settled", field="dispute")
    c = s.claims[d.claim]
    if d.winner == "claimant":
        loser, lost, winner, kept = d.challenger, d.bond, c.staker, c.stake
    else:
        loser, lost, winner, kept = c.staker, c.stake, d.challenger, d.bond
    reward = lost * s.params["reward_bps"] // 10000
    s.locked[loser] -= lost
    s.locked[winner] -= kept
    s._add_rep(index, loser, -lost)
    s._add_rep(index, winner, reward)
    s.burned_rep += lost - reward
    d.slashed_at = now
    d.slashed_index = index


def _h_release(s: GovState, index: int, e: EntryLike, now: int) -> None:
    c = _claim_ref(s, e.body)
    if c.dispute is not None:
        raise BadInputError(f"claim {c.id} is disputed; its stake is settled by the dispute", field="claim")
    if c.released_at is not None:
        raise ConflictError(f"claim {c.id} stake was already released", field="claim")
    if now < c.window_ends:
        raise BadInputError(f"claim {c.id} is open to challenge until {iso(c.window_ends)}", field="claim")
    s.locked[c.staker] -= c.stake
    c.released_at = now
    c.released_index = index


_HANDLERS = {
    "gov.init": _h_init, "gov.mint": _h_mint, "gov.transfer": _h_transfer, "gov.delegate": _h_delegate,
    "gov.reputation": _h_reputation, "gov.propose": _h_propose, "gov.vote": _h_vote, "gov.queue": _h_queue,
    "gov.execute": _h_execute, "gov.cancel": _h_cancel, "gov.guardian.suspend": _h_guardian_suspend,
    "stake.claim": _h_claim, "stake.dispute": _h_dispute, "stake.vote": _h_stake_vote,
    "stake.resolve": _h_resolve, "stake.slash": _h_slash, "stake.release": _h_release,
}
