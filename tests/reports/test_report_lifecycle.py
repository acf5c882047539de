"""The Annex IV sections the README story leaves empty, filled from the ledger: training code and
hyperparameters, a dataset's consent basis, a fine-tune and a second version, a DAO approval and the guardians'
kill switch (in both reports and on the time line), the record-keeping report's periods and time-line gaps, and
its pictures and PDF."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.tlog.ledger import Ledger

from .conftest import MODEL, run


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from ailedger.governance import service as gov
    from ailedger.inference import InferenceTrail

    base = tmp_path_factory.mktemp("life")
    led = base / "ledger"
    Ledger.init(str(led), origin="example.org/ai-ledger").close()
    for who in ("ml-team", "steward", "writer", "auditor", "g1"):
        run(["identity", "new", who], led)
    (base / "reviews").mkdir()
    (base / "reviews" / "r1.txt").write_text("review 1: works as described\n")
    run(["dataset", "commit", str(base / "reviews"), "--name", "reviews-2026", "--as", "ml-team",
         "--license", "CC-BY-4.0", "--consent", "opt-in at sign-up"], led)
    (base / "base").mkdir()
    (base / "base" / "w.json").write_text("[0.5]")
    run(["model", "register", str(base / "base"), "--name", "base-v1", "--as", "ml-team", "--dataset",
         "reviews-2026"], led)
    (base / "m").mkdir()
    (base / "m" / "w.json").write_text("[0.1]")
    run(["model", "register", str(base / "m"), "--name", MODEL, "--as", "ml-team", "--dataset", "reviews-2026"],
        led)
    (base / "m" / "w.json").write_text("[0.2]")  # a second version, fine-tuned: the report is of this one
    run(["model", "register", str(base / "m"), "--name", MODEL, "--as", "ml-team", "--dataset", "reviews-2026",
         "--base", "base-v1", "--code-repo", "https://example.org/train.git", "--code-commit", "a" * 40,
         "--hp", "lr=0.01", "--hp", "epochs=3"], led)
    with Ledger.open(str(led)) as ledger:
        trail = InferenceTrail(ledger, MODEL, mode="durable", caller="shop")
        predict = trail.wrap(subject=lambda text: "customer-1")(lambda text: {"label": "positive"})
        for i in range(2):
            predict(f"call {i}")
        trail.close()
        ids = {n: ledger.identities.load(n) for n in ("steward", "writer", "auditor", "g1")}
        gov.name_founders(ledger, [ids["steward"].did])
        gov.init_dao(ledger, ids["steward"], "community",
                     params={"voting_period": 1, "timelock": 0, "guardians": [ids["g1"].did],
                             "guardian_threshold": 1},
                     allocations={ids["writer"].did: 100, ids["auditor"].did: 100})
        p = gov.propose(ledger, ids["writer"], [{"kind": "model.approve", "model": MODEL}], "approve sentiment-v1")["id"]
        gov.vote(ledger, ids["writer"], p, "for")
        gov.vote(ledger, ids["auditor"], p, "for")
        time.sleep(1.2)
        gov.queue(ledger, ids["writer"], p)
        approve = gov.execute(ledger, ids["writer"], p)["index"]
        cos = gov.guardian_cosign(ledger, ids["g1"], MODEL, "jailbreak", "1")
        kill = gov.guardian_suspend(ledger, ids["g1"], MODEL, "jailbreak", "1", [cos])["index"]
        batches = [(i, e) for i, e in ledger.find(type="inference.batch")]
        first_t, last_t = ledger.entry(0).time, ledger.entry(ledger.size - 1).time
    td, rk = base / "td", base / "rk"
    run(["report", "technical-doc", MODEL, "-o", str(td)], led)
    run(["report", "record-keeping", MODEL, "--from", "2020-01-01", "--to", "2100-01-01", "-o", str(rk), "--pdf"],
        led)
    return {"base": base, "ledger": led, "td": td, "rk": rk, "proposal": p, "approve": approve, "kill": kill,
            "batches": batches, "first_t": first_t, "last_t": last_t}


def _rep(folder: Path) -> dict[str, Any]:
    return dict(json.loads((folder / "report.json").read_text()))


def _verify(folder: Path) -> dict[str, Any]:
    r = CliRunner().invoke(main, ["report", "verify", str(folder), "--json"])
    assert r.exit_code == 0, r.output
    return dict(json.loads(r.output))


def _kinds(rep: dict[str, Any], section: str) -> list[str]:
    return [s["kind"] for s in rep["statements"] if s["section"] == section]


def test_development_data_and_changes_are_stated(life: dict[str, Any]) -> None:
    rep = _rep(life["td"])
    by = {s["kind"]: s for s in rep["statements"]}
    assert "https://example.org/train.git" in by["code"]["claim"] and "a" * 40 in by["code"]["claim"]
    assert '"lr":"0.01"' in by["hyperparameters"]["claim"] or '"lr":0.01' in by["hyperparameters"]["claim"]
    assert set(_kinds(rep, "development")) == {"code", "hyperparameters", "base"}
    with Ledger.open(str(life["ledger"])) as ledger:
        base_idx = next(i for i, e in ledger.find(type="model.register") if e.body["name"] == "base-v1")
    assert f"fine-tuned from the model registered at entry {base_idx}" in by["base"]["claim"]
    assert "consent basis opt-in at sign-up" in by["dataset"]["claim"]
    gaps = [g["gap"] for g in rep["gaps"]]
    assert not any("consent basis recorded" in g or "has no licence" in g for g in gaps)
    assert not any("training code" in g or "hyperparameters" in g for g in gaps)
    # the current registration is the general description; the first version is a change over the lifecycle
    assert _kinds(rep, "changes") == ["version"] and not any(g["section"] == "changes" for g in rep["gaps"])
    _verify(life["td"])
    # the base model's report names its fine-tunes
    out = life["base"] / "td-base"
    run(["report", "technical-doc", "base-v1", "-o", str(out)], life["ledger"])
    desc = [s for s in _rep(out)["statements"] if s["kind"] == "descendant"]
    assert len(desc) == 1 and all(f"names model entry {base_idx} as its base" in s["claim"] for s in desc)
    _verify(out)


def test_approval_and_kill_switch_on_the_record(life: dict[str, Any]) -> None:
    rep = _rep(life["td"])
    st = rep["status"]
    assert st["state"] == "suspended" and st["entry"] == life["kill"] and "guardians (1 of 1)" in st["text"]
    rulings = {s["entry"]: s["claim"] for s in rep["statements"] if s["kind"] == "ruling"}
    assert life["kill"] in rulings and "suspended by guardians" in rulings[life["kill"]]
    # the approval the suspension superseded is on the record: its execution is stated, labelled on the time line
    events = {s["entry"]: s for s in rep["statements"] if s["kind"] == "event"}
    assert events[life["approve"]]["fields"]["type"][1] == "gov.execute" and life["proposal"] in events
    assert {x["entry"]: x["label"] for x in rep["timeline"]}[life["approve"]] == "approved"
    labels = [x["label"] for x in rep["timeline"]]
    for want in ("registered", "new version", "approved", "suspended"):
        assert want in labels, labels
    times = [x["time"] for x in rep["timeline"]]
    assert times == sorted(times)
    # record-keeping: the approval's proposal, votes, execution and the guardians' suspension are its events
    rk = _rep(life["rk"])
    ev = [(e["type"], e["entry"]) for e in rk["summary"]["events"]]
    assert [t for t, _ in ev] == ["gov.propose", "gov.vote", "gov.vote", "gov.queue", "gov.execute",
                                  "gov.guardian.suspend"]
    assert ev[-1][1] == life["kill"] and ev[-2][1] == life["approve"]
    _verify(life["rk"])


def test_record_keeping_periods_gaps_and_pictures(life: dict[str, Any]) -> None:
    rk = _rep(life["rk"])
    s = rk["summary"]
    assert s["periods_covered"] == [[e.body["from"], e.body["to"]] for _i, e in life["batches"]]
    assert s["inference_records"] == 2
    # silences longer than --gap-hours: before the first batch and after the last one, not between them
    gaps = s["timeline_gaps"]
    assert [g["from"][:10] for g in gaps] == ["2020-01-01", life["batches"][-1][1].time[:10]]
    assert gaps[-1]["to"] == "2100-01-01T00:00:00Z" and all(g["hours"] > 24 for g in gaps)
    assert any("retention periods" in g["gap"] for g in rk["gaps"])  # what the ledger cannot show, said
    from PIL import Image

    with Image.open(life["rk"] / "volume.png") as im:
        lo, hi = im.convert("L").getextrema()
        assert im.format == "PNG" and hi - lo > 100
    pdfium = pytest.importorskip("pypdfium2")
    pdf = pdfium.PdfDocument(str(life["rk"] / "report.pdf"))
    img = pdf[0].render(scale=1).to_pil().convert("L")
    lo, hi = img.getextrema()
    assert len(pdf) >= 1 and hi - lo > 100  # text on the page, not a blank sheet
