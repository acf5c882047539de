"""The evaluation harness: scoring, the hold-out split (no training on test contracts), and audit-eval on a
small sub-corpus (real Slither, real training)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main
from ailedger.contractaudit.dasp import CATEGORIES
from ailedger.contractaudit.evaluate import score
from ailedger.contractaudit.model import DEFAULT_TRAIN, hold_out

CORPUS = Path(__file__).parent / "corpus"
LABELS = json.loads((CORPUS / "labels.json").read_text())
FILES = sorted(str(p) for p in CORPUS.glob("*.sol"))


def test_corpus_covers_every_dasp_category():
    assert len(FILES) >= 40
    assert {lb["category"] for lb in LABELS} == set(CATEGORIES)
    for lb in LABELS:
        lines = (CORPUS / lb["file"]).read_text().splitlines()
        assert 1 <= lb["line"] <= len(lines) and lines[lb["line"] - 1].strip()


def test_hold_out_is_disjoint_and_stratified():
    train, test = hold_out(FILES, LABELS)
    assert set(train).isdisjoint(test) and sorted(train + test) == FILES
    cat = {lb["file"]: lb["category"] for lb in LABELS}
    for c in CATEGORIES:
        assert any(cat.get(Path(f).name) == c for f in train), c
        assert any(cat.get(Path(f).name) == c for f in test), c


def test_shipped_model_never_saw_a_test_contract():
    _, test = hold_out(FILES, LABELS)
    data = json.loads(DEFAULT_TRAIN.read_text())
    trained = {r["file"] for r in data["rows"]}
    assert trained and trained.isdisjoint({Path(f).name for f in test})
    assert {r["label"] for r in data["rows"]} == {*CATEGORIES, "none"}


def test_score_counts_matches_by_category_and_line_range():
    labels = [{"file": "a.sol", "line": 10, "category": "reentrancy"},
              {"file": "a.sol", "line": 30, "category": "arithmetic"},
              {"file": "b.sol", "line": 5, "category": "reentrancy"}]
    findings = {"a.sol": [{"category": "reentrancy", "line": 8, "end_line": 12},     # covers label 1
                          {"category": "arithmetic", "line": 10, "end_line": 12},    # wrong line
                          {"category": "reentrancy", "line": 30, "end_line": 30}],   # wrong category
                "b.sol": []}
    s = score(findings, labels)
    assert s["reentrancy"] == {"labels": 2, "found": 1, "findings": 2, "true_findings": 1, "recall": 0.5,
                               "precision": 0.5}
    assert s["arithmetic"]["recall"] == 0.0 and s["arithmetic"]["precision"] == 0.0
    assert s["overall"]["found"] == 1 and s["overall"]["findings"] == 3
    assert s["bad_randomness"]["recall"] is None and s["bad_randomness"]["precision"] is None


@pytest.fixture
def small_corpus(tmp_path):
    keep = ["re_bank", "re_vault", "re_token_hook", "tm_roulette", "tm_sale", "tm_bonus", "ok_bank", "ok_counter"]
    d = tmp_path / "corpus"
    d.mkdir()
    for k in keep:
        shutil.copyfile(CORPUS / f"{k}.sol", d / f"{k}.sol")
    (d / "labels.json").write_text(json.dumps([lb for lb in LABELS if lb["file"][:-4] in keep]))
    return d


def test_audit_eval_on_a_small_corpus(small_corpus, tmp_path):
    png = tmp_path / "recall.png"
    model = tmp_path / "model"
    r = CliRunner().invoke(main, ["audit-eval", str(small_corpus), "--json", "--chart", str(png),
                                  "--write-model", str(model)])
    assert r.exit_code == 0, r.output
    ev = json.loads(r.stdout)
    assert ev["contracts"] == 8 and ev["test_contracts"] + ev["train_contracts"] == 8
    for tool in ("slither", "learned", "together"):
        for row in ev[tool].values():
            assert row["found"] <= row["labels"] and row["true_findings"] <= row["findings"]
    assert ev["slither"]["reentrancy"]["labels"] == 1  # re_token_hook is held out
    assert ev["together"]["overall"]["found"] >= ev["slither"]["overall"]["found"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trained = {row["file"] for row in json.loads((model / "train.json").read_text())["rows"]}
    assert trained == {"ok_bank.sol", "re_bank.sol", "re_vault.sol", "tm_bonus.sol", "tm_sale.sol"}


def test_audit_eval_bad_labels(small_corpus):
    (small_corpus / "labels.json").write_text(json.dumps([{"file": "re_bank.sol", "line": 3, "category": "gas"}]))
    r = CliRunner().invoke(main, ["audit-eval", str(small_corpus)])
    assert r.exit_code == 2 and "unknown DASP category 'gas'" in r.stderr
    (small_corpus / "labels.json").write_text(json.dumps([{"file": "nope.sol", "line": 3, "category": "other"}]))
    r = CliRunner().invoke(main, ["audit-eval", str(small_corpus)])
    assert r.exit_code == 2 and "no file nope.sol" in r.stderr


@pytest.fixture
def smartbugs_layout(tmp_path):
    """Our own contracts laid out as SmartBugs curated is: dataset/<category>/X.sol and vulnerabilities.json
    ({name, path, pragma, vulnerabilities: [{lines, category}]}); the same name in two folders."""
    d = tmp_path / "sb"
    entries = []
    for name, cat in (("re_bank", "reentrancy"), ("fr_puzzle", "front_running"), ("ok_counter", None)):
        folder = d / "dataset" / (cat or "other")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS / f"{name}.sol", folder / f"{name}.sol")
        vulns = [{"lines": [lb["line"]], "category": lb["category"]} for lb in LABELS if lb["file"] == f"{name}.sol"]
        entries.append({"name": f"{name}.sol", "path": f"dataset/{cat or 'other'}/{name}.sol", "pragma": "0.8.0",
                        "vulnerabilities": vulns})
    (d / "vulnerabilities.json").write_text(json.dumps(entries))
    return d


def test_smartbugs_labels_and_held_out_evaluation(smartbugs_layout):
    from ailedger.contractaudit.evaluate import load_corpus
    files, labels = load_corpus(smartbugs_layout, smartbugs_layout / "vulnerabilities.json")
    assert [f.name for f in files] == ["re_bank.sol", "fr_puzzle.sol", "ok_counter.sol"]
    assert {(lb["file"], lb["category"]) for lb in labels} == {("dataset/reentrancy/re_bank.sol", "reentrancy"),
                                                               ("dataset/front_running/fr_puzzle.sol", "front_running")}
    r = CliRunner().invoke(main, ["audit-eval", str(smartbugs_layout), "--labels",
                                  str(smartbugs_layout / "vulnerabilities.json"), "--held-out", "--json"])
    assert r.exit_code == 0, (r.output, r.stderr)
    ev = json.loads(r.stdout)
    assert ev["contracts"] == ev["analysed"] == 3 and ev["failed"] == {} and ev["labels"] == 2
    assert ev["rules"]["front_running"]["found"] == 1 and ev["slither"]["front_running"]["found"] == 0
    assert ev["together"]["reentrancy"]["found"] == 1 and ev["together"]["overall"]["recall"] == 1.0


def test_smartbugs_bad_labels(smartbugs_layout):
    vj = smartbugs_layout / "vulnerabilities.json"
    entries = json.loads(vj.read_text())
    entries[0]["vulnerabilities"][0]["category"] = "gas"
    vj.write_text(json.dumps(entries))
    r = CliRunner().invoke(main, ["audit-eval", str(smartbugs_layout), "--labels", str(vj), "--held-out"])
    assert r.exit_code == 2 and "unknown DASP category 'gas'" in r.stderr
    entries[0]["vulnerabilities"][0]["category"] = "reentrancy"
    entries[1]["path"] = "dataset/nope/x.sol"
    vj.write_text(json.dumps(entries))
    r = CliRunner().invoke(main, ["audit-eval", str(smartbugs_layout), "--labels", str(vj), "--held-out"])
    assert r.exit_code == 2 and "no file dataset/nope/x.sol" in r.stderr


def test_smartbugs_bench_says_when_the_corpus_is_absent(tmp_path):
    import subprocess
    import sys
    bench = Path(__file__).resolve().parents[2] / "bench" / "smartbugs_bench.py"
    r = subprocess.run([sys.executable, str(bench), "--corpus", str(tmp_path / "none")], capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 2 and "corpus absent" in r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {"absent": True, "corpus": str(tmp_path / "none")}


def test_shipped_threshold_and_noisy_rules_were_chosen_on_the_training_split():
    data = json.loads(DEFAULT_TRAIN.read_text())
    assert 0 < data["threshold"] < 1000 and isinstance(data["noisy_rules"], list)
