"""The proposal analyst: advice on the record, replay, the refusals of the issue (no mocks: a real ledger, the
real governance fold, scikit-learn)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.daoai import ADVICE
from ailedger.daoai import analyst as an
from ailedger.errors import NotFoundError, VerificationError
from ailedger.governance import service as gov
from tests.governance.govhelp import DAY, T, dao, make_ledger, people


@pytest.fixture
def world(tmp_path):
    led = make_ledger(tmp_path)
    p = people(led, "admin", "alice", "bob", "carol", "analyst")
    dao(led, p)
    led.append_record("model.register", {"name": "analyst", "manifest": {"root": an.manifest()["root"]}},
                      p["analyst"], time=T(1))
    led.append_record("model.register", {"name": "m1", "manifest": {"root": "ab" * 32}}, p["bob"], time=T(1))
    pid = gov.propose(led, p["alice"], [{"kind": "model.revoke", "model": "m1", "reason": "unsafe"}],
                      "revoke m1", time=T(100))["id"]
    yield led, p, pid
    led.close()


def test_manifest_is_reproducible():
    m = an.manifest()
    an._model.cache_clear()
    an.manifest.cache_clear()
    assert an.manifest()["root"] == m["root"]
    assert len(m["nodes"]) > 3


def test_advice_logged_and_replayed(world):
    led, p, pid = world
    res = an.log_advice(led, p["analyst"], pid, model="analyst")
    out = res["body"]["output"]
    assert 0.0 <= out["risk_score"] <= 1.0 and out["reasons"] and out["predicted_effect"]
    assert "revokes model m1" in out["predicted_effect"][0]
    assert out["simulation"]["strategy"] == "token"
    kept, _ = an.effective_advice(led, pid)
    assert [i for i, _ in kept] == [res["index"]]
    r = an.replay(led, res["index"], res["inputs"], res["salt"])
    assert r["identical"] is True
    # the analyst never votes: the tally is untouched
    assert gov.proposal_info(led, pid)["tally"] == {"for": 0, "against": 0, "abstain": 0}


def test_risky_vs_plain_proposals_differ():
    base = {"id": 5, "description": "a careful and long description " * 5, "strategy": "capped", "cap": 50,
            "quorum": 3000, "total_power": 10000, "proposal_hash": "12" * 32}
    calm = an.analyse(an.advise_inputs({**base, "actions": [{"kind": "model.approve", "model": "x"}]}, 3000))
    rough = an.analyse(an.advise_inputs({**base, "actions": [{"kind": "param.set", "key": "quorum_bps",
                                                               "value": 100}]}, 3000))
    assert rough["risk_score"] > calm["risk_score"]


def test_unknown_proposal_refused(world):
    led, p, _ = world
    n = led.size
    with pytest.raises(NotFoundError, match="no proposal 999"):
        an.log_advice(led, p["analyst"], 999, model="analyst")
    assert led.size == n


def test_unregistered_model_refused(world):
    led, p, pid = world
    n = led.size
    with pytest.raises(NotFoundError):
        an.log_advice(led, p["analyst"], pid, model="nobody")
    with pytest.raises(VerificationError, match="manifest root"):
        an.log_advice(led, p["analyst"], pid, model="m1")   # registered, but not the analyst
    assert led.size == n


def test_revoked_model_refused(world):
    led, p, _ = world
    rp = gov.propose(led, p["alice"], [{"kind": "model.revoke", "model": "analyst", "reason": "biased"}],
                     "revoke analyst", time=T(200))["id"]
    gov.vote(led, p["alice"], rp, "for", time=T(300))
    gov.queue(led, p["alice"], rp, time=T(300 + 3 * DAY))
    gov.execute(led, p["alice"], rp, time=T(300 + 5 * DAY + 10))
    n = led.size
    with pytest.raises(VerificationError, match="revoked"):
        an.log_advice(led, p["analyst"], rp, model="analyst")
    assert led.size == n and not [e for _, e in led.find(type=ADVICE)]


def test_replay_with_wrong_inputs_refused(world):
    led, p, pid = world
    res = an.log_advice(led, p["analyst"], pid, model="analyst")
    bad = json.loads(json.dumps(res["inputs"]))
    bad["proposal"]["quorum"] += 1
    with pytest.raises(VerificationError, match="do not open the commitment"):
        an.replay(led, res["index"], bad, res["salt"])
    with pytest.raises(VerificationError, match="do not open the commitment"):
        an.replay(led, res["index"], res["inputs"], "00" * 32)


def test_cli_advise_show_replay(world, tmp_path):
    led, _p, pid = world
    path = str(led.path)
    led.close()
    r = CliRunner()
    env = {"AILEDGER_PASSPHRASE": ""}
    out = r.invoke(main, ["gov", "advise", str(pid), "--model", "analyst", "--as", "analyst", "--ledger", path,
                          "-o", str(tmp_path / "in.json"), "--json"], env=env)
    assert out.exit_code == 0, out.output
    idx = json.loads(out.output)["index"]
    show = r.invoke(main, ["gov", "show", str(pid), "--ledger", path])
    assert "advice" in show.output and "risk" in show.output, show.output
    ok = r.invoke(main, ["gov", "advice-replay", str(idx), "--inputs", str(tmp_path / "in.json"), "--ledger", path,
                         "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["identical"] is True, ok.output
    doc = json.loads((tmp_path / "in.json").read_text())
    doc["salt"] = "11" * 32
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    bad = r.invoke(main, ["gov", "advice-replay", str(idx), "--inputs", str(tmp_path / "bad.json"), "--ledger", path])
    assert bad.exit_code == 1 and "commitment" in bad.output
    unk = r.invoke(main, ["gov", "advise", "999", "--model", "analyst", "--as", "analyst", "--ledger", path], env=env)
    assert unk.exit_code == 2 and "no proposal 999" in unk.output


def test_exported_folder_registers_with_the_analyst_root(tmp_path):
    from ailedger.provenance.hashing import hash_model_dir

    an.export(tmp_path / "analyst")
    assert hash_model_dir(tmp_path / "analyst", workers=1).root.hex() == an.manifest()["root"]
    (tmp_path / "analyst" / "analyst.json").write_bytes(b"{}")
    assert hash_model_dir(tmp_path / "analyst", workers=1).root.hex() != an.manifest()["root"]


def test_explorer_shows_advice_beside_the_proposal(world):
    from starlette.testclient import TestClient

    from ailedger.http.app import create_app

    led, p, pid = world
    before = TestClient(create_app(led)).get(f"/proposals/{pid}")
    assert before.status_code == 200 and "Advice (" not in before.text
    res = an.log_advice(led, p["analyst"], pid, model="analyst")
    r = TestClient(create_app(led)).get(f"/proposals/{pid}")
    assert r.status_code == 200, r.text[:300]
    assert "Advice (1)" in r.text and f'id="advice-{res["index"]}"' in r.text
    assert "revokes model m1" in r.text and res["body"]["output"]["risk"] in r.text
