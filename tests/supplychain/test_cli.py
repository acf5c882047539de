"""`ailedger epcis ...` end to end: exit codes (1 failed verification, 2 bad input), --json, messages."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main

from . import chain as c


def run(*args, ok=0):
    r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == ok, (args, r.exit_code, r.output)
    return r


@pytest.fixture
def L(tmp_path):
    run("init", tmp_path / "l", "--origin", "test.example/epcis-cli")
    run("--ledger", tmp_path / "l", "identity", "new", "alice")
    return ["--ledger", str(tmp_path / "l")]


def _write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def test_capture_trace_recall_verify(tmp_path, L):
    f = _write(tmp_path, "chain.jsonld", c.chain())
    hashes = json.loads(run("epcis", "hash", f, "--json").output)["events"]
    out = json.loads(run("epcis", "capture", f, "--as", "alice", "--json", *L).output)
    assert out["logged"] == 4 and [e["hash"] for e in out["events"]] == [h["hash"] for h in hashes]
    again = json.loads(run("epcis", "capture", f, "--as", "alice", "--json", *L).output)
    assert again["logged"] == 0 and again["duplicates"] == 4
    t = json.loads(run("epcis", "trace", c.PALLET, "--backward", "--json", *L).output)
    assert t["direction"] == "backward" and len(t["items"]) == 4
    rep = tmp_path / "recall.json"
    r = run("epcis", "recall", c.LOT, "-o", rep, *L)
    assert "4 affected item(s)" in r.output
    assert "OK: 4 event(s)" in run("epcis", "verify", rep, *L).output
    bad = json.loads(rep.read_text())
    bad["events"][0]["hash"] = bad["events"][3]["hash"]
    badf = _write(tmp_path, "bad.json", bad)
    r = run("epcis", "verify", badf, *L, ok=1)
    assert "holds another event" in r.output


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda ev: ev.update(action="MOVE"), "not valid EPCIS 2.0 (JSON schema)"),
    (lambda ev: ev.update(bizStep="shiping"), "unknown CBV bizStep 'shiping'"),
    (lambda ev: ev.update(eventID="ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"), "is not its event hash"),
])
def test_bad_input_exit_2_nothing_logged(tmp_path, L, mutate, message):
    ev = c.ship([c.PALLET])
    mutate(ev)
    f = _write(tmp_path, "bad.jsonld", c.doc(ev))
    r = run("epcis", "capture", f, "--as", "alice", *L, ok=2)
    assert message in r.output
    r = run("epcis", "trace", c.PALLET, *L, ok=2)
    assert "no logged EPCIS event names" in r.output


def test_overconsumption_exit_2(tmp_path, L):
    f = _write(tmp_path, "t.jsonld", c.doc(c.commission(qty=10), c.transform([(c.LOT, 11)], [c.product(1)])))
    r = run("epcis", "capture", f, "--as", "alice", *L, ok=2)
    assert "consumes 11 of" in r.output and "but only 10 exist" in r.output


def test_unreadable_files(tmp_path, L):
    assert "no such file" in run("epcis", "capture", tmp_path / "nope.json", "--as", "alice", *L, ok=2).output
    f = tmp_path / "x.json"
    f.write_text("{")
    assert "is not JSON" in run("epcis", "hash", f, ok=2).output
    assert "not an epcis trace or recall report" in run("epcis", "verify", _write(tmp_path, "r.json", {}), *L,
                                                        ok=2).output
