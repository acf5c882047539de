"""End to end on a real anvil, from the command line: a job posted, run by a cheating provider, challenged,
bisected, refereed and settled - with anvil restarted (its state dumped and loaded) in the middle of the
dispute.  Ports from this lane's range (18600-18699)."""

from __future__ import annotations

import json
import signal
import socket

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from tests.devchain import ANVIL_KEYS, AnvilNode, find_anvil

pytestmark = pytest.mark.anvil

K3 = "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6"   # anvil dev account 3 (public)
A3 = "0x90F79bf6EB2c4f870365E785982E1f101E93b906"
E18 = 10**18


def lane_port() -> int:
    for p in range(18620, 18700):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
                return p
            except OSError:
                continue
    raise RuntimeError("no free port in 18620-18699")


def cli(ledger, *args, code=0):
    r = CliRunner().invoke(main, ["--ledger", str(ledger), *[str(a) for a in args]])
    assert r.exit_code == code, r.output
    return r.output


def start(port, state):
    try:
        find_anvil()
    except Exception:  # noqa: BLE001
        pytest.skip("anvil binary missing: run `npm ci --prefix tools/anvil`")
    node = AnvilNode(port=port, extra_args=["--state", str(state)]).start()
    node.rpc("anvil_setBalance", [A3, hex(10 * E18)])      # the referee's account (anvil starts 3 here)
    return node


def stop_and_dump(node):
    assert node.proc is not None
    node.proc.send_signal(signal.SIGINT)   # anvil writes --state on exit
    node.proc.wait(15)
    node.proc = None


def test_post_run_challenge_settle_on_anvil_with_a_restart(tmp_path):
    port, state = lane_port(), tmp_path / "anvil-state.json"
    node = start(port, state)
    try:
        led = tmp_path / "ledger"
        CliRunner().invoke(main, ["init", str(led), "--origin", "test.example/compute"], catch_exceptions=False)
        for who in ("client", "provider", "verifier", "referee", "mallory"):
            cli(led, "identity", "new", who)
        k0, k1, k2 = ANVIL_KEYS
        cli(led, "compute", "deploy", "--rpc", node.url, "--key", k0)
        # bad input: not an address; nothing is posted
        out = cli(led, "compute", "post", "--as", "client", "--key", k0, "--referee", "referee", "--referee-address",
                  "0x1234", "--price", E18, "--bond", E18, code=2)
        assert "--referee-address is not an Ethereum address" in out
        post = json.loads(cli(led, "compute", "post", "--as", "client", "--key", k0, "--referee", "referee",
                              "--referee-address", A3, "--price", 2 * E18, "--bond", E18, "--steps", 16, "--rows", 64,
                              "--json"))
        assert post["job"] == 1
        cli(led, "compute", "bid", 1, "--as", "provider", "--key", k1)
        out = cli(led, "compute", "accept", 1, "--provider", "provider", "--as", "mallory", "--key", k2, code=2)
        assert "only the job's client" in out
        cli(led, "compute", "accept", 1, "--provider", "provider", "--as", "client", "--key", k0)
        cli(led, "compute", "run", 1, "--as", "provider", "--key", k1, "--cheat-step", 9)
        out = cli(led, "compute", "verify", 1, code=1)
        assert "first wrong step 9" in out
        cli(led, "compute", "challenge", 1, "--as", "verifier", "--key", k2)
        moved = json.loads(cli(led, "compute", "move", 1, "--provider-key", k1, "--json"))
        assert [m["by"] for m in moved["moves"]] == ["provider"]
        assert moved["status"]["dispute"]["turn"] == "challenger"

        stop_and_dump(node)                     # anvil goes away mid-dispute
        out = cli(led, "compute", "status", 1, code=2)
        assert "no Ethereum node answers" in out
        node = start(port, state)               # and comes back with its state
        st = json.loads(cli(led, "compute", "status", 1, "--json"))
        assert st["chain"]["phase"] == "disputed" and st["chain"]["dispute"]["turn"] == "challenger"

        moved = json.loads(cli(led, "compute", "move", 1, "--provider-key", k1, "--challenger-key", k2, "--json"))
        d = moved["status"]["dispute"]
        assert (d["lo"], d["hi"], d["turn"]) == (9, 10, "referee")
        # a step proof for the wrong step is refused, nothing logged or ruled
        (tmp_path / "proof.json").write_text(json.dumps({"step": 10, "state": {}}))
        out = cli(led, "compute", "referee", 1, "--as", "referee", "--key", K3, "--proof", tmp_path / "proof.json",
                  code=2)
        assert "the step proof is for step 10; the dispute is about step 9" in out
        out = cli(led, "compute", "referee", 1, "--as", "mallory", "--key", K3, code=2)
        assert "only the job's referee" in out
        ruled = json.loads(cli(led, "compute", "referee", 1, "--as", "referee", "--key", K3, "--json"))
        assert ruled["provider_right"] is False and ruled["settlement"]["outcome"] == "referee: provider wrong"
        assert json.loads(cli(led, "compute", "replay", ruled["entry"], "--json"))["provider_right"] is False
        out = cli(led, "compute", "settle", 1, "--key", k0, code=2)
        assert "nothing to settle" in out                       # settled once
        assert json.loads(cli(led, "compute", "withdraw", "--key", k2, "--json"))["amount"] == 2 * E18
        assert json.loads(cli(led, "compute", "withdraw", "--key", k0, "--json"))["amount"] == 2 * E18
        out = cli(led, "compute", "withdraw", "--key", k2, code=2)
        assert "NothingToWithdraw" in out                       # paid once
        st = json.loads(cli(led, "compute", "status", 1, "--json"))
        assert st["chain"]["phase"] == "settled" and st["ledger"]["verdict"]["provider_right"] is False
        assert len(st["ledger"]["result"]["roots"]) == 17
        assert int(node.rpc("eth_getBalance", [st["chain"]["contract"], "latest"]), 16) == 0   # nothing stuck
    finally:
        node.stop()
