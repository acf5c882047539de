"""Commit-reveal evaluations in the technical documentation: a result only for a reveal that opens its commitment
by its deadline; late, void and never-revealed commitments said as such; an edited score fails `report verify`."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.reports.evidence import claim_text
from ailedger.tlog.ledger import Ledger

from .conftest import MODEL, run

SCORES = {"accuracy": 0.91}


def _at(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds))


@pytest.fixture(scope="module")
def evals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The README's example model with five evaluations: e1 committed and revealed on both sides through the CLI
    (a result); e2 never revealed; e3 revealed after its deadline; e4 not due yet; e5 a reveal that does not
    open its commitment, and a test set committed after the model's reveal.  Model `other-v1` has only an
    unrevealed evaluation."""
    from ailedger.verifiable.evalreveal import commit, reveal

    base = tmp_path_factory.mktemp("evals")
    led = base / "ledger"
    Ledger.init(str(led), origin="example.org/ai-ledger").close()
    for who in ("ml-team", "lab"):
        run(["identity", "new", who], led)
    (base / "reviews").mkdir()
    (base / "reviews" / "r1.txt").write_text("review 1: works as described\n")
    run(["dataset", "commit", str(base / "reviews"), "--name", "reviews-2026", "--as", "ml-team",
         "--license", "CC-BY-4.0"], led)
    for name in (MODEL, "other-v1"):
        (base / name).mkdir()
        (base / name / "weights.json").write_text(json.dumps({"weights": [0.1, 0.2], "name": name}))
        run(["model", "register", str(base / name), "--name", name, "--as", "ml-team", "--dataset", "reviews-2026"],
            led)
    model_file = base / MODEL / "weights.json"
    (base / "scores.json").write_text(json.dumps(SCORES))
    (base / "test.npz").write_bytes(b"a hidden test set")
    soon = _at(2)
    with Ledger.open(str(led)) as ledger:
        owner, lab = ledger.identities.load("ml-team"), ledger.identities.load("lab")
        # deadlines that pass during the fixture: e2 never revealed, e3 revealed late
        _r2, _o2 = commit(ledger, "e2", "model", owner, deadline=soon, model=str(model_file), scores=SCORES,
                          manifest_root=MODEL)
        _r3, o3 = commit(ledger, "e3", "model", owner, deadline=soon, model=str(model_file), scores=SCORES,
                         manifest_root=MODEL)
        _r6, _o6 = commit(ledger, "e6", "model", owner, deadline=soon, model=str(model_file), scores=SCORES,
                          manifest_root="other-v1")
    # e1 through the CLI, as a user does it
    far = _at(3600)
    for role, who, extra in (("model", "ml-team", ["--model", str(model_file), "--scores", str(base / "scores.json"),
                                                    "--manifest-root", MODEL]),
                             ("data", "lab", ["--data", str(base / "test.npz")])):
        run(["eval", "commit", "e1", "--role", role, *extra, "--reveal-by", far, "--as", who, "-o",
             str(base / f"e1-{role}.open")], led)
    for role, who in (("model", "ml-team"), ("data", "lab")):
        run(["eval", "reveal", str(base / f"e1-{role}.open"), "--as", who], led)
    with Ledger.open(str(led)) as ledger:
        owner, lab = ledger.identities.load("ml-team"), ledger.identities.load("lab")
        r4, _o4 = commit(ledger, "e4", "model", owner, deadline=far, model=str(model_file), scores=SCORES,
                         manifest_root=MODEL)
        r5, o5 = commit(ledger, "e5", "model", owner, deadline=far, model=str(model_file), scores=SCORES,
                        manifest_root=MODEL)
        # a reveal of e5 with better scores than the committed ones: logged (the committer signs it) but it does
        # not open the commitment; then the true reveal, then a test set committed only after it
        forged = {**o5["content"], "scores": {"accuracy": 0.99}}
        void = ledger.append_record("eval.reveal", {"evaluation": "e5", "commit": r5["index"], "salt": o5["salt"],
                                                    "content": forged}, owner, terms=["eval:e5"]).index
        good5 = reveal(ledger, o5, owner)["index"]
        d5, _od5 = commit(ledger, "e5", "data", lab, deadline=far, data=str(base / "test.npz"))
        left = time.time()
    time.sleep(max(0.0, 2.3 - (time.time() - left)) + max(0.0, _ms_until(soon) / 1000))
    with Ledger.open(str(led)) as ledger:
        owner = ledger.identities.load("ml-team")
        # e3's reveal reaches the log after its deadline (written past `eval reveal`'s own refusal)
        late = ledger.append_record("eval.reveal", {"evaluation": "e3", "commit": o3["commit"], "salt": o3["salt"],
                                                    "content": o3["content"]}, owner, terms=["eval:e3"]).index
        found = {e.body["evaluation"] + "/" + e.body["role"]: i for i, e in ledger.find(type="eval.commit")}
        rev = {i: e.body["commit"] for i, e in ledger.find(type="eval.reveal")}
    out = base / "td"
    run(["report", "technical-doc", MODEL, "-o", str(out)], led)
    out2 = base / "td-other"
    run(["report", "technical-doc", "other-v1", "-o", str(out2)], led)
    return {"base": base, "ledger": led, "out": out, "other": out2, "commits": found, "reveals": rev,
            "late": late, "void": void, "good5": good5, "d5": d5["index"], "r4": r4["index"]}


