"""The committed defi contract artifacts are exactly what the pinned solc produces from the sources."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "src" / "ailedger" / "defi" / "contracts"


def test_fresh_compile_matches_committed_artifacts(tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed: cannot recompile the contracts")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "compile-defi-contracts.sh"), str(tmp_path)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    committed = sorted(p.name for p in BUILD.glob("*.json"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.json")) == [
        "AgentGuard.json", "DenyList.json", "SimpleAMM.json", "TestToken.json"]
    pkg = json.loads((ROOT / "contracts" / "package.json").read_text())
    for name in committed:
        a = json.loads((BUILD / name).read_text())
        assert a == json.loads((tmp_path / name).read_text()), f"{name}: run scripts/compile-defi-contracts.sh"
        assert a["compiler"]["version"].startswith(pkg["dependencies"]["solc"] + "+")
    for src in BUILD.glob("*.sol"):
        assert f"pragma solidity {pkg['dependencies']['solc']};" in src.read_text()
