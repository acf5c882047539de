"""ailedger report: both reports for the README's example model, offline verify, tampering, bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.tlog.ledger import Ledger

from .conftest import MODEL, run


def _report(story: dict[str, Any], name: str, *args: str) -> Path:
    out = story["base"] / name
    if not out.exists():
        run(["report", *args, "-o", str(out)], story["ledger"])
    return out


def _verify(folder: Path, code: int = 0, *extra: str) -> Any:
    r = CliRunner().invoke(main, ["report", "verify", str(folder), "--json", *extra])
    assert r.exit_code == code, r.output
    return r


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def test_technical_doc_of_revoked_model(story: dict[str, Any]) -> None:
    out = _report(story, "td", "technical-doc", MODEL)
    rep = json.loads((out / "report.json").read_text())
    # the status says revoked, by whom and when, citing the revocation entry
    assert rep["status"]["state"] == "revoked" and rep["status"]["entry"] == story["revoke"]
    with Ledger.open(str(story["ledger"])) as ledger:
        rev = ledger.entry(story["revoke"])
        owner = ledger.identities.load("ml-team").did
    ruling = [s for s in rep["statements"] if s["kind"] == "ruling"]
    assert len(ruling) == 1 and ruling[0]["entry"] == story["revoke"]
    assert owner in ruling[0]["claim"] and rev.time in ruling[0]["claim"]
    # data governance: the dataset's licence is stated from its entry; the missing consent basis is a gap
    ds = [s for s in rep["statements"] if s["kind"] == "dataset"]
    assert len(ds) == 1 and "licence CC-BY-4.0" in ds[0]["claim"]
    gaps = [g["gap"] for g in rep["gaps"]]
    assert any("reviews-2026 has no consent basis" in g for g in gaps)
    assert any("no commit-reveal evaluation" in g for g in gaps)
    scr = [s for s in rep["statements"] if s["kind"] == "screening"]
    assert [s["entry"] for s in scr] == [story["screening"]] and "verdict pass, 0 of 4 records" in scr[0]["claim"]
    assert not any("no screening report" in g for g in gaps)
    assert not any("no incident" in g for g in gaps)  # there is a revocation
    for s in rep["statements"]:  # each statement's entry and proof are in the folder
        assert (out / s["entry_file"]).is_file() and (out / s["proof"]).is_file()
    html = (out / "report.html").read_text()
    assert "<svg" in html and "timeline.png" in html and "revoked" in html
    assert (out / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = json.loads(_verify(out).output)
    assert res["ok"] and res["statements"] == len(rep["statements"])


def test_record_keeping_counts_and_verifies(story: dict[str, Any]) -> None:
    out = _report(story, "rk", "record-keeping", MODEL, "--from", "2020-01-01", "--to", "2100-01-01")
    rep = json.loads((out / "report.json").read_text())
    s = rep["summary"]
    with Ledger.open(str(story["ledger"])) as ledger:
        batches = [(i, e) for i, e in ledger.find(type="inference.batch")]
    assert s["inference_batches"] == len(batches) >= 1
    assert s["inference_records"] == sum(e.body["count"] for _i, e in batches) == 3
    assert sum(s["per_day"].values()) == 3
    assert [x["entry"] for x in s["erasures"]] == [story["erasure"]["log_index"]]
    assert [x["type"] for x in s["events"]] == ["model.revoke"]
    assert rep["range"]["closing_size"] - rep["range"]["opening_size"] == len(
        (out / "range.jsonl").read_bytes().splitlines())
    assert (out / "volume.png").is_file()
    res = json.loads(_verify(out).output)
    assert res["inference_records"] == 3


def test_period_with_no_records(story: dict[str, Any]) -> None:
    out = _report(story, "rk-empty", "record-keeping", MODEL, "--from", "2020-01-01", "--to", "2020-02-01")
    rep = json.loads((out / "report.json").read_text())
    assert rep["summary"]["inference_records"] == 0 and rep["summary"]["entries_in_period"] == 0
    assert any("no inference record" in g["gap"] for g in rep["gaps"])
    assert rep["summary"]["timeline_gaps"][0]["hours"] == 31 * 24  # the whole period is silent
    _verify(out)


def test_unknown_model_and_bad_input(story: dict[str, Any], tmp_path: Path) -> None:
    r = run(["report", "technical-doc", "no-such-model", "-o", str(tmp_path / "x")], story["ledger"], 2)
    assert "no model named 'no-such-model'" in r.output + (r.stderr or "")
    assert not (tmp_path / "x").exists()  # nothing written
    r = run(["report", "record-keeping", MODEL, "--from", "yesterday", "--to", "2026-01-01", "-o",
             str(tmp_path / "y")], story["ledger"], 2)
    assert "--from must be a date" in r.output + (r.stderr or "")
    r = run(["report", "record-keeping", MODEL, "--from", "2026-02-01", "--to", "2026-01-01", "-o",
             str(tmp_path / "y")], story["ledger"], 2)
    assert "must be after" in r.output + (r.stderr or "")
    (tmp_path / "z").mkdir()
    (tmp_path / "z" / "keep.txt").write_text("mine")
    r = run(["report", "technical-doc", MODEL, "-o", str(tmp_path / "z")], story["ledger"], 2)
    assert "not empty" in r.output + (r.stderr or "") and (tmp_path / "z" / "keep.txt").read_text() == "mine"
    r = CliRunner().invoke(main, ["report", "verify", str(tmp_path / "z")])
    assert r.exit_code == 2 and "no report.json" in r.output + (r.stderr or "")


def _edit(folder: Path, fn: Any) -> None:
    p = folder / "report.json"
    rep = json.loads(p.read_text())
    fn(rep)
    p.write_text(json.dumps(rep))


@pytest.mark.parametrize("what", ["claim", "value", "entry-of-another", "summary", "range-line", "html", "vkey",
                                  "proof", "status", "drop-statement"])
def test_tampered_report_fails_naming_the_claim(story: dict[str, Any], tmp_path: Path, what: str) -> None:
    kind = "rk" if what in ("summary", "range-line", "drop-statement") else "td"
    src = _report(story, kind, *(["record-keeping", MODEL, "--from", "2020-01-01", "--to", "2100-01-01"]
                                 if kind == "rk" else ["technical-doc", MODEL]))
    f = _copy(src, tmp_path)
    extra: list[str] = []
    expect = ""
    if what == "claim":
        def fn(rep: dict[str, Any]) -> None:
            rep["statements"][0]["claim"] = rep["statements"][0]["claim"].replace("registered", "approved")
        _edit(f, fn)
        expect = "statement s1"
    elif what == "value":
        def fn(rep: dict[str, Any]) -> None:
            st = next(s for s in rep["statements"] if s["kind"] == "dataset")
            st["fields"]["license"][1] = "MIT"
            st["claim"] = st["claim"].replace("CC-BY-4.0", "MIT")
        _edit(f, fn)
        expect = "claims license = 'MIT'"
    elif what == "entry-of-another":  # point a statement at another entry's file and proof
        def fn(rep: dict[str, Any]) -> None:
            rep["statements"][0]["entry"] = rep["statements"][1]["entry"]
        _edit(f, fn)
        expect = "statement s1"
    elif what == "summary":
        def fn(rep: dict[str, Any]) -> None:
            rep["summary"]["inference_records"] = 2
        _edit(f, fn)
        (f / "report.html").unlink()
        expect = "summary.inference_records"
    elif what == "drop-statement":  # the erasure left out of the human-readable sections
        def fn(rep: dict[str, Any]) -> None:
            rep["statements"] = [s for s in rep["statements"] if s["kind"] != "erasure"]
        _edit(f, fn)
        (f / "report.html").unlink()
        expect = "missing [('erasure'"
    elif what == "range-line":  # drop an entry from the period: the closing root no longer matches
        lines = (f / "range.jsonl").read_bytes().splitlines(keepends=True)
        idx = json.loads((f / "report.json").read_text())["summary"]["batch_entries"][0]
        del lines[idx - json.loads((f / "report.json").read_text())["range"]["opening_size"]]
        (f / "range.jsonl").write_bytes(b"".join(lines))
        expect = "range"
    elif what == "html":
        h = f / "report.html"
        h.write_text(h.read_text().replace("revoked", "active"))
        expect = "report.html differs"
    elif what == "vkey":  # checked with the real key, the folder's log.vkey swapped for another log's
        other = tmp_path / "other"
        Ledger.init(str(other), origin="example.org/ai-ledger").close()
        with Ledger.open(str(other)) as o:
            (f / "log.vkey").write_text(o.vkey + "\n")
        with Ledger.open(str(story["ledger"])) as ledger:
            extra = ["--vkey", ledger.vkey]
        _edit(f, lambda rep: rep.update(vkey=(f / "log.vkey").read_text().strip()))
        expect = "another log key"
    elif what == "status":  # the revoked model shown as active, HTML re-rendered to match
        from ailedger.reports.render import render_html

        def fn(rep: dict[str, Any]) -> None:
            rep["status"].update(state="active", by=None, entry=None, reason="", text=f"model {MODEL} is active")
        _edit(f, fn)
        (f / "report.html").write_text(render_html(json.loads((f / "report.json").read_text())))
        expect = "claim status"
    elif what == "proof":
        p = f / "proofs" / f"{json.loads((f / 'report.json').read_text())['statements'][0]['entry']}.tlog-proof"
        lines = p.read_text().split("\n")
        lines[2] = "A" * 43 + "=" if len(lines[2]) == 44 else lines[2]
        p.write_text("\n".join(lines))
        expect = "statement s1"
    r = _verify(f, 1, *extra)
    assert expect in r.output, r.output
    assert '"ok": false' in r.output


def test_pdf_renders_to_png(story: dict[str, Any]) -> None:
    pdfium = pytest.importorskip("pypdfium2")
    out = story["base"] / "td-pdf"
    run(["report", "technical-doc", MODEL, "-o", str(out), "--pdf"], story["ledger"])
    pdf = pdfium.PdfDocument(str(out / "report.pdf"))
    assert len(pdf) >= 1
    img = pdf[0].render(scale=1).to_pil().convert("L")
    lo, hi = img.getextrema()
    assert hi - lo > 100  # text on a page, not a blank sheet
    _verify(out)  # the PDF is extra; the report still verifies


def _at(base: Any, minutes: int) -> str:
    import datetime as dt

    return (base + dt.timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_period_inside_the_log_uses_checkpoints_and_consistency(tmp_path: Path) -> None:
    """A period inside the log: the range between two stored checkpoints holds it, the entries just outside are
    dated more than 2 x the writers' skew outside it, and entry times that go back and forth inside are fine."""
    import datetime as dt

    led = tmp_path / "ledger"
    Ledger.init(str(led), origin="example.org/ai-ledger").close()
    run(["identity", "new", "ml-team"], led)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.json").write_text("[1]")
    run(["model", "register", str(tmp_path / "m"), "--name", MODEL, "--as", "ml-team"], led)
    now = dt.datetime.now(dt.timezone.utc)
    # entry minutes after now: X in the margin before the period [120, 240), B1 and B0 in it (logged out of time
    # order), Y in the margin after it (another model's), Z just after the range, W later (this writer accepts a
    # wide skew)
    plan = {"X": 110, "B1": 180, "B0": 150, "Y": 250, "Z": 360, "W": 420}
    idx: dict[str, int] = {}
    with Ledger.open(str(led)) as ledger:
        ledger.time_skew = 8 * 3600
        reg = ledger.size - 1
        ident = ledger.identities.load("ml-team")
        for k, m in plan.items():
            at = _at(now, m)
            who = "other-model" if k == "Y" else MODEL  # Y: a batch of another model, not counted
            body = {"count": 2, "first": f"s-{k}-1", "last": f"s-{k}-2", "from": at, "to": at, "seq": 1,
                    "stream": f"s-{k}", "models": [{"index": reg, "name": who}], "root": "00" * 32, "v": 1}
            idx[k] = ledger.append_record("inference.batch", body, ident, time=at).index
            ledger.checkpoint()
    out = tmp_path / "mid"
    run(["report", "record-keeping", MODEL, "--from", _at(now, 120), "--to", _at(now, 240), "-o", str(out)], led)
    rep = json.loads((out / "report.json").read_text())
    rg, s = rep["range"], rep["summary"]
    assert rg["opening_size"] == idx["X"] and rg["closing_size"] == idx["Z"] < rg["latest_size"]
    assert sorted(s["batch_entries"]) == sorted([idx["B1"], idx["B0"]]) and s["inference_records"] == 4
    assert rg["consistency_open_close"] and rg["consistency_close_latest"] and rg["margin_seconds"] == 1200
    assert sorted((b["entry"], b["side"]) for b in rg["boundary"]) == [(idx["X"] - 1, "before"), (idx["Z"], "after")]
    assert [g["hours"] for g in s["timeline_gaps"]] == []  # B0 and B1 sorted by time: no silence over 24 h
    _verify(out)

    def tampered(fn: Any, expect: str) -> None:
        f = tmp_path / "t"
        shutil.rmtree(f, ignore_errors=True)
        shutil.copytree(out, f)
        _edit(f, fn)
        (f / "report.html").unlink()
        r = _verify(f, 1)
        assert expect in r.output, r.output

    # the entry after the range left out (a range that stops early could hide the end of the period)
    tampered(lambda rep: rep["range"].update(boundary=[b for b in rep["range"]["boundary"] if b["side"] == "before"]),
             "boundary entries must be")
    # another, older entry cited as the one before the range
    tampered(lambda rep: rep["range"]["boundary"][0].update(entry=0), "boundary entries must be")
    # a border hash changed: the opening root no longer matches
    tampered(lambda rep: rep["range"]["border"].__setitem__(0, "A" * 43 + "="), "opening border")
    # a period that reaches into the margin: the entries just outside the range are too close to it

    def widen(rep: dict[str, Any]) -> None:  # the period claimed to end later, with the summary that gives
        from ailedger.reports.records import summarise

        rep["period"]["to"] = _at(now, 350)
        lines = (out / "range.jsonl").read_bytes().splitlines()
        entries = [(rep["range"]["opening_size"] + i, json.loads(x)) for i, x in enumerate(lines)]
        rep["summary"] = summarise(entries, MODEL, rep["period"]["from"], rep["period"]["to"], 24)
    tampered(widen, "is dated within 1200 s of the period")


