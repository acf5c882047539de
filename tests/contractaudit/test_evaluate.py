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
