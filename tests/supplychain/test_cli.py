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


def test_allocate_and_check(tmp_path, L):
    f = _write(tmp_path, "stock.jsonld", c.doc(c.stock_count(c.DEPOT_A, {c.WATER: 80, c.KITS: 6}),
                                               c.stock_count(c.DEPOT_B, {c.WATER: 30}, minute=1)))
    run("epcis", "capture", f, "--as", "alice", *L)
    needs = _write(tmp_path, "needs.json", c.relief_spec())
    out = json.loads(run("epcis", "allocate", needs, "--as", "alice", "--json", *L).output)
    assert out["unmet_units"] == 14
    r = run("epcis", "allocate", "--check", out["index"], *L)
    assert "is the optimum of its logged inputs" in r.output
    assert "not an epcis.allocation" in run("epcis", "allocate", "--check", 0, *L, ok=2).output
    assert "give NEEDS and --as" in run("epcis", "allocate", *L, ok=2).output


def test_inspect_cli(tmp_path, L):
    import numpy as np

    from ailedger.supplychain.inspection import defect_images, train_inspector

    train_inspector(tmp_path / "m", n=600)
    run("model", "register", tmp_path / "m", "--name", "insp", "--as", "alice", *L)
    run("epcis", "capture", _write(tmp_path, "chain.jsonld", c.chain()), "--as", "alice", *L)
    x, y = defect_images(2, seed=11)
    for i in range(2):
        np.save(tmp_path / f"i{i}.npy", x[i])
    out = json.loads(run("epcis", "inspect", "insp", "--model-dir", tmp_path / "m", "--item",
                         f"{c.product(1)}={tmp_path / 'i0.npy'}", "--item", f"{c.product(2)}={tmp_path / 'i1.npy'}",
                         "--read-point", c.SITE, "--as", "alice", "--json", *L).output)
    assert [v["verdict"] for v in out["verdicts"]] == ["defect" if v else "ok" for v in y]
    # the verdicts rest on inference records; a report carries their evidence and `epcis verify` checks it
    run("epcis", "recall", c.LOT, "-o", tmp_path / "rep.json", *L)
    ok = json.loads(run("epcis", "verify", tmp_path / "rep.json", "--json", *L).output)
    assert ok["inferences_verified"] == 2
    rep = json.loads((tmp_path / "rep.json").read_text())
    for e in rep["events"]:
        if "inspection" in e:
            e["inspection"]["inference"]["output"] = '{"score":"0.5000","verdict":"ok"}'
    (tmp_path / "bad.json").write_text(json.dumps(rep))
    assert "not the one the record commits to" in run("epcis", "verify", tmp_path / "bad.json", *L, ok=1).output
    assert "--item takes EPC=IMAGE" in run("epcis", "inspect", "insp", "--model-dir", tmp_path / "m", "--item", "x",
                                           "--read-point", c.SITE, "--as", "alice", *L, ok=2).output
    rv = _write(tmp_path, "revoke.json", {"type": "model.revoke", "body": {"name": "insp", "reason": "drift"}})
    run("append", rv, "--as", "alice", *L)
    r = run("epcis", "inspect", "insp", "--model-dir", tmp_path / "m", "--item", f"{c.product(3)}={tmp_path / 'i0.npy'}",
            "--read-point", c.SITE, "--as", "alice", *L, ok=1)
    assert "may not be used" in r.output
    t = json.loads(run("epcis", "trace", c.LOT, "--json", *L).output)
    assert sum(bool(e.get("inspection", {}).get("suspect")) for e in t["events"]) == 2
