"""Property tests of the authority rules (docs/authority.md): random sequences of entries signed by a model's
owner (who may rotate its key), strangers, the DAO's guardians and the DAO itself (proposals voted, queued
and executed), folded by the pure folds (core.authority.AuthorityState + core.governance_state.GovState).

1. The derived state is what the table says: an independent model of the table (written here, not taken
   from the code) predicts the model's status after every sequence.
2. A stranger's entries never change it: the same sequence with every stranger entry replaced by a note
   at the same log index folds to the same model status, DAO, balances, proposals and stakes.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger.authority.rules import AuthorityState, model_status
from ailedger.encoding.canonical import canonical_json
from ailedger.encoding.identity import did_from_public_key
from ailedger.encoding.records import build_entry
from ailedger.governance.state import GovState, guardian_statement, iso, leaf_hash_hex, time_ms

DAY = 86400_000
T0 = time_ms("2030-01-01T00:00:00.000Z")


class K:
    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.did = did_from_public_key(self.key.public_key().public_bytes_raw())

    def sign(self, b: bytes) -> bytes:
        return self.key.sign(b)


OPERATOR, FOUNDER, HOLDER, OWNER, OWNER2, G1, G2, STRANGER = (K() for _ in range(8))

# the operations a sequence is made of
OWNER_OPS = st.sampled_from(["register", "revoke", "suspend", "reinstate", "unrevoke", "rotate"])
STRANGER_OPS = st.sampled_from(["register", "revoke", "suspend", "reinstate", "unrevoke", "gov.init", "gov.mint",
                                "gov.reputation", "guardian", "vote", "cancel", "propose", "genesis", "rotate-owner",
                                "transfer", "stake", "identity.revoke-owner"])
GUARDIAN_SETS = st.sampled_from([("G1",), ("G1", "G2"), ("G2", "G1", "G1"), ("G1", "S"), ("G1", "G2", "S")])
DAO_ACTIONS = st.sampled_from(["model.revoke", "model.approve", "suspension.lift", "suspension.confirm"])
OPS = st.lists(st.one_of(st.tuples(st.just("owner"), OWNER_OPS), st.tuples(st.just("stranger"), STRANGER_OPS),
                         st.tuples(st.just("guardians"), GUARDIAN_SETS), st.tuples(st.just("dao"), DAO_ACTIONS)),
               min_size=1, max_size=18)


@dataclass
class Seq:
    entries: list[tuple[Any, bool]] = field(default_factory=list)   # (entry, signed by the stranger?)
    t: int = T0
    owner_key: K = OWNER
    nonce: int = 0
    dao_id: str = ""
    last_proposal: int | None = None

    def add(self, type_: str, body: dict[str, Any], who: K, *, stranger: bool = False, dt: int = 10_000) -> int:
        self.t += dt
        self.entries.append((build_entry(type_, body, who.did, iso(self.t), who.sign), stranger))
        return len(self.entries) - 1


EARLY = st.lists(st.sampled_from(["gov.init", "genesis", "gov.mint", "rotate-owner"]), max_size=3)


def build(ops: list[tuple[str, Any]], early: list[str] = (), operator: Any = OPERATOR) -> Seq:
    """(A stranger racing to name founders and found the DAO first,) the operator's genesis, the founder's DAO, the owner's
    registration of model m, then ``ops``."""
    s = Seq()
    for what in early:
        stranger(s, what)
    s.add("log.genesis", {"founders": [FOUNDER.did]}, operator)
    i = s.add("gov.init", {"name": "dao", "allocations": {HOLDER.did: 1000}, "reputation": {HOLDER.did: 100},
                           "params": {"guardians": [G1.did, G2.did], "guardian_threshold": 2, "voting_delay": 0,
                                      "voting_period": 86400, "timelock": 86400, "quorum_bps": 1000}}, FOUNDER)
    s.dao_id = leaf_hash_hex(s.entries[i][0].leaf_bytes)
    # the owner registers the name first (a stranger registering a *new* name is allowed: it owns that one)
    s.add("model.register", {"name": "m", "manifest": {"root": "00" * 32}}, OWNER)
    for who, what in ops:
        if who == "owner":
            if what == "rotate":
                if s.owner_key is OWNER:
                    s.add("identity.rotate", {"old": OWNER.did, "new": OWNER2.did}, OWNER)
                    s.owner_key = OWNER2
                continue
            if what == "register":
                s.add("model.register", {"name": "m", "manifest": {"root": f"{len(s.entries):064x}"}}, s.owner_key)
            else:
                s.add(f"model.{what}", {"name": "m", "reason": what}, s.owner_key)
        elif who == "guardians":
            s.nonce += 1
            n = str(s.nonce)
            keys = {"G1": G1, "G2": G2, "S": STRANGER}
            stmt = guardian_statement(s.dao_id, "m", "unsafe", n)
            cos = [{"signer": keys[g].did, "sig": base64.b64encode(keys[g].sign(stmt)).decode()} for g in what]
            s.add("gov.guardian.suspend", {"model": "m", "reason": "unsafe", "nonce": n, "cosigs": cos}, G1)
        elif who == "dao":
            p = s.add("gov.propose", {"description": what, "actions": [{"kind": what, "model": "m"}]}, HOLDER)
            s.last_proposal = p
            ph = leaf_hash_hex(s.entries[p][0].leaf_bytes)
            ref = {"proposal": p, "proposal_hash": ph}
            s.add("gov.vote", {**ref, "support": "for"}, HOLDER)
            s.add("gov.queue", ref, HOLDER, dt=DAY)
            s.add("gov.execute", ref, HOLDER, dt=DAY)
        else:
            stranger(s, what)
    return s


def stranger(s: Seq, what: str) -> None:
    S = STRANGER
    if what in ("register", "revoke", "suspend", "reinstate", "unrevoke"):
        body = {"name": "m", "manifest": {"root": "ee" * 32}} if what == "register" else {"name": "m"}
        s.add(f"model.{what}", body, S, stranger=True)
    elif what == "gov.init":
        s.add("gov.init", {"name": "evil", "allocations": {S.did: 10**6},
                           "params": {"guardians": [S.did], "guardian_threshold": 1}}, S, stranger=True)
    elif what == "gov.mint":
        s.add("gov.mint", {"allocations": {S.did: 10**6}}, S, stranger=True)
    elif what == "gov.reputation":
        s.add("gov.reputation", {"grants": {S.did: 10**6}}, S, stranger=True)
    elif what == "guardian":
        s.nonce += 1
        stmt = guardian_statement(s.dao_id, "m", "x", str(s.nonce))
        s.add("gov.guardian.suspend", {"model": "m", "reason": "x", "nonce": str(s.nonce), "cosigs": [
            {"signer": S.did, "sig": base64.b64encode(S.sign(stmt)).decode()}]}, S, stranger=True)
    elif what in ("vote", "cancel") and s.last_proposal is not None:
        p = s.last_proposal
        ref = {"proposal": p, "proposal_hash": leaf_hash_hex(s.entries[p][0].leaf_bytes)}
        s.add(f"gov.{what}", {**ref, "support": "against"} if what == "vote" else ref, S, stranger=True)
    elif what == "propose":
        s.add("gov.propose", {"description": "x", "actions": [{"kind": "model.revoke", "model": "m"}]}, S,
              stranger=True)
    elif what == "genesis":
        s.add("log.genesis", {"founders": [S.did]}, S, stranger=True)
    elif what == "rotate-owner":
        s.add("identity.rotate", {"old": s.owner_key.did, "new": S.did}, S, stranger=True)
    elif what == "transfer":
        s.add("gov.transfer", {"to": S.did, "amount": 5}, S, stranger=True)
    elif what == "stake":
        s.add("stake.claim", {"subject": "entry:1", "claim": "authentic", "stake": 5}, S, stranger=True)
    elif what == "identity.revoke-owner":
        s.add("identity.revoke", {"did": s.owner_key.did}, S, stranger=True)
    else:
        s.add("note", {"noop": what}, S, stranger=True)


def fold(entries: list[Any], operator: str = OPERATOR.did) -> tuple[AuthorityState, GovState]:
    a, g = AuthorityState(operator), GovState(operator)
    for i, e in enumerate(entries):
        if AuthorityState.handles(e.type):
            a.replay_apply(i, e)
        if e.type.startswith(("gov.", "stake.")) or e.type in ("log.genesis", "identity.revoke"):
            g.replay_apply(i, e)
    return a, g


def spec(ops: list[tuple[str, Any]]) -> dict[str, Any]:
    """The table, written out independently: who may change what, and what the model's status is then."""
    registered, owner_ruling, dao, owner_key = True, None, None, "OWNER"  # build() registers m first
    for who, what in ops:
        if who == "owner":
            if what == "rotate":
                owner_key = "OWNER2"
            elif what == "register":
                pass  # a new version
            else:
                owner_ruling = {"revoke": "revoked", "suspend": "suspended"}.get(what)
        elif who == "guardians":
            valid = set(what) <= {"G1", "G2"} and len(set(what)) >= 2
            if valid and (dao is None or dao["state"] not in ("suspended", "revoked")):
                dao = {"state": "suspended", "prev": dao}
        elif who == "dao":
            if what == "model.revoke":
                dao = {"state": "revoked"}
            elif what == "model.approve":
                dao = {"state": "approved"}
            elif dao is not None and dao["state"] == "suspended":
                dao = {"state": "revoked"} if what == "suspension.confirm" else (dao["prev"] or {"state": "active"})
    rulings = {("owner", owner_ruling)} if owner_ruling else set()
    if dao is not None and dao["state"] in ("revoked", "suspended"):
        rulings.add(("dao", dao["state"]))
    states = {r[1] for r in rulings}
    state = ("revoked" if "revoked" in states else "suspended" if states else
             "approved" if dao is not None and dao["state"] == "approved" else
             "active" if registered else "unregistered")
    return {"state": state, "rulings": rulings, "registered": registered, "owner_key": owner_key}


