"""Governance service and fold: lifecycle, strategies, snapshots, refusals (each leaves state unchanged)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ailedger.encoding.records import build_entry
from ailedger.errors import (
    BadInputError,
    ConflictError,
    NotAuthorisedError,
    NotFoundError,
    SignatureError,
    VerificationError,
)
from ailedger.governance import service as gov
from ailedger.governance.state import GovState, iso
from tests.governance.govhelp import BASE, DAY, T, dao, make_ledger, people


@pytest.fixture
def env(tmp_path):
    led = make_ledger(tmp_path)
    p = people(led, "admin", "alice", "bob", "carol", "dave", "g1", "g2", "g3")
    yield led, p
    led.close()


def unchanged(led, fn):
    """Run fn expecting a refusal; the log and the state digest must not change."""
    size, digest = led.size, gov.state(led).digest()
    with pytest.raises((BadInputError, SignatureError)) as ei:
        fn()
    assert led.size == size
    assert gov.state(led).digest() == digest
    return ei.value


def revoke(led, p, who="alice", model="m1", t=100):
    return gov.propose(led, p[who], [{"kind": "model.revoke", "model": model, "reason": "unsafe"}],
                       "revoke m1", time=T(t))


def test_lifecycle_revokes_model_and_replay_agrees(env):
    led, p = env
    dao(led, p)
    assert gov.model_status(led, "m1") is None
    prop = revoke(led, p)
    pid = prop["id"]
    assert prop["state"] == "pending" and prop["total_power"] == 1000 and prop["quorum"] == 200
    e = unchanged(led, lambda: gov.vote(led, p["alice"], pid, "for", time=T(110)))
    assert "pending" in e.message
    assert gov.vote(led, p["alice"], pid, "for", time=T(200))["weight"] == 600
    assert gov.vote(led, p["bob"], pid, "against", time=T(300))["tally"] == {"for": 600, "against": 300,
                                                                            "abstain": 0}
    assert gov.proposal_info(led, pid, at=T(400))["state"] == "active"
    end = 100 + 60 + 3 * DAY
    assert gov.proposal_info(led, pid, at=T(end))["state"] == "succeeded"
    e = unchanged(led, lambda: gov.execute(led, p["carol"], pid, time=T(end + 1)))
    assert "only a queued proposal" in e.message
    q = gov.queue(led, p["carol"], pid, time=T(end + 1))
    assert q["state"] == "queued"
    e = unchanged(led, lambda: gov.execute(led, p["carol"], pid, time=T(end + 2 * DAY - 5)))
    assert "timelock" in e.message
    assert gov.model_status(led, "m1") is None
    x = gov.execute(led, p["carol"], pid, time=T(end + 2 * DAY + 1))
    assert x["state"] == "executed"
    st = gov.model_status(led, "m1")
    assert st["state"] == "revoked" and st["by"] == f"proposal {pid}" and st["reason"] == "unsafe"
    with pytest.raises(VerificationError, match=f"model m1 was revoked by proposal {pid} \\(unsafe\\)"):
        gov.require_model_usable(led, "m1")
    assert gov.require_model_usable(led, "m2") is None
    fresh = gov.replay(led)
    assert fresh.digest() == gov.state(led).digest()
    assert fresh.rejected == []
    assert gov.replay(led, verify_signatures=True, workers=2).digest() == fresh.digest()


def test_defeated_without_quorum_and_against_majority(env):
    led, p = env
    dao(led, p)
    pid = revoke(led, p)["id"]
    gov.vote(led, p["carol"], pid, "for", time=T(200))     # 100 of 1000 < 20 % quorum
    end = 100 + 60 + 3 * DAY
    assert gov.proposal_info(led, pid, at=T(end))["state"] == "defeated"
    e = unchanged(led, lambda: gov.queue(led, p["carol"], pid, time=T(end + 5)))
    assert "defeated" in e.message
    pid2 = revoke(led, p, t=end + 10)["id"]
    gov.vote(led, p["bob"], pid2, "for", time=T(end + 100))
    gov.vote(led, p["alice"], pid2, "against", time=T(end + 100))
    assert gov.proposal_info(led, pid2, at=T(2 * end))["state"] == "defeated"


def test_votes_refused_non_holder_double_window_and_replay(env, tmp_path):
    led, p = env
    dao(led, p)
    pid = revoke(led, p)["id"]
    e = unchanged(led, lambda: gov.vote(led, p["dave"], pid, "for", time=T(200)))
    assert "no delegated token votes" in e.message
    gov.vote(led, p["bob"], pid, "for", time=T(200))
    e = unchanged(led, lambda: gov.vote(led, p["bob"], pid, "against", time=T(201)))
    assert isinstance(e, ConflictError) and "already voted" in e.message
    # the very same signed entry submitted again
    entry = build_entry("gov.vote", {"proposal": pid, "proposal_hash": gov.state(led).proposal(pid).leaf_hash,
                                     "support": "for"}, p["carol"].did, T(300), p["carol"].sign)
    gov.submit_entry(led, entry)
    e = unchanged(led, lambda: gov.submit_entry(led, entry))
    assert "already voted" in e.message
    # a vote after the window closes, even back-dated, is evaluated at the governance clock
    end = 100 + 60 + 3 * DAY
    gov.transfer(led, p["alice"], p["dave"].did, 1, time=T(end + 300))   # moves the clock past the end
    back = iso(BASE + (end - 200) * 1000)   # 500 s before the clock: within the writer's skew, inside the window
    e = unchanged(led, lambda: gov.vote(led, p["alice"], pid, "for", time=back))
    assert "closed" in e.message
    # dated beyond the skew (either way) it is refused before the fold sees it
    e = unchanged(led, lambda: gov.vote(led, p["alice"], pid, "for", time=iso(BASE + (end + 300 - 700) * 1000)))
    assert e.code == "stale_time"
    # unknown proposal, bad support, forged signature
    unchanged(led, lambda: gov.vote(led, p["alice"], 99999, "for", time=T(end + 6)))
    bad = build_entry("gov.vote", {"proposal": pid, "support": "yes"}, p["alice"].did, T(end + 6), p["alice"].sign)
    assert "support" in unchanged(led, lambda: gov.submit_entry(led, bad)).message
    forged = build_entry("gov.vote", {"proposal": pid, "support": "for"}, p["alice"].did, T(end + 6),
                         p["bob"].sign)
    unchanged(led, lambda: gov.submit_entry(led, forged))


def test_vote_replayed_from_another_ledger_is_refused(env, tmp_path):
    led, p = env
    dao(led, p)
    pid = revoke(led, p)["id"]
    other = make_ledger(tmp_path, "other")
    try:
        gov.name_founders(other, [p["admin"].did])
        gov.init_dao(other, p["admin"], "other", allocations={p["bob"].did: 5}, time=T(0))
        # pad the other log so that its proposal gets the same index
        while other.size < pid:
            other.append_record("note.pad", {"n": other.size}, p["admin"])
        opid = gov.propose(other, p["bob"], [{"kind": "model.approve", "model": "m1"}], "x", time=T(100))["id"]
        assert opid == pid
        theirs = gov.vote(other, p["bob"], opid, "for", time=T(200))
        vote_bytes = other.entry_bytes(theirs["index"])
    finally:
        other.close()
    from ailedger.encoding.records import parse_entry
    e = unchanged(led, lambda: gov.submit_entry(led, parse_entry(vote_bytes)))
    assert "another ledger" in e.message


def test_snapshot_blocks_flash_loan_votes(env):
    led, p = env
    dao(led, p)
    pid = revoke(led, p)["id"]
    gov.transfer(led, p["alice"], p["dave"].did, 500, time=T(150))   # after the snapshot
    e = unchanged(led, lambda: gov.vote(led, p["dave"], pid, "for", time=T(200)))
    assert "snapshot" in e.message
    assert gov.vote(led, p["alice"], pid, "for", time=T(200))["weight"] == 600   # power at the snapshot
    assert gov.balances(led, p["alice"].did)["balance"] == 100
    # a later proposal sees the new balances
    pid2 = revoke(led, p, t=300, model="m2")["id"]
    assert gov.vote(led, p["dave"], pid2, "for", time=T(400))["weight"] == 500


def test_delegation_moves_votes(env):
    led, p = env
    dao(led, p)
    gov.delegate(led, p["bob"], p["alice"].did, time=T(10))
    e = unchanged(led, lambda: gov.delegate(led, p["bob"], p["alice"].did, time=T(11)))
    assert "already delegates" in e.message
    pid = revoke(led, p)["id"]
    assert gov.vote(led, p["alice"], pid, "for", time=T(200))["weight"] == 900
    assert "no delegated" in unchanged(led, lambda: gov.vote(led, p["bob"], pid, "for", time=T(200))).message
    # transfers out of a delegator move the delegate's votes
    gov.transfer(led, p["bob"], p["carol"].did, 100, time=T(300))
    assert gov.balances(led, p["alice"].did)["votes"] == 800
    assert gov.balances(led, p["carol"].did)["votes"] == 200


@pytest.mark.parametrize("strategy,expect", [
    ("token", {"alice": 600, "bob": 300}),
    ("quadratic", {"alice": 24, "bob": 17}),
    ("capped", {"alice": 250, "bob": 250}),
    ("reputation", {"alice": 5, "bob": 40}),
])
def test_strategies_weigh_votes(env, strategy, expect):
    led, p = env
    dao(led, p, strategy=strategy, rep={"alice": 5, "bob": 40}, cap_bps=2500)
    pid = revoke(led, p)["id"]
    for who, w in expect.items():
        assert gov.vote(led, p[who], pid, "for", time=T(200))["weight"] == w
    info = gov.proposal_info(led, pid, at=T(300))
    assert info["strategy"] == strategy
    total = {"token": 1000, "quadratic": 24 + 17 + 10, "capped": 250 + 250 + 100, "reputation": 45}[strategy]
    assert info["total_power"] == total


def test_bad_proposals_refused(env):
    led, p = env
    dao(led, p)
    e = unchanged(led, lambda: gov.propose(led, p["alice"], [{"kind": "model.delete", "model": "m"}], "x",
                                           time=T(5)))
    assert "unknown action kind 'model.delete'" in e.message
    e = unchanged(led, lambda: gov.propose(led, p["alice"], [{"kind": "param.set", "key": "quorum", "value": 1}],
                                           "x", time=T(5)))
    assert "unknown governance parameter" in e.message
    e = unchanged(led, lambda: gov.propose(led, p["alice"], [{"kind": "param.set", "key": "strategy",
                                                              "value": "plutocracy"}], "x", time=T(5)))
    assert "strategy must be" in e.message
    unchanged(led, lambda: gov.propose(led, p["alice"], [], "x", time=T(5)))
    e = unchanged(led, lambda: gov.propose(led, p["dave"], [{"kind": "model.approve", "model": "m"}], "x",
                                           time=T(5)))
    assert "proposal threshold" in e.message
    raw = build_entry("gov.propose", {"description": "d", "actions": [{"kind": "rm -rf"}]}, p["alice"].did, T(6),
                      p["alice"].sign)
    unchanged(led, lambda: gov.submit_entry(led, raw))
    e = unchanged(led, lambda: gov.mint(led, p["alice"], {p["alice"].did: 10**6}, time=T(7)))
    assert "only the DAO minter" in e.message
    e = unchanged(led, lambda: gov.transfer(led, p["carol"], p["dave"].did, 101, time=T(7)))
    assert "balance 100" in e.message
    with pytest.raises(ConflictError):
        gov.init_dao(led, p["admin"], "again", time=T(8))


def test_param_change_approve_and_cancel(env):
    led, p = env
    dao(led, p)
    pid = gov.propose(led, p["alice"], [{"kind": "param.set", "key": "quorum_bps", "value": 5000},
                                        {"kind": "dataset.approve", "dataset": "books-v1"},
                                        {"kind": "model.approve", "model": "m9"}], "params", time=T(100))["id"]
    gov.vote(led, p["alice"], pid, "for", time=T(200))
    end = 100 + 60 + 3 * DAY
    gov.queue(led, p["alice"], pid, time=T(end))
    gov.execute(led, p["alice"], pid, time=T(end + 2 * DAY))
    st = gov.state(led)
    assert st.params["quorum_bps"] == 5000
    assert gov.dataset_status(led, "books-v1")["state"] == "approved"
    assert gov.model_status(led, "m9") == {**gov.model_status(led, "m9"), "state": "approved",
                                           "by": f"proposal {pid}"}
    t0 = end + 3 * DAY
    pid2 = revoke(led, p, t=t0)["id"]
    assert gov.proposal_info(led, pid2, at=T(t0 + 1))["quorum"] == 500
    assert "only the proposer" in unchanged(led, lambda: gov.cancel(led, p["bob"], pid2, time=T(t0 + 1))).message
    assert gov.cancel(led, p["alice"], pid2, time=T(t0 + 2))["state"] == "canceled"
    assert "canceled" in unchanged(led, lambda: gov.vote(led, p["alice"], pid2, "for", time=T(t0 + 100))).message


def test_queued_proposal_expires(env):
    led, p = env
    dao(led, p)
    pid = revoke(led, p)["id"]
    gov.vote(led, p["alice"], pid, "for", time=T(200))
    end = 100 + 60 + 3 * DAY
    gov.queue(led, p["alice"], pid, time=T(end))
    late = end + 2 * DAY + 7 * DAY + 1
    e = unchanged(led, lambda: gov.execute(led, p["alice"], pid, time=T(late)))
    assert "expired" in e.message
    assert gov.model_status(led, "m1") is None


def test_guardians_suspend_then_dao_lifts_or_confirms(env):
    led, p = env
    dao(led, p, guardians=("g1", "g2", "g3"), k=2)
    gov.propose(led, p["alice"], [{"kind": "model.approve", "model": "m1"}], "approve", time=T(50))
    s1 = gov.guardian_cosign(led, p["g1"], "m1", "leaks PII", "n1")
    e = unchanged(led, lambda: gov.guardian_suspend(led, p["g1"], "m1", "leaks PII", "n1", [s1], time=T(60)))
    assert "2 of 3 needed" in e.message
    outsider = gov.guardian_cosign(led, p["dave"], "m1", "leaks PII", "n1")
    assert "not a guardian" in unchanged(led, lambda: gov.guardian_suspend(
        led, p["g1"], "m1", "leaks PII", "n1", [s1, outsider], time=T(60))).message
    wrong = gov.guardian_cosign(led, p["g2"], "m1", "other reason", "n1")
    unchanged(led, lambda: gov.guardian_suspend(led, p["g1"], "m1", "leaks PII", "n1", [s1, wrong], time=T(60)))
    s2 = gov.guardian_cosign(led, p["g2"], "m1", "leaks PII", "n1")
    r = gov.guardian_suspend(led, p["g1"], "m1", "leaks PII", "n1", [s1, s2], time=T(60))
    assert r["state"] == "suspended"
    st = gov.model_status(led, "m1")
    assert st["state"] == "suspended" and st["by"] == "guardians (2 of 3)"
    assert isinstance(unchanged(led, lambda: gov.guardian_suspend(
        led, p["g3"], "m1", "leaks PII", "n1", [s1, s2], time=T(61))), ConflictError)
    pid = gov.propose(led, p["alice"], [{"kind": "suspension.lift", "model": "m1"}], "lift", time=T(100))["id"]
    gov.vote(led, p["alice"], pid, "for", time=T(200))
    end = 100 + 60 + 3 * DAY
    gov.queue(led, p["alice"], pid, time=T(end))
    gov.execute(led, p["alice"], pid, time=T(end + 2 * DAY))
    st = gov.model_status(led, "m1")
    assert st["state"] == "active" and st["lifted_by"] == f"proposal {pid}"
    # suspend again (new nonce) and confirm: revoked
    t = end + 3 * DAY
    sigs = [gov.guardian_cosign(led, p[g], "m1", "again", "n2") for g in ("g2", "g3")]
    gov.guardian_suspend(led, p["g2"], "m1", "again", "n2", sigs, time=T(t))
    pid2 = gov.propose(led, p["alice"], [{"kind": "suspension.confirm", "model": "m1"}], "confirm",
                       time=T(t + 1))["id"]
    gov.vote(led, p["alice"], pid2, "for", time=T(t + 100))
    gov.queue(led, p["bob"], pid2, time=T(t + 1 + 60 + 3 * DAY))
    gov.execute(led, p["bob"], pid2, time=T(t + 1 + 60 + 5 * DAY))
    st = gov.model_status(led, "m1")
    assert st["state"] == "revoked" and st["by"] == f"proposal {pid2}"
    assert gov.replay(led).digest() == gov.state(led).digest()


def _write_raw(led, entry):
    """Put an entry in the store as another writer (an older tool, another program) would: no checks."""
    from ailedger.tlog.ledger import entry_terms
    from ailedger.tlog.merkle import leaf_hash
    from ailedger.tlog.stores import LeafRow

    return led.log.append([LeafRow(entry.leaf_bytes, leaf_hash(entry.leaf_bytes), entry_terms(entry))])[0]


def test_entries_that_bypass_the_service_are_skipped_in_replay(env):
    led, p = env
    dao(led, p)
    pid = revoke(led, p)["id"]
    # the Ledger API refuses a non-holder's vote (no standing: not authorised) and stores nothing
    size = led.size
    with pytest.raises(NotAuthorisedError, match="no delegated token votes"):
        led.append_record("gov.vote", {"proposal": pid, "support": "for"}, p["dave"], time=T(200))
    assert led.size == size
    # written straight into the store (another writer): a non-holder vote and an early execute
    _write_raw(led, led.make_entry("gov.vote", {"proposal": pid, "support": "for"}, p["dave"], time=T(200)))
    _write_raw(led, led.make_entry("gov.execute", {"proposal": pid}, p["dave"], time=T(201)))
    st = gov.replay(led)
    assert st.rejected[0][1].startswith(f"{p['dave'].did} had no delegated")
    assert "only a queued proposal" in st.rejected[1][1]
    assert st.proposals[pid].tally["for"] == 0
    assert gov.state(led).digest() == st.digest()
    assert gov.model_status(led, "m1") is None
    rc = gov.recount(led, pid, verify_signatures=True, workers=2)
    assert rc["votes_counted"] == 0 and rc["refused_entries"] == 2 and rc["matches_live_state"]


def test_fold_rejects_entries_before_init_and_out_of_order():
    st = GovState()

    class E:
        type = "gov.vote"
        body = {"proposal": 0, "support": "for"}  # noqa: RUF012
        signer = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
        time = "2030-01-01T00:00:00.000Z"
        leaf_bytes = b"{}"
    with pytest.raises(BadInputError, match="gov.init must come first"):
        st.apply(0, E())
    assert st.applied == 0 and st.clock == 0
    with pytest.raises(NotFoundError):
        st.proposal(3)


def test_simulate_reports_whales(tmp_path):
    r = gov.simulate(holders=400, trials=100, seed=1)
    s = r["strategies"]
    assert set(s) == {"token", "quadratic", "reputation", "capped"}
    assert s["token"]["top3_decide_rate"] >= s["quadratic"]["top3_decide_rate"]
    assert s["token"]["top3_weight_share"] > s["capped"]["top3_weight_share"]
    png = gov.simulate_chart(r, tmp_path / "w.png")
    svg = gov.simulate_chart(r, tmp_path / "w.svg")
    assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in Path(svg).read_bytes()
    assert gov.simulate(holders=400, trials=100, seed=1) == r


def test_live_state_reads_sparse_governance_through_the_type_index(env, monkeypatch):
    led, p = env
    dao(led, p)
    led.log.append_data([b"filler-%d" % i for i in range(3000)])        # a log mostly of other records
    pid = revoke(led, p, t=100)["id"]
    gov.vote(led, p["alice"], pid, "for", time=T(200))
    led.log.append_data([b"more-%d" % i for i in range(3000)])
    monkeypatch.setattr(gov, "SPARSE_SCAN_FROM", 100)
    gov._invalidate(led)
    scanned = []
    real = gov._gov_leaves
    monkeypatch.setattr(gov, "_gov_leaves", lambda *a, **k: scanned.append(a) or real(*a, **k))
    st = gov.state(led)
    assert scanned == []                     # found through the index, no full scan
    assert st.proposals[pid].tally["for"] == 600
    monkeypatch.setattr(gov, "_gov_leaves", real)
    assert gov.replay(led).digest() == st.digest()
