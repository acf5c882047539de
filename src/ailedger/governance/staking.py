"""Reputation staking on claims about content or data, with bonded disputes resolved by a vote of
reputation holders (or a jury drawn deterministically from a checkpoint root).

A creator stakes reputation on a claim ("authentic", "human-made", "licensed", ...) about a subject
(``entry:<index>`` for a logged record, ``sha256:<hex>``, ``cid:<cid>``, ...).  Within the challenge
window anyone holding reputation can dispute it by bonding reputation; reputation holders vote; after the
dispute period ``stake.resolve`` fixes the winner and ``stake.slash`` moves the loser's stake (part to the
winner, the rest burned).  Everything is a ledger entry folded by :mod:`ailedger.governance.state`.

For other features: ``claims_for(ledger, subject) -> list[dict]`` (content verify, the explorer).
"""

from __future__ import annotations

import time
from typing import Any

from ailedger.errors import BadInputError, VerificationError
from ailedger.governance import service as gov
from ailedger.governance.state import GovState, iso, time_ms

__all__ = [
    "check_jury_seeds",
    "claim_info",
    "claims_for",
    "dispute",
    "release",
    "reputation",
    "resolve",
    "slash",
    "stake_claim",
    "vote_dispute",
]


def stake_claim(ledger: Any, ident: Any, subject: str, claim: str, stake: int, *, note: str = "",
                time: str | None = None) -> dict[str, Any]:
    body = {"subject": subject, "claim": claim, "stake": stake, "subjects": [subject]}
    if note:
        body["note"] = note
    idx, st = gov.submit(ledger, "stake.claim", body, ident, time=time)
    return st.claims[idx].to_dict(st.clock)


def dispute(ledger: Any, ident: Any, claim_id: int, bond: int, reason: str, *,
            time: str | None = None) -> dict[str, Any]:
    """Open a dispute; the jury seed is the log's Merkle root at its current size (before this entry)."""
    st = gov.state(ledger)
    c = st.claim(claim_id)
    size = ledger.size
    if size < 1:
        raise BadInputError("the log is empty", field="claim")
    root = ledger.log.root_at(size)
    body = {"claim": claim_id, "bond": bond, "reason": reason, "seed": {"size": size, "root": root.hex()},
            "subjects": [c.subject]}
    idx, st = gov.submit(ledger, "stake.dispute", body, ident, time=time, terms=[f"claim:{claim_id}"])
    return {"index": idx, **st.claims[claim_id].to_dict(st.clock)}


def vote_dispute(ledger: Any, ident: Any, dispute_id: int, side: str, *, time: str | None = None) -> dict[str, Any]:
    body = {"dispute": dispute_id, "side": side}
    idx, st = gov.submit(ledger, "stake.vote", body, ident, time=time, terms=[f"dispute:{dispute_id}"])
    d = st.disputes[dispute_id]
    return {"index": idx, "dispute": dispute_id, "side": side, "weight": d.votes[ident.did][1], "tally": dict(d.tally)}


def _settle(ledger: Any, ident: Any, kind: str, dispute_id: int, time: str | None) -> dict[str, Any]:
    st0 = gov.state(ledger)
    d0 = st0.disputes.get(dispute_id)
    subjects = [st0.claims[d0.claim].subject] if d0 else []
    idx, st = gov.submit(ledger, kind, {"dispute": dispute_id, "subjects": subjects}, ident, time=time,
                         terms=[f"dispute:{dispute_id}"])
    d = st.disputes[dispute_id]
    return {"index": idx, **st.claims[d.claim].to_dict(st.clock)}


def resolve(ledger: Any, ident: Any, dispute_id: int, *, time: str | None = None) -> dict[str, Any]:
    return _settle(ledger, ident, "stake.resolve", dispute_id, time)


def slash(ledger: Any, ident: Any, dispute_id: int, *, time: str | None = None) -> dict[str, Any]:
    return _settle(ledger, ident, "stake.slash", dispute_id, time)


def release(ledger: Any, ident: Any, claim_id: int, *, time: str | None = None) -> dict[str, Any]:
    st0 = gov.state(ledger)
    c0 = st0.claim(claim_id)
    idx, st = gov.submit(ledger, "stake.release", {"claim": claim_id, "subjects": [c0.subject]}, ident, time=time)
    return {"index": idx, **st.claims[claim_id].to_dict(st.clock)}


def _now_ms(st: GovState, at: str | None, ledger: Any = None) -> int:
    if at is None:
        if ledger is not None:
            at = ledger.now()
        else:
            at = iso(int(time.time() * 1000))  # no ledger to read the clock of: this process's
    return max(st.clock, time_ms(at))


def claims_for(ledger: Any, subject: str, *, at: str | None = None) -> list[dict[str, Any]]:
    """Every reputation-staked claim about ``subject`` with its stake and dispute status, oldest first.

    Subjects are free strings; the content feature uses ``entry:<index>`` of its ``content.register``
    records.  Each dict: claim_id, subject, claim, staker, stake, status, staked_at, challenge_window_ends,
    dispute (None or {id, challenger, bond, tally, winner, ...})."""
    st = gov.state(ledger)
    if st.dao is None:
        return []
    now = _now_ms(st, at, ledger)
    return [c.to_dict(now) for _, c in sorted(st.claims.items()) if c.subject == subject]


def claim_info(ledger: Any, claim_id: int, *, at: str | None = None) -> dict[str, Any]:
    st = gov.state(ledger)
    return st.claim(claim_id).to_dict(_now_ms(st, at, ledger))


def reputation(ledger: Any, did: str) -> dict[str, Any]:
    st = gov.state(ledger)
    return {"did": did, "reputation": st.rep_now(did), "locked": st.locked.get(did, 0), "free": st.rep_free(did)}


def check_jury_seeds(ledger: Any, st: GovState | None = None) -> list[dict[str, Any]]:
    """The fold cannot see Merkle roots; this checks each dispute's seed against the log itself."""
    st = st or gov.state(ledger)
    problems = []
    for did_, d in sorted(st.disputes.items()):
        body = ledger.entry(did_).body
        seed = body.get("seed", {})
        size = seed.get("size")
        try:
            root = ledger.log.root_at(size).hex()
        except Exception as exc:  # noqa: BLE001
            problems.append({"dispute": did_, "problem": f"seed size unusable: {exc}"})
            continue
        if root != seed.get("root"):
            problems.append({"dispute": did_, "problem": "seed root is not this log's root at that size",
                             "expected": root, "found": seed.get("root")})
    return problems


def verify_seeds(ledger: Any) -> None:
    probs = check_jury_seeds(ledger)
    if probs:
        p = probs[0]
        raise VerificationError(f"dispute {p['dispute']}: {p['problem']}", expected=p.get("expected"),
                                found=p.get("found"))


_ = iso
