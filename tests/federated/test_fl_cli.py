"""`ailedger fl`: run, show, replay (exit 1 on a tampered update, naming client and round), remove, and
bad input (exit 2)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.federated.params import deserialize, serialize


def _run(led, *args, code=0):
    r = CliRunner().invoke(main, ["--ledger", str(led), *map(str, args)])
    assert r.exit_code == code, (r.output, r.exception)
    return r


def test_cli_run_show_replay_remove(ledger, tmp_path):
    led = ledger.path
    out = json.loads(_run(led, "fl", "run", "--clients", 6, "--rounds", 4, "--poisoned", 2, "--attack", "scale",
                          "--strategy", "median", "--json").stdout)
    run = out["run"]
    assert out["rounds"] == 4 and len(out["poisoned"]) == 2
    assert set(out["flagged"]) == set(out["poisoned"])  # the scaled updates stand out in every round
    assert all(rs == [1, 2, 3, 4] for rs in out["flagged"].values())
    shown = json.loads(_run(led, "fl", "show", run, "--chart", tmp_path / "c.png", "--json").stdout)
    assert shown["flagged"] == out["flagged"] and (tmp_path / "c.png").stat().st_size > 1000
    rep = json.loads(_run(led, "fl", "replay", run, "--json").stdout)
    assert rep["ok"] and rep["final_root"] == out["final_root"]
    rm = json.loads(_run(led, "fl", "remove", run, out["poisoned"][0], "--reason", "scaled updates", "--json").stdout)
    assert rm["rounds"] == [1, 2, 3, 4] and rm["flagged_in"] == [1, 2, 3, 4]
    assert "removed" in _run(led, "fl", "show", run).stdout
    # tamper one stored update: replay fails (exit 1), naming client and round; nothing is written
    size = ledger.size
    victim = min(out["clients"])
    p = led / "fl-store" / f"run-{run}" / "r0003" / (victim.removeprefix("did:key:") + ".bin")
    t = deserialize(p.read_bytes())
    t[0] = t[0][:-8] + bytes(8)
    p.write_bytes(serialize(t))
    r = _run(led, "fl", "replay", run, code=1)
    assert f"round 3: the stored update of client {victim} does not match its logged digest" in r.stderr
    assert ledger.size == size


def test_cli_bad_input(ledger):
    led = ledger.path
    r = _run(led, "fl", "run", "--clients", 1, code=2)
    assert "--clients must be between 2 and 100" in r.stderr
    r = _run(led, "fl", "run", "--clients", 4, "--poisoned", 4, code=2)
    assert "--poisoned must be" in r.stderr
    r = _run(led, "fl", "run", "--strategy", "median", "--dp-clip", 1, "--dp-noise", 1, code=2)
    assert "--dp-noise needs a mean rule" in r.stderr
    r = _run(led, "fl", "run", "--dp-clip", 1, code=2)
    assert "both --dp-clip and --dp-noise" in r.stderr
    r = _run(led, "fl", "replay", 0, code=2)
    assert "not an fl.run" in r.stderr
    assert not list(ledger.find(type="fl.run"))
    assert not list(ledger.find(type="fl.round"))