def observed(a: AuthorityState, g: GovState) -> dict[str, Any]:
    ms = model_status(a.models, "m", g.models.get("m"))
    return {"state": ms.state, "rulings": {("owner" if r.authority == "owner" else "dao", r.state) for r in ms.rulings},
            "registered": ms.registration is not None}


def derived(a: AuthorityState, g: GovState) -> bytes:
    """Everything the folds derive, without the lists of ignored entries (which say what was refused)."""
    ms = model_status(a.models, "m", g.models.get("m")).to_dict()
    ms.pop("ignored")
    summ = {k: v for k, v in g.summary().items() if k not in ("rejected", "clock")}
    doc = {"model": ms, "gov": summ, "balances": {k: v for k, v in g.balances.items() if v},
           "votes": {k: h.now() for k, h in g.votes.items() if h.now()},
           "reputation": {k: h.now() for k, h in g.rep.items() if h.now()},
           "locked": {k: v for k, v in g.locked.items() if v},
           "proposals": {str(k): p.to_dict(g.clock) for k, p in g.proposals.items()},
           "claims": {str(k): c.to_dict(g.clock) for k, c in g.claims.items()},
           "keys": [sorted(a.keys.root.items()), sorted(a.keys.retired), sorted(a.keys.revoked)],
           "founders": list(a.config.founders), "genesis": a.config.genesis, "revoked": sorted(g.revoked)}
    return canonical_json(doc)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, EARLY)
