"""ailedger audit-contract: findings on real Slither + the learned layer, signed contract.audit entries that
replay, SARIF 2.1.0, and the bad inputs of issue 30 (clear error, exit 2, nothing logged)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.contractaudit.audit import MAX_SOURCE_BYTES, findings_digest
from ailedger.contractaudit.model import DEFAULT_MODEL, DEFAULT_TRAIN, model_root
from ailedger.contractaudit.sarif import SARIF_VERSION
from ailedger.tlog.ledger import Ledger

CORPUS = Path(__file__).parent / "corpus"
LABELS = json.loads((CORPUS / "labels.json").read_text())


def run(args, ledger, ok=(0,)):
    r = CliRunner().invoke(main, args, env={"AILEDGER_LEDGER": str(ledger), "AILEDGER_PASSPHRASE": ""})
    assert r.exit_code in ok, (r.exit_code, r.output, r.stderr if r.stderr_bytes else "")
    return r


def size(ledger):
    with Ledger.open(ledger) as lg:
        return lg.size


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """A ledger with alice, and re_bank.sol audited and logged by her."""
    d = tmp_path_factory.mktemp("audit")
    led = d / "ledger"
    run(["init", str(led), "--origin", "test.example/audit"], led)
    run(["identity", "new", "alice"], led)
    src = d / "re_bank.sol"
    shutil.copyfile(CORPUS / "re_bank.sol", src)
    r = run(["audit-contract", str(src), "--as", "alice", "--json", "--sarif-out", str(d / "out.sarif")], led)
    return led, src, json.loads(r.stdout), json.loads((d / "out.sarif").read_text())


def test_reentrancy_found_on_the_labelled_line_and_logged(audited):
    led, src, rep, _ = audited
    want = [lb["line"] for lb in LABELS if lb["file"] == "re_bank.sol" and lb["category"] == "reentrancy"]
    assert want
    hits = [f for f in rep["findings"] if f["category"] == "reentrancy"
            and f.get("start_line", f["line"]) <= want[0] <= f["end_line"]]
    assert hits, rep["findings"]
    assert all(isinstance(f["confidence"], int) and 0 <= f["confidence"] <= 1000 for f in rep["findings"])
    assert rep["source_sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    assert rep["findings_sha256"] == findings_digest(rep["findings"])
    with Ledger.open(led) as lg:
        e = lg.entry(rep["logged"]["index"])
    assert e.type == "contract.audit"
    assert e.body["findings_sha256"] == rep["findings_sha256"]
    assert e.body["model_root"] == rep["model_root"] == model_root(DEFAULT_MODEL)  # = `ailedger model register`
    assert e.body["compiler"].startswith("solc 0.8.28")
    assert e.body["tools"]["slither-analyzer"].startswith("0.11.")


def test_replay_gives_the_same_findings(audited):
    led, _, rep, _ = audited
    r = run(["audit-contract", "--replay", f"#{rep['logged']['index']}", "--json"], led)
    out = json.loads(r.stdout)
    assert out["ok"] and out["findings_sha256"] == rep["findings_sha256"] and out["findings"] == rep["findings"]


def test_replay_of_a_lying_entry_fails(audited, tmp_path):
    """An entry claiming other findings for the same source and model: replay exits 1 naming both digests."""
    led, _, rep, _ = audited
    with Ledger.open(led) as lg:
        body = {**lg.entry(rep["logged"]["index"]).body, "findings_sha256": "00" * 32, "findings": 0}
        ident = lg.identities.load("alice", "")
        idx = lg.append_record("contract.audit", body, ident).index
    r = run(["audit-contract", "--replay", f"#{idx}"], led, ok=(1,))
    assert "found different findings" in r.stderr and rep["findings_sha256"] in r.stderr


def test_replay_refuses_other_source_or_model(audited, tmp_path):
    led, src, rep, _ = audited
    other = tmp_path / "re_bank.sol"
    other.write_text(src.read_text().replace("balances", "credits"))
    r = run(["audit-contract", "--replay", f"#{rep['logged']['index']}", "--source", str(other)], led, ok=(1,))
    assert "is not the source entry" in r.stderr
    model = json.loads(DEFAULT_TRAIN.read_text())
    model["params"]["n_estimators"] = 10
    mp = tmp_path / "model"
    mp.mkdir()
    (mp / "train.json").write_text(json.dumps(model))
    r = run(["audit-contract", "--replay", f"#{rep['logged']['index']}", "--model", str(mp)], led, ok=(1,))
    assert "the model is not the one" in r.stderr
    r = run(["audit-contract", "--replay", "#0"], led, ok=(2,))
    assert "not a contract.audit" in r.stderr


def test_sarif_2_1_0(audited):
    _, _, rep, doc = audited
    assert doc["version"] == SARIF_VERSION == "2.1.0" and doc["$schema"].endswith("sarif-schema-2.1.0.json")
    (run_,) = doc["runs"]
    rules = run_["tool"]["driver"]["rules"]
    assert run_["tool"]["driver"]["name"] and len({r["id"] for r in rules}) == len(rules)
    assert run_["artifacts"][0]["hashes"]["sha-256"] == rep["source_sha256"]
    assert len(run_["results"]) == len(rep["findings"])
    for res, f in zip(run_["results"], rep["findings"], strict=True):
        assert rules[res["ruleIndex"]]["id"] == res["ruleId"] == f["rule"]
        assert res["level"] in ("none", "note", "warning", "error") and res["message"]["text"]
        region = res["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] == f["line"] >= 1 and region.get("endLine", f["line"]) >= region["startLine"]
        assert 0 <= res["rank"] <= 100 and res["properties"]["dasp"] == f["category"]


def _bad(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data)
    return p


@pytest.mark.parametrize(("name", "data", "message"), [
    ("latin1.sol", b"pragma solidity ^0.8.0;\n// caf\xe9\ncontract A {}\n", r"is not UTF-8 text \(byte 30: 0xe9\)"),
    ("huge.sol", b"pragma solidity ^0.8.0;\n" + b"// x\n" * (MAX_SOURCE_BYTES // 5 + 10), "too big to audit"),
    ("old.sol", b"pragma solidity ^0.3.0;\ncontract A { function f() public {} }\n",
     r"pragma solidity \^0.3.0 is not satisfied by any installed compiler \(installed: solc [0-9., ]*0.8.28\)"),
    ("broken.sol", b"pragma solidity ^0.8.0;\ncontract A { function f() public { uint x = ; } }\n",
     r"does not compile: ParserError: Expected primary expression\. \(at broken.sol:2:"),
    ("typo.sol", b"pragma solidity ^0.8.0;\ncontract A { function f() public { y = 1; } }\n",
     r"does not compile: DeclarationError: Undeclared identifier"),
    ("empty.sol", b"  \n", "is empty"),
    ("imports.sol", b"pragma solidity ^0.8.0;\nimport {Bank} from './bank.sol';\ncontract A is Bank {}\n",
     r"imports ./bank.sol: audit one self-contained file"),
])
def test_bad_input_is_refused_and_not_logged(audited, tmp_path, name, data, message):
    import re
    led = audited[0]
    before = size(led)
    r = run(["audit-contract", str(_bad(tmp_path, name, data)), "--as", "alice"], led, ok=(2,))
    assert r.stderr.startswith("error: ") and re.search(message, r.stderr), r.stderr
    assert size(led) == before


def test_missing_path_and_bad_reference(audited, tmp_path):
    led = audited[0]
    assert "no such file" in run(["audit-contract", str(tmp_path / "nope.sol")], led, ok=(2,)).stderr
    assert "give the Solidity file" in run(["audit-contract"], led, ok=(2,)).stderr
    assert "no entry #99" in run(["audit-contract", "--replay", "#99"], led, ok=(2,)).stderr


def test_explorer_shows_the_audit_history_and_findings(audited):
    import asyncio

    import httpx

    from ailedger.http.app import create_app

    led, _, rep, _ = audited

    async def get(paths):
        with Ledger.open(led) as lg:
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(lg)),
                                         base_url="http://127.0.0.1") as c:
                return [await c.get(p) for p in paths]
    page, listing, missing, bad = asyncio.run(get([f"/contract/{rep['source_sha256']}", "/contracts",
                                                   "/contract/" + "ab" * 32, "/contract/xyz"]))
    assert page.status_code == 200, page.text
    assert f"/entry/{rep['logged']['index']}" in page.text and "re_bank.sol" in page.text
    for f in rep["findings"]:
        assert f["rule"] in page.text
    assert listing.status_code == 200 and f"/contract/{rep['source_sha256']}" in listing.text
    assert missing.status_code == 404 and "no contract.audit of source" in missing.text
    assert bad.status_code == 404 and "is not a source SHA-256" in bad.text