def _ms_until(t: str) -> float:
    from ailedger.encoding.times import time_ms

    return time_ms(t) - time.time() * 1000


def _rep(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "report.json").read_text()))


def _verify(folder: Path, code: int = 0) -> Any:
    r = CliRunner().invoke(main, ["report", "verify", str(folder), "--json"])
    assert r.exit_code == code, r.output
    return r


def _by(rep: dict[str, Any], kind: str) -> dict[int, dict[str, Any]]:
    return {s["entry"]: s for s in rep["statements"] if s["kind"] == kind}


def test_revealed_evaluation_is_stated_with_entries_and_proofs(evals: dict[str, Any]) -> None:
    rep = _rep(evals["out"])
    c = evals["commits"]
    sec = {s["id"]: s for s in rep["sections"]}["validation"]
    assert sec["title"] == "Validation and test results" and sec["annex"] == "Annex IV point 2(g)"
    commits, results = _by(rep, "eval-commit"), _by(rep, "eval-reveal")
    assert {c["e1/model"], c["e1/data"]} <= set(commits)
    e1 = {i: s for i, s in results.items() if evals["reveals"][i] in (c["e1/model"], c["e1/data"])}
    assert sorted(evals["reveals"][i] for i in e1) == sorted([c["e1/model"], c["e1/data"]])
    model_reveal = next(s for i, s in e1.items() if evals["reveals"][i] == c["e1/model"])
    assert '"accuracy":0.91' in model_reveal["claim"] and "by its deadline" in model_reveal["claim"]
    assert model_reveal["section"] == "validation"
    for s in [*commits.values(), *results.values()]:
        assert s["section"] == "validation"
        assert (evals["out"] / s["entry_file"]).is_file() and (evals["out"] / s["proof"]).is_file()
    assert not any("no commit-reveal evaluation" in g["gap"] for g in rep["gaps"])
    html = (evals["out"] / "report.html").read_text()
    assert f'id="{model_reveal["id"]}"' in html and "Validation and test results" in html
    labels = {x["entry"]: x["label"] for x in rep["timeline"]}  # the picture of the model's life shows them
    assert labels[model_reveal["entry"]] == "evaluation" and labels[evals["late"]] == "late reveal"
    assert (evals["out"] / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads(_verify(evals["out"]).output)
    assert res["ok"] and res["statements"] == len(rep["statements"])


def test_unrevealed_late_and_void_are_not_results(evals: dict[str, Any]) -> None:
    rep = _rep(evals["out"])
    c = evals["commits"]
    results = {evals["reveals"][i] for i in _by(rep, "eval-reveal")}
    for name in ("e2", "e3", "e4"):
        assert c[f"{name}/model"] in _by(rep, "eval-commit") and c[f"{name}/model"] not in results
    unrev = _by(rep, "eval-unrevealed")
    assert "was never revealed" in unrev[c["e2/model"]]["claim"] and "no result" in unrev[c["e2/model"]]["claim"]
    assert "is not revealed yet" in unrev[evals["r4"]]["claim"]
    assert c["e3/model"] not in unrev  # it was revealed, late
    late = _by(rep, "eval-late")
    assert list(late) == [evals["late"]] and "after its deadline: not a result" in late[evals["late"]]["claim"]
    void = _by(rep, "eval-void")
    assert list(void) == [evals["void"]] and "does not open the commitment" in void[evals["void"]]["claim"]
    assert evals["good5"] in _by(rep, "eval-reveal")  # the true reveal of e5 after the void one is the result
    assert '"accuracy":0.99' not in json.dumps([s["claim"] for s in _by(rep, "eval-reveal").values()])
    gaps = [g["gap"] for g in rep["gaps"] if g["section"] == "validation"]
    assert any(f"test-set commitment (entry {evals['d5']}) was logged after a reveal" in g for g in gaps)
    assert any("evaluation e2 has no test-set commitment" in g for g in gaps)
    assert not any("e1 has no test-set" in g for g in gaps)
    named = {s["fields"]["evaluation"][1] for s in rep["statements"] if s["kind"].startswith("eval-")}
    assert named == {"e1", "e2", "e3", "e4", "e5"}  # another model's evaluation (e6) is not this one's
    # another model whose one evaluation was never revealed: no result, said as such
    other = _rep(evals["other"])
    assert [s["fields"]["evaluation"][1] for s in _by(other, "eval-unrevealed").values()] == ["e6"]
    assert not _by(other, "eval-reveal")
    assert any("no commit-reveal evaluation of this model was revealed by its deadline" in g["gap"]
               for g in other["gaps"])
    _verify(evals["other"])


def _tamper(evals: dict[str, Any], tmp_path: Path, fn: Any) -> Path:
    f = tmp_path / "td"
    shutil.copytree(evals["out"], f)
    rep = _rep(f)
    fn(rep)
    (f / "report.json").write_text(json.dumps(rep))
    (f / "report.html").unlink()  # the HTML check is its own test: here the claims are judged
    return f


def _recl(s: dict[str, Any]) -> None:
    """Re-write a statement's claim from its (edited) values, as a careful forger would."""
    s["claim"] = claim_text(s["kind"], {**s["fixed"], **{k: v for k, (_p, v) in s["fields"].items()}})


@pytest.mark.parametrize("what", ["score", "score-claim-only", "late-as-result", "never-as-pending",
                                  "drop-commit", "void-as-result", "drop-outcome"])
def test_tampered_evaluation_fails_naming_the_claim(evals: dict[str, Any], tmp_path: Path, what: str) -> None:
    c = evals["commits"]
    rep0 = _rep(evals["out"])
    target = ""

    def fn(rep: dict[str, Any]) -> None:
        nonlocal target
        st = rep["statements"]
        if what in ("score", "score-claim-only"):
            s = next(s for s in st if s["kind"] == "eval-reveal" and s["fields"]["commit"][1] == c["e1/model"])
            if what == "score":
                s["fields"]["content"][1]["scores"]["accuracy"] = 0.97
                _recl(s)
            else:
                s["claim"] = s["claim"].replace('"accuracy":0.91', '"accuracy":0.97')
        elif what == "late-as-result":  # the late reveal shown as a result
            s = next(s for s in st if s["kind"] == "eval-late")
            s["kind"] = "eval-reveal"
            s["fields"].update(content=["body.content", None], salt=["body.salt", None])
            e = json.loads((evals["out"] / s["entry_file"]).read_text())
            s["fields"]["content"][1], s["fields"]["salt"][1] = e["body"]["content"], e["body"]["salt"]
            _recl(s)
        elif what == "never-as-pending":
            s = next(s for s in st if s["kind"] == "eval-unrevealed" and s["entry"] == c["e2/model"])
            s["fixed"]["outcome"] = "is not revealed yet"
            _recl(s)
        elif what == "drop-commit":  # a result without the commitment it opens
            s = next(s for s in st if s["kind"] == "eval-reveal" and s["fields"]["commit"][1] == c["e1/model"])
            rep["statements"] = [x for x in st if not (x["kind"] == "eval-commit" and x["entry"] == c["e1/model"])]
        elif what == "drop-outcome":  # the commitment stated, its "never revealed" left out
            s = next(s for s in st if s["kind"] == "eval-commit" and s["entry"] == c["e2/model"])
            rep["statements"] = [x for x in st if not (x["kind"] == "eval-unrevealed" and x["entry"] == c["e2/model"])]
        elif what == "void-as-result":
            s = next(s for s in st if s["kind"] == "eval-void")
            e = json.loads((evals["out"] / s["entry_file"]).read_text())
            s["kind"], s["fixed"] = "eval-reveal", {}
            s["fields"].update(content=["body.content", e["body"]["content"]], salt=["body.salt", e["body"]["salt"]])
            _recl(s)
        target = s["id"]

    f = _tamper(evals, tmp_path, fn)
    r = _verify(f, 1)
    assert f"statement {target}" in r.output and '"ok": false' in r.output, r.output
    assert rep0 != _rep(f)
    expect = {"score": "claims content =", "score-claim-only": "is not what the entry says",
              "late-as-result": "after the deadline", "never-as-pending": "not the deadline's",
              "drop-commit": "not stated in the report", "void-as-result": "does not open",
              "drop-outcome": "without its outcome"}[what]
    assert expect in r.output, r.output
