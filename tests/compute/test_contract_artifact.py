"""The committed ComputeMarket artifact is exactly what the pinned solc makes from the source."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ART = ROOT / "src" / "ailedger" / "compute" / "contracts"


def test_fresh_compile_matches_the_committed_artifact(tmp_path):
    if shutil.which("node") is None or not (ROOT / "contracts" / "node_modules" / "solc").exists():
        pytest.skip("node or the pinned solc (npm ci in contracts/) is missing")
    out = subprocess.run(["node", str(ROOT / "contracts" / "compile.js"), "--src", str(ART), "--out", str(tmp_path)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.glob("*.json")) == ["ComputeMarket.json"]
    fresh = json.loads((tmp_path / "ComputeMarket.json").read_text())
    assert fresh == json.loads((ART / "ComputeMarket.json").read_text()), \
        "ComputeMarket.json differs from a fresh compile: run scripts/compile-compute-contracts.sh and commit"
    pkg = json.loads((ROOT / "contracts" / "package.json").read_text())
    assert fresh["compiler"]["version"].startswith(pkg["dependencies"]["solc"] + "+")
    assert f"pragma solidity {pkg['dependencies']['solc']};" in (ART / "ComputeMarket.sol").read_text()
