"""`ailedger gov` and `ailedger stake` end to end on a real ledger directory."""

from __future__ import annotations

import json

import click
import pytest
from click.testing import CliRunner

from ailedger.cli import gov as gov_cli
from ailedger.cli import stake as stake_cli
from ailedger.governance.state import iso, time_ms
from ailedger.tlog.ledger import Ledger

BASE = time_ms("2030-01-01T00:00:00.000Z")
DAY = 86400


class Clock:
    """The clock the CLI's ledger reads in these tests (``services.ledger.system_clock``), moved by T()."""

    ms = BASE

    def __call__(self) -> float:
        return self.ms / 1000


CLOCK = Clock()


def T(s: float) -> str:
    """Move the test clock to s seconds after the epoch and return that time (for --at)."""
    CLOCK.ms = BASE + int(s * 1000)
    return iso(CLOCK.ms)


@pytest.fixture(autouse=True)
def clock(monkeypatch):
    from ailedger.tlog import ledger as ledger_mod

    T(0)
    monkeypatch.setattr(ledger_mod, "system_clock", CLOCK)
    return CLOCK


def main_for_founders():
    from ailedger.cli.main import _Group

    @click.group(cls=_Group)
    def main():
        pass

    gov_cli.register(main)
    stake_cli.register(main)
    return main


@pytest.fixture
def main():
    return main_for_founders()


@pytest.fixture
def env(tmp_path):
    led = Ledger.init(tmp_path / "ledger", origin="test.example/gov-cli")
    for n in ("admin", "alice", "bob", "carol", "g1", "g2"):
        led.identities.create(n)
    led.close()
    run(main_for_founders(), {"AILEDGER_LEDGER": str(tmp_path / "ledger")}, "gov", "founders", "admin")
    return {"AILEDGER_LEDGER": str(tmp_path / "ledger")}


def run(main, env, *args, code=0):
    r = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert r.exit_code == code, (args, r.output)
    return r


def js(main, env, *args, code=0):
    out = run(main, env, *args, "--json", code=code).output
    return json.loads(out.splitlines()[0])


def test_kill_switch_and_guardians_via_cli(main, env, tmp_path):
    js(main, env, "gov", "init", "--name", "d", "--as", "admin", "--alloc", "alice=600", "--alloc", "bob=300",
       "--alloc", "carol=100", "--rep", "alice=50", "--rep", "bob=50", "--rep", "carol=20", "--guardian", "g1",
       "--guardian", "g2", "--guardian-threshold", "2", "--param", "voting_delay=0", "--param", "quorum_bps=2000",
       "--at", T(0))
    p = js(main, env, "gov", "propose", "-m", "pull m1", "--revoke-model", "m1", "--reason", "jailbreak",
           "--as", "alice", "--at", T(10))
    pid = p["id"]
    v = js(main, env, "gov", "vote", str(pid), "for", "--as", "alice", "--at", T(20))
    assert v["weight"] == 600
    r = run(main, env, "gov", "vote", str(pid), "for", "--as", "alice", "--at", T(21), code=2)
    assert "already voted" in r.output
    end = 10 + 3 * DAY
    js(main, env, "gov", "queue", str(pid), "--as", "bob", "--at", T(end))
    r = run(main, env, "gov", "execute", str(pid), "--as", "bob", "--at", T(end + 60), code=2)
    assert "timelock until" in r.output
    x = js(main, env, "gov", "execute", str(pid), "--as", "bob", "--at", T(end + 2 * DAY))
    assert x["state"] == "executed"
    st = js(main, env, "gov", "status", "--model", "m1")
    assert st["status"]["state"] == "revoked" and st["status"]["by"] == f"proposal {pid}"
    txt = run(main, env, "gov", "status", "--model", "m1").output
    assert f"m1: revoked by proposal {pid} (jailbreak)" in txt
    # guardians: one signature is not enough; two suspend at once
    r = run(main, env, "gov", "suspend", "--model", "m2", "--reason", "r", "--nonce", "1", "--cosign-as", "g1",
            "--as", "g1", "--at", T(end + 3 * DAY), code=2)
    assert "2 of 2 needed" in r.output
    cos = run(main, env, "gov", "cosign", "--model", "m2", "--reason", "r", "--nonce", "1", "--as", "g2").output
    (tmp_path / "g2.json").write_text(cos)
    s = js(main, env, "gov", "suspend", "--model", "m2", "--reason", "r", "--nonce", "1", "--cosign-as", "g1",
           "--cosig", str(tmp_path / "g2.json"), "--as", "g1", "--at", T(end + 3 * DAY))
    assert s["state"] == "suspended"
    rep = js(main, env, "gov", "replay", "--verify-signatures")
    assert rep["matches_cached_state"] and rep["rejected_entries"] == [] and rep["models"]["m2"]["state"] == "suspended"
    rc = js(main, env, "gov", "recount", str(pid))
    assert rc["tally"]["for"] == 600 and rc["signatures_checked"] and rc["matches_live_state"]
    b = js(main, env, "gov", "balance", "bob")
    assert b["balance"] == 300 and b["reputation"] == 50
    sh = run(main, env, "gov", "show", str(pid)).output
    assert "EXECUTED" in sh


