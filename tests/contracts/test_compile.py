"""The committed contract artifacts are exactly what the pinned solc produces from the sources."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# where compile.js puts each artifact: the anchor contract ships in the package, the benchmark's baseline not
ANCHOR = ROOT / "src" / "ailedger" / "anchoring" / "contracts"
COMMITTED = (ANCHOR, ROOT / "contracts" / "build")


def test_fresh_compile_matches_committed_artifacts(tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed: cannot recompile the contracts to compare with the artifacts")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "compile-contracts.sh"), str(tmp_path)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    committed = {p.name: p for d in COMMITTED for p in d.glob("*.json")}
    fresh = sorted(p.name for p in tmp_path.glob("*.json"))
    assert sorted(committed) == fresh and committed
    for name, path in committed.items():
        a = json.loads(path.read_text())
        b = json.loads((tmp_path / name).read_text())
        assert a == b, f"{name} differs from a fresh compile: run scripts/compile-contracts.sh and commit"


def test_compiler_and_evm_version_are_pinned():
    pkg = json.loads((ROOT / "contracts" / "package.json").read_text())
    assert pkg["dependencies"]["solc"][0].isdigit()  # an exact version, no range
    lock = json.loads((ROOT / "contracts" / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/solc"]["version"] == pkg["dependencies"]["solc"]
    art = json.loads((ANCHOR / "CheckpointAnchor.json").read_text())
    assert art["compiler"]["version"].startswith(pkg["dependencies"]["solc"] + "+")
    assert art["compiler"]["evmVersion"] == "cancun"
    src = (ROOT / "contracts" / "CheckpointAnchor.sol").read_text()
    assert f"pragma solidity {pkg['dependencies']['solc']};" in src
