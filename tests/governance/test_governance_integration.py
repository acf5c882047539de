"""The contract with other features: the gateway's revocation check and content's dispute hook read the
governance and staking state through model_status() and claims_for()."""

from __future__ import annotations

import pytest

from ailedger.governance import service as gov
from ailedger.governance import staking
from tests.governance.govhelp import DAY, T, dao, make_ledger, people


@pytest.fixture
def env(tmp_path):
    led = make_ledger(tmp_path)
    p = people(led, "admin", "alice", "bob", "carol", "g1", "g2")
    yield led, p
    led.close()


def test_gateway_refuses_a_model_revoked_by_proposal_or_suspended(env):
    sdk = pytest.importorskip("ailedger.inference.sdk")
    led, p = env
    dao(led, p, guardians=("g1", "g2"), k=2)
    assert sdk.is_model_revoked(led, "m1") is None
    pid = gov.propose(led, p["alice"], [{"kind": "model.revoke", "model": "m1", "reason": "unsafe"}], "kill m1",
                      time=T(100))["id"]
    gov.vote(led, p["alice"], pid, "for", time=T(200))
    gov.queue(led, p["bob"], pid, time=T(100 + 60 + 3 * DAY))
    gov.execute(led, p["bob"], pid, time=T(100 + 60 + 5 * DAY))
    assert sdk.is_model_revoked(led, "m1") == f"revoked by proposal {pid} (unsafe)"
    sigs = [gov.guardian_cosign(led, p[g], "m2", "jailbreak", "x") for g in ("g1", "g2")]
    gov.guardian_suspend(led, p["g1"], "m2", "jailbreak", "x", sigs, time=T(6 * DAY))
    assert sdk.is_model_revoked(led, "m2") == "suspended by guardians (2 of 2) (jailbreak)"


def test_content_dispute_hook_sees_stakes(env):
    service = pytest.importorskip("ailedger.content.service")
    led, p = env
    dao(led, p, rep={"alice": 50, "bob": 50})
    cid = staking.stake_claim(led, p["alice"], "entry:3", "authentic", 10, time=T(10))["claim_id"]
    staking.dispute(led, p["bob"], cid, 10, "edited", time=T(20))
    out = service.find_disputes(led, 3)
    assert out["disputed"] and out["claims"][0]["claim_id"] == cid and out["claims"][0]["stake"] == 10
    assert {r["type"] for r in out["records"]} == {"stake.claim", "stake.dispute"}


def test_model_verify_fails_for_a_model_revoked_by_proposal(env, tmp_path):
    from ailedger.errors import VerificationError
    from ailedger.provenance import models

    led, p = env
    d = tmp_path / "m1dir"
    d.mkdir()
    (d / "weights.bin").write_bytes(b"\x01\x02" * 5000)
    models.register_model(led, d, name="m1", identity=p["alice"])
    assert models.verify_model(led, d)["ok"]
    dao(led, p, guardians=("g1", "g2"), k=2)
    pid = gov.propose(led, p["alice"], [{"kind": "model.revoke", "model": "m1", "reason": "unsafe"}], "kill m1",
                      time=T(100))["id"]
    gov.vote(led, p["alice"], pid, "for", time=T(200))
    gov.queue(led, p["bob"], pid, time=T(100 + 60 + 3 * DAY))
    gov.execute(led, p["bob"], pid, time=T(100 + 60 + 5 * DAY))
    with pytest.raises(VerificationError, match=f"revoked by proposal {pid}"):
        models.verify_model(led, d)
