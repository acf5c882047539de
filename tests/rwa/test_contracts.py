"""The committed rwa contract artifacts are exactly what the pinned solc produces from the sources (through the
one compile script, contracts/compile.js)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "src" / "ailedger" / "rwa" / "contracts"


def test_fresh_compile_matches_committed_artifacts(tmp_path):
    if shutil.which("node") is None:
        pytest.skip("node is not installed: cannot recompile the contracts")
    out = subprocess.run(["bash", str(ROOT / "scripts" / "compile-rwa-contracts.sh"), str(tmp_path)],
                         check=False, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    committed = sorted(p.name for p in BUILD.glob("*.json"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.json")) == [
        "Compliance.json", "IdentityRegistry.json", "NavDesk.json", "RwaToken.json", "RwaVault.json"]
    pkg = json.loads((ROOT / "contracts" / "package.json").read_text())
    for name in committed:
        assert (BUILD / name).read_bytes() == (tmp_path / name).read_bytes(), \
            f"{name}: run scripts/compile-rwa-contracts.sh"
        assert json.loads((BUILD / name).read_text())["compiler"]["version"].startswith(
            pkg["dependencies"]["solc"] + "+")
    for src in BUILD.glob("*.sol"):
        assert f"pragma solidity {pkg['dependencies']['solc']};" in src.read_text()


def test_the_vault_has_the_eip4626_interface():
    """Every function and event EIP-4626 names, with its exact inputs and outputs."""
    abi = json.loads((BUILD / "RwaVault.json").read_text())["abi"]
    fns = {i["name"]: ([x["type"] for x in i["inputs"]], [x["type"] for x in i["outputs"]])
           for i in abi if i["type"] == "function"}
    u, a = "uint256", "address"
    want = {"asset": ([], [a]), "totalAssets": ([], [u]), "convertToShares": ([u], [u]),
            "convertToAssets": ([u], [u]), "maxDeposit": ([a], [u]), "previewDeposit": ([u], [u]),
            "deposit": ([u, a], [u]), "maxMint": ([a], [u]), "previewMint": ([u], [u]), "mint": ([u, a], [u]),
            "maxWithdraw": ([a], [u]), "previewWithdraw": ([u], [u]), "withdraw": ([u, a, a], [u]),
            "maxRedeem": ([a], [u]), "previewRedeem": ([u], [u]), "redeem": ([u, a, a], [u]),
            "totalSupply": ([], [u]), "balanceOf": ([a], [u]), "transfer": ([a, u], ["bool"]),
            "approve": ([a, u], ["bool"]), "transferFrom": ([a, a, u], ["bool"]), "allowance": ([a, a], [u]),
            "decimals": ([], ["uint8"])}
    for name, sig in want.items():
        assert fns.get(name) == sig, name
    events = {i["name"]: [(x["type"], x["indexed"]) for x in i["inputs"]] for i in abi if i["type"] == "event"}
    assert events["Deposit"] == [(a, True), (a, True), (u, False), (u, False)]
    assert events["Withdraw"] == [(a, True), (a, True), (a, True), (u, False), (u, False)]