def test_model_status_is_what_the_table_says(ops, early):
    s = build(ops, early)
    a, g = fold([e for e, _ in s.entries])
    want = spec(ops)
    got = observed(a, g)
    assert got["state"] == want["state"], (ops, got, want)
    assert got["rulings"] == want["rulings"], (ops, got, want)
    assert got["registered"] == want["registered"]
    if want["registered"]:
        assert a.models.models["m"].owner == OWNER.did  # the name stays with the first registrant's principal
        assert a.keys.current(OWNER.did) == (OWNER2.did if want["owner_key"] == "OWNER2" else OWNER.did)
    # the DAO is the founder's, never the stranger's
    assert g.minter == FOUNDER.did and g.name == "dao" and g.balances.get(STRANGER.did, 0) == 0


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(OPS, EARLY)
def test_a_strangers_entries_never_change_the_derived_state(ops, early):
    s = build(ops, early)
    with_stranger = [e for e, _ in s.entries]
    without = [e if not by_stranger else build_entry("note", {"i": i}, STRANGER.did, e.time, STRANGER.sign)
               for i, (e, by_stranger) in enumerate(s.entries)]
    a1, g1 = fold(with_stranger)
    a2, g2 = fold(without)
    assert derived(a1, g1) == derived(a2, g2), ops
    # and every stranger entry that a fold reads was refused there, not silently taken
    refused = {i for i, _ in a1.ignored} | {i for i, _ in g1.rejected}
    for i, (e, by_stranger) in enumerate(s.entries):
        if by_stranger and e.type != "note":
            assert i in refused, (i, e.type)


def test_only_the_owner_lifts_its_revocation_and_only_the_dao_lifts_the_daos():
    """A worked example of the table's independence rule (each authority lifts only its own ruling)."""
    ops = [("owner", "register"), ("owner", "revoke"), ("dao", "model.revoke"), ("owner", "reinstate")]
    a, g = fold([e for e, _ in build(ops).entries])
    ms = model_status(a.models, "m", g.models.get("m"))
    assert ms.state == "revoked" and ms.authority == "dao" and [r.authority for r in ms.rulings] == ["dao"]
    ops = [("owner", "register"), ("guardians", ("G1", "G2")), ("owner", "revoke"), ("dao", "suspension.lift")]
    a, g = fold([e for e, _ in build(ops).entries])
    ms = model_status(a.models, "m", g.models.get("m"))
    assert ms.state == "revoked" and ms.authority == "owner" and "owner" in (ms.by or "")