def test_bad_input_exits_2_with_reason(main, env):
    run(main, env, "gov", "init", "--name", "d", "--as", "admin", "--alloc", "alice=10", "--at", T(0))
    r = run(main, env, "gov", "propose", "-m", "x", "--action", '{"kind":"model.burn","model":"m"}', "--as", "alice",
            "--at", T(1), code=2)
    assert "unknown action kind 'model.burn'" in r.output
    r = run(main, env, "gov", "vote", "999", "for", "--as", "alice", "--at", T(2), code=2)
    assert "no proposal 999" in r.output
    r = run(main, env, "gov", "init", "--name", "d", "--as", "admin", "--param", "strategy=x", "--at", T(3), code=2)
    r = run(main, env, "stake", "claim", "entry:1", "authentic", "5", "--as", "bob", "--at", T(4), code=2)
    assert "free reputation" in r.output
    r = run(main, env, "stake", "slash", "77", "--as", "bob", "--at", T(5), code=2)
    assert "no dispute 77" in r.output


def test_stake_flow_via_cli(main, env):
    run(main, env, "gov", "init", "--name", "d", "--as", "admin", "--rep", "alice=100", "--rep", "bob=100",
        "--rep", "carol=30", "--param", "dispute_period=3600", "--at", T(0))
    c = js(main, env, "stake", "claim", "entry:5", "human-made", "40", "--as", "alice", "--at", T(1))
    d = js(main, env, "stake", "dispute", str(c["claim_id"]), "40", "--reason", "AI generated", "--as", "bob",
           "--at", T(2))
    did_ = d["dispute"]["id"]
    js(main, env, "stake", "vote", str(did_), "challenger", "--as", "carol", "--at", T(3))
    r = run(main, env, "stake", "slash", str(did_), "--as", "carol", "--at", T(4), code=2)
    assert "not resolved" in r.output
    js(main, env, "stake", "resolve", str(did_), "--as", "carol", "--at", T(3700))
    s = js(main, env, "stake", "slash", str(did_), "--as", "carol", "--at", T(3701))
    assert s["status"] == "refuted, stake slashed"
    shown = js(main, env, "stake", "show", "entry:5")
    assert shown["claims"][0]["dispute"]["winner"] == "challenger"
    assert "refuted, stake slashed" in run(main, env, "stake", "show", "entry:5").output
    assert js(main, env, "stake", "reputation", "alice")["reputation"] == 60


def test_simulate_writes_charts(main, env, tmp_path):
    r = js(main, env, "gov", "simulate", "--holders", "500", "--trials", "100", "--png", str(tmp_path / "w.png"),
           "--svg", str(tmp_path / "w.svg"))
    assert r["strategies"]["token"]["top3_decide_rate"] > r["strategies"]["reputation"]["top3_decide_rate"]
    assert (tmp_path / "w.png").stat().st_size > 1000 and (tmp_path / "w.svg").read_text().count("<svg") == 1


def test_real_cli_process_discovers_gov_and_stake(env):
    import subprocess
    import sys

    argv = [sys.executable, "-c", "from ailedger.cli.main import main; main()"]
    out = subprocess.run([*argv, "gov", "status", "--json"], capture_output=True, text=True, timeout=120,
                         env={**__import__("os").environ, **env}, check=False)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["name"] == ""
    out = subprocess.run([*argv, "stake", "slash", "3", "--as", "alice"], capture_output=True, text=True,
                         timeout=120, env={**__import__("os").environ, **env}, check=False)
    assert out.returncode == 2 and "error: no DAO in this ledger yet" in out.stderr


def test_only_the_operator_or_a_named_founder_founds_the_dao(main, tmp_path):
    led = Ledger.init(tmp_path / "l2", origin="test.example/gov-cli2")
    for n in ("alice", "bob"):
        led.identities.create(n)
    led.close()
    env = {"AILEDGER_LEDGER": str(tmp_path / "l2")}
    r = run(main, env, "gov", "init", "--name", "d", "--as", "alice", "--alloc", "alice=10", code=2)
    assert "has no effect" in r.output and "only the log operator" in r.output
    assert "ailedger gov founders alice" in r.output
    g = js(main, env, "gov", "founders", "alice")
    assert g["index"] == 0 and len(g["founders"]) == 1
    r = run(main, env, "gov", "founders", "bob", code=2)   # once per log
    assert "already has its genesis" in r.output
    r = run(main, env, "gov", "init", "--name", "d", "--as", "bob", "--alloc", "bob=10", code=2)
    assert "has no effect" in r.output
    assert js(main, env, "gov", "init", "--name", "d", "--as", "alice", "--alloc", "alice=10")["index"] == 1


def test_at_beyond_the_skew_is_refused(main, env):
    """--at cannot move the governance clock: a time more than 600 s from the machine's clock is refused."""
    js(main, env, "gov", "init", "--name", "d", "--as", "admin", "--alloc", "alice=600", "--param", "voting_delay=0",
       "--at", T(0))
    p = js(main, env, "gov", "propose", "-m", "x", "--revoke-model", "m1", "--as", "alice", "--at", T(10))
    far = iso(BASE + (10 + 4 * DAY) * 1000)          # the clock stays at T(10)
    r = run(main, env, "gov", "transfer", "bob", "1", "--as", "alice", "--at", far, code=2)
    assert "more than 600 s" in r.output
    assert js(main, env, "gov", "show", str(p["id"]), "--at", T(20))["state"] == "active"