def test_malformed_report_is_a_failed_verification(story: dict[str, Any], tmp_path: Path) -> None:
    src = _report(story, "rk", "record-keeping", MODEL, "--from", "2020-01-01", "--to", "2100-01-01")
    f = _copy(src, tmp_path)
    _edit(f, lambda rep: rep["range"].update(border=["not base64!"] * len(rep["range"]["border"]) or ["x"]))
    (f / "report.html").unlink()
    r = _verify(f, 1)
    assert "damaged or malformed" in r.output
    (f / "checkpoint").unlink()
    r = _verify(f, 1)
    assert "checkpoint" in r.output


def test_model_revoked_by_the_dao_names_the_proposal(tmp_path: Path) -> None:
    import time

    from ailedger.governance import service as gov

    led = tmp_path / "ledger"
    Ledger.init(str(led), origin="example.org/ai-ledger").close()
    for who in ("ml-team", "steward", "writer", "auditor"):
        run(["identity", "new", who], led)
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.json").write_text("[1]")
    run(["model", "register", str(tmp_path / "m"), "--name", MODEL, "--as", "ml-team"], led)
    with Ledger.open(str(led)) as ledger:
        ids = {n: ledger.identities.load(n) for n in ("steward", "writer", "auditor")}
        gov.name_founders(ledger, [ids["steward"].did])
        gov.init_dao(ledger, ids["steward"], "community", params={"voting_period": 1, "timelock": 0},
                     allocations={ids["writer"].did: 100, ids["auditor"].did: 100})
        p = gov.propose(ledger, ids["writer"], [{"kind": "model.revoke", "model": MODEL, "reason": "consent"}],
                        "revoke: trained without consent")["id"]
        gov.vote(ledger, ids["writer"], p, "for")
        gov.vote(ledger, ids["auditor"], p, "for")
        time.sleep(1.2)
        gov.queue(ledger, ids["writer"], p)
        ex = gov.execute(ledger, ids["writer"], p)["index"]
    out = tmp_path / "td"
    run(["report", "technical-doc", MODEL, "-o", str(out)], led)
    rep = json.loads((out / "report.json").read_text())
    assert rep["status"]["state"] == "revoked" and rep["status"]["by"] == f"proposal {p}"
    kinds = {s["kind"]: s for s in rep["statements"] if s["section"] == "risk"}
    assert kinds["ruling"]["entry"] == ex and f"revoked by proposal {p}" in kinds["ruling"]["claim"]
    assert kinds["proposal"]["entry"] == p and "trained without consent" in kinds["proposal"]["claim"]
    events = [s["fields"]["type"][1] for s in rep["statements"] if s["kind"] == "event"]
    assert events == ["gov.vote", "gov.vote", "gov.queue"]  # the proposal and execution are stated above
    _verify(out)
    out2 = tmp_path / "rk"
    run(["report", "record-keeping", MODEL, "--from", "2020-01-01", "--to", "2100-01-01", "-o", str(out2)], led)
    ev = json.loads((out2 / "report.json").read_text())["summary"]["events"]
    assert [e["type"] for e in ev] == ["gov.propose", "gov.vote", "gov.vote", "gov.queue", "gov.execute"]
    _verify(out2)


