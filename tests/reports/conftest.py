"""A ledger with the README's example model: dataset, model, inference calls, an erasure, a revocation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ailedger.cli.main import main

MODEL = "sentiment-v1"


def run(args: list[str], ledger: Path, code: int = 0) -> Any:
    r = CliRunner().invoke(main, ["--ledger", str(ledger), *args], catch_exceptions=False)
    assert r.exit_code == code, (args, r.output, r.stderr if hasattr(r, "stderr") else "")
    return r


@pytest.fixture(scope="session")
def story(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from ailedger.inference import InferenceTrail
    from ailedger.inference.erasure import erase_subject
    from ailedger.tlog.ledger import Ledger

    base = tmp_path_factory.mktemp("reports")
    led = base / "ledger"
    Ledger.init(str(led), origin="example.org/ai-ledger").close()
    run(["identity", "new", "ml-team"], led)
    (base / "reviews").mkdir()
    for i in range(1, 5):
        (base / "reviews" / f"r{i}.txt").write_text(f"review {i}: works as described\n")
    run(["dataset", "commit", str(base / "reviews"), "--name", "reviews-2026", "--as", "ml-team",
         "--license", "CC-BY-4.0"], led)
    (base / "m").mkdir()
    (base / "m" / "weights.json").write_text(json.dumps({"weights": [0.1, 0.2]}))
    run(["model", "register", str(base / "m"), "--name", MODEL, "--as", "ml-team", "--dataset", "reviews-2026"], led)
    with Ledger.open(str(led)) as ledger:
        trail = InferenceTrail(ledger, MODEL, mode="durable", caller="shop")
        predict = trail.wrap(subject=lambda text: "customer-7")(lambda text: {"label": "positive"})
        for i in range(3):
            predict(f"works {i}")  # one batch per call in durable mode
        trail.close()
        erasure = erase_subject(ledger, "customer-7")
        ident = ledger.identities.load("ml-team")
        # a screening report on the dataset, as `ailedger screen` logs it (an attestation by its signer)
        screening = ledger.append_record("dataset.screening", {
            "dataset": "reviews-2026", "data_sha256": "ab" * 32, "report_sha256": "cd" * 32,
            "report_schema": "ailedger-screening/v1", "verdict": "pass", "records": 4, "flagged": 0,
            "flagged_by_reason": {}, "backdoor_suspected_classes": [], "sources": []}, ident).index
        rev = ledger.append_record("model.revoke", {"model": MODEL, "reason": "trained without consent"}, ident)
        last_time = ledger.entry(ledger.size - 1).time
    return {"base": base, "ledger": led, "erasure": erasure, "revoke": rev.index, "screening": screening, "last_time": last_time}
