"""Errors that name their fix (docs/cli.md "Exit codes and errors"), through the real command tree."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.tlog.ledger import Ledger


def run(ledger: Path, *args: str, code: int = 0) -> str:
    r = CliRunner().invoke(main, ["--ledger", str(ledger), *map(str, args)], env={"AILEDGER_LEDGER": None})
    assert r.exit_code == code, (args, r.exit_code, r.output)
    return r.output


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    with Ledger.init(tmp_path / "L", "example.org/hints") as led:
        for n in ("alice", "bob", "carol"):
            led.new_identity(n)
    return tmp_path / "L"


def _dao(ledger: Path, *params: str) -> None:
    run(ledger, "gov", "founders", "alice")
    extra = [x for p in params for x in ("--param", p)]
    run(ledger, "gov", "init", "--name", "dao", "--as", "alice", "--alloc", "alice=100", "--alloc", "bob=50", *extra)


def test_no_dao_names_gov_init(ledger: Path) -> None:
    out = run(ledger, "gov", "propose", "-m", "x", "--set", "quorum_bps=1", "--as", "bob", code=2)
    assert "run `ailedger gov init --name NAME --as bob`" in out
    out = run(ledger, "stake", "claim", "entry:0", "authentic", "5", "--as", "bob", code=2)
    assert "ailedger gov init" in out


def test_stake_without_reputation_names_who_grants_it(ledger: Path) -> None:
    _dao(ledger)
    out = run(ledger, "stake", "claim", "entry:0", "authentic", "5", "--as", "carol", code=2)
    assert "no reputation: run `ailedger gov reputation carol=POINTS --as alice`" in out
    r = CliRunner().invoke(main, ["--json", "--ledger", str(ledger), "stake", "claim", "entry:0", "authentic", "5",
                                  "--as", "carol"])
    err = json.loads(r.stdout)["error"]
    assert r.exit_code == 2 and err["code"] == "not_authorised" and "gov reputation carol=POINTS" in err["hint"]
    # following the hint works; then asking for more than is free says how much is
    run(ledger, "gov", "reputation", "carol=10", "--as", "alice")
    out = run(ledger, "stake", "claim", "entry:0", "authentic", "50", "--as", "carol", code=2)
    assert "stake at most 10" in out and "`ailedger stake reputation carol`" in out
    claim = json.loads(run(ledger, "stake", "claim", "entry:0", "authentic", "10", "--as", "carol", "--json"))
    # a dispute by someone with no reputation: the same hint, for the disputer
    out = run(ledger, "stake", "dispute", f"#{claim['claim_id']}", "10", "--reason", "no", "--as", "bob", code=2)
    assert "gov reputation bob=POINTS --as alice" in out


def test_governance_steps_say_when(ledger: Path) -> None:
    _dao(ledger, "voting_period=2", "timelock=600")
    p = json.loads(run(ledger, "gov", "propose", "-m", "x", "--set", "quorum_bps=1", "--as", "alice", "--json"))
    pid = p["id"]
    out = run(ledger, "gov", "queue", str(pid), "--as", "alice", code=2)
    assert f"voting on proposal {pid} ends at {p['voting_ends']}: then `ailedger gov queue {pid} --as alice`" in out
    assert "--param voting_period=60 --param timelock=0" in out
    out = run(ledger, "gov", "execute", f"#{pid}", "--as", "alice", code=2)
    assert "after the timelock, `ailedger gov execute" in out
    run(ledger, "gov", "vote", f"#{pid}", "for", "--as", "alice")
    time.sleep(2.2)
    out = run(ledger, "gov", "execute", str(pid), "--as", "alice", code=2)
    assert f"queue it first: `ailedger gov queue {pid} --as alice`" in out
    q = json.loads(run(ledger, "gov", "queue", str(pid), "--as", "alice", "--json"))
    out = run(ledger, "gov", "execute", str(pid), "--as", "alice", code=2)
    assert f"may be executed from {q['eta']}" in out
    out = run(ledger, "gov", "vote", "999", "for", "--as", "alice", code=2)
    assert "`ailedger find --type gov.propose` lists the proposals" in out


def test_unknown_names_say_where_to_look(ledger: Path) -> None:
    out = run(ledger, "gov", "founders", "nobody", code=2)
    assert "`ailedger identity list`" in out
    out = run(ledger, "model", "lineage", "nosuch", code=2)
    assert "`ailedger find --type model.register`" in out and "ailedger model register DIR" in out
    out = run(ledger, "dataset", "show", "nosuch", code=2)
    assert "`ailedger find --type dataset.commit`" in out
    out = run(ledger, "stake", "vote", "#12345", "claim", "--as", "alice", code=2)
    assert "stake.dispute" in out or "gov init" in out


def test_blob_put_more_shards_than_nodes_names_the_k_and_n_that_work(ledger: Path, tmp_path: Path) -> None:
    f = tmp_path / "f.bin"
    f.write_bytes(b"x" * 1000)
    nodes = ",".join(f"http://127.0.0.1:{p}" for p in (9, 10, 11))  # never contacted: refused before any upload
    out = run(ledger, "blob", "put", f, "--nodes", nodes, "--k", "10", "--n", "30", "--as", "alice", code=2)
    assert "3 storage nodes given, n = 30 shards need 30 distinct nodes; pass --k 2 --n 3" in out
    out = run(ledger, "blob", "put", f, "--nodes", nodes, "--k", "5", "--as", "alice", code=2)
    assert "k = 5 shards to read back out of n = 3" in out and "pass --k 2 --n 3" in out
    out = run(ledger, "blob", "status", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", code=2)
    assert "blob commands take the CID `blob put` printed" in out
    out = run(ledger, "blob", "status", "#1", code=2)
    assert "entry #1 is a identity.register, not a blob.put" in out


def test_model_push_and_dataset_push_check_k_and_n_against_the_nodes(ledger: Path, tmp_path: Path) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "w.bin").write_bytes(b"w" * 5000)
    run(ledger, "model", "register", d, "--name", "m1", "--as", "alice")
    (tmp_path / "data.jsonl").write_text('{"t": 1}\n')
    run(ledger, "dataset", "commit", tmp_path / "data.jsonl", "--name", "d1", "--as", "alice")
    nodes = "http://127.0.0.1:9,http://127.0.0.1:10"
    out = run(ledger, "model", "push", "m1", d, "--nodes", nodes, "--n", "5", "--as", "alice", code=2)
    assert "2 storage nodes given, n = 5 shards need 5 distinct nodes; pass --k 1 --n 2" in out
    out = run(ledger, "dataset", "push", "d1", tmp_path / "data.jsonl", "--nodes", nodes, "--k", "10", "--as",
              "alice", code=2)
    assert "k = 10 shards to read back out of n = 2" in out and "pass --k 1 --n 2" in out


def test_everyday_mistakes_name_their_fix(ledger: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(main, ["init", str(ledger), "--origin", "x.org/again"])
    assert r.exit_code == 2 and "use it with `--ledger PATH`" in r.output
    out = run(ledger, "identity", "new", "alice", code=2)
    assert "`ailedger identity list` shows it" in out
    rec = tmp_path / "r.json"
    rec.write_text('{"a": 1}')
    out = run(ledger, "append", rec, code=2)
    assert "append it with `--as NAME`" in out
    out = run(ledger, "find", code=2)
    assert "e.g. `ailedger find --type model.register`" in out
    out = run(ledger, "inference", "receipt", "abc", code=2)
    assert "`ailedger inference show` lists the receipt ids" in out
