"""`ailedger subnet ...` end to end in a subprocess-free CliRunner: exit codes, --json, messages."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ailedger.cli.main import main


def run(*args, ok=0):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == ok, (args, r.exit_code, r.output, getattr(r, "stderr", ""))
    return r


def test_subnet_cli_round(world):
    w = world
    L = ["--ledger", str(w.led.path)]
    w.led.close()
    out = json.loads(run("subnet", "show", "digits", "--json", *L).output)
    assert len(out["miners"]) == 3
    run("subnet", "commit", "digits", "--weights", "0=0.9,1=0.4", "--as", "v1", "--at", w.at(0, 5000), *L)
    r = run("subnet", "commit", "digits", "--weights", "0=0.9,1=0.4", "--as", "v1", "--at", w.at(0, 6000), *L, ok=2)
    assert "a second commit" in r.output
    r = run("subnet", "commit", "digits", "--weights", "0=-1", "--as", "v2", "--at", w.at(0, 6000), *L, ok=2)
    assert "negative" in r.output
    r = run("subnet", "commit", "digits", "--weights", "0=nan", "--as", "v2", "--at", w.at(0, 6000), *L, ok=2)
    assert "not a finite number" in r.output
    r = run("subnet", "commit", "digits", "--weights", "9=1", "--as", "v2", "--at", w.at(0, 6000), *L, ok=2)
    assert "not a registered miner" in r.output
    r = run("subnet", "commit", "digits", "--weights", "0=1", "--as", "v3", "--at", w.at(0, 6000), *L, ok=2)
    assert "no stake" in r.output
    run("subnet", "reveal", "digits", 0, "--as", "v1", "--at", w.at(1, 5000), *L)
    r = run("subnet", "epoch", "digits", "--as", "keeper", "--at", w.at(2, 100), "--json", *L)
    body = json.loads(r.output)["body"]
    assert body["epoch"] == 0 and body["result"]["pay"]["miners"][0] > body["result"]["pay"]["miners"][1]
    r = run("subnet", "epoch", "digits", 0, "--as", "keeper", "--at", w.at(2, 200), *L, ok=2)
    assert "already folded" in r.output
    r = run("subnet", "replay", "digits", "--json", *L)
    assert json.loads(r.output)["agree"] is True
    r = run("subnet", "show", "digits", "--png", str(w.led.path / "s.png"), *L)
    assert "miner 0" in r.output and (w.led.path / "s.png").exists()


def test_subnet_cli_bad_input(world):
    L = ["--ledger", str(world.led.path)]
    world.led.close()
    r = run("subnet", "create", "x", "--task", "{oops", "--as", "owner", *L, ok=2)
    assert "not valid JSON" in r.output
    r = run("subnet", "create", "x", "--task", "acc", "--param", "kappa_bps=0", "--as", "owner", *L, ok=2)
    assert "kappa_bps" in r.output
    r = run("subnet", "show", "nope", *L, ok=2)
    assert "no subnet named" in r.output
    r = run("subnet", "simulate", "--cartel", "1.5", ok=2)
    assert "shares of stake" in r.output


def test_simulate_cli_json(tmp_path):
    r = run("subnet", "simulate", "--epochs", 12, "--cartel", 0.3, "--png", tmp_path / "s.png", "--json")
    out = json.loads(r.output)
    assert out["figures"]["consensus"]["cartel_excess_relative"] < out["figures"]["mean"]["cartel_excess_relative"]
    assert (tmp_path / "s.png").exists()


def test_replay_exits_1_on_a_forged_epoch(world):
    from ailedger.encoding.records import build_entry
    from ailedger.subnets import service
    from ailedger.tlog.ledger import entry_terms
    from ailedger.tlog.merkle import leaf_hash
    from ailedger.tlog.stores import LeafRow

    w = world
    service.commit(w.led, w.ids["v1"], "digits", {0: 1.0, 1: 0.5}, time=w.at(0, 5000))
    service.reveal(w.led, w.ids["v1"], "digits", 0, time=w.at(1, 5000))
    _n, body = service.book(w.led).compute_next("digits")
    body["result"]["pay"]["owner"] += 5
    e = build_entry("subnet.epoch", body, w.ids["m0"].did, w.at(2, 100), w.ids["m0"].sign)
    w.led.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e))])  # past admission
    path = str(w.led.path)
    w.led.close()
    r = run("subnet", "replay", "digits", "--ledger", path, ok=1)
    assert "does not agree with the replay" in r.output and "pay" in r.output