def test_more_bad_input_is_refused_and_writes_nothing(story: dict[str, Any], tmp_path: Path) -> None:
    f = tmp_path / "a-file"
    f.write_text("mine")
    r = run(["report", "technical-doc", MODEL, "-o", str(f)], story["ledger"], 2)
    assert "is a file, not a folder" in r.output + (r.stderr or "") and f.read_text() == "mine"
    r = run(["report", "record-keeping", "no-such-model", "--from", "2020-01-01", "--to", "2021-01-01", "-o",
             str(tmp_path / "rk")], story["ledger"], 2)
    assert "no model named 'no-such-model'" in r.output + (r.stderr or "") and not (tmp_path / "rk").exists()
    r = run(["report", "record-keeping", MODEL, "--from", "2020-01-01", "--to", "2021-01-01", "--gap-hours", "0",
             "-o", str(tmp_path / "rk")], story["ledger"], 2)
    assert not (tmp_path / "rk").exists()
    src = _report(story, "td", "technical-doc", MODEL)
    r = CliRunner().invoke(main, ["report", "verify", str(src), "--vkey", "not a key"])
    assert r.exit_code == 2 and "key" in (r.output + (r.stderr or "")).lower(), r.output
    r = CliRunner().invoke(main, ["report", "verify", str(tmp_path / "nothing-here")])
    assert r.exit_code == 2
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "report.json").write_text("{not json")
    r = CliRunner().invoke(main, ["report", "verify", str(tmp_path / "junk")])
    assert r.exit_code == 2 and "not JSON" in r.output + (r.stderr or "")
