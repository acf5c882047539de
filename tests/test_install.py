"""`pip install ailedger` with no extra, for real: a fresh venv in a temporary folder, the package built
from a copy of this tree (pip reaches PyPI for the kernel's few dependencies).  The kernel verifies a proof
made by the full install, holds none of the heavy libraries, and a capability command names its extra.

Slow (a venv and a build: ~75 s here); tests/cli/test_extras.py checks the same closure in the full
install, fast, by refusing every module outside the kernel's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IGNORE = shutil.ignore_patterns(".git", ".venv", "node_modules", "build", "dist", "*.egg-info", "*.so",
                                "__pycache__", "test-artifacts", ".pytest_cache", ".mypy_cache", ".ruff_cache",
                                "env.sh")
HEAVY = {"web3", "scikit-learn", "torch", "numpy", "scipy", "matplotlib", "cleanlab", "av", "c2pa-python",
         "starlette", "uvicorn", "pyarrow", "aiohttp", "eth-tester", "py-evm", "zfec", "psycopg"}


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def make_kernel_venv(where: Path) -> Path:
    """A fresh venv at ``where`` with ``pip install <copy of this tree>`` (no extras); its bin folder."""
    src = where.parent / (where.name + "-src")
    shutil.copytree(ROOT, src, ignore=IGNORE)
    venv.create(where, with_pip=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    p = _run([str(where / "bin" / "python"), "-m", "pip", "install", "-q", str(src)], where.parent, env, timeout=900)
    assert p.returncode == 0, p.stderr[-4000:]
    return where / "bin"


@pytest.mark.slow
def test_kernel_install_verifies_a_proof_of_the_full_install(tmp_path: Path):
    # a ledger, a proof and the entry's bytes, made by the full install
    full = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    full.pop("AILEDGER_LEDGER", None)
    cli = [sys.executable, "-m", "ailedger"]
    for args in (["init", "led", "--origin", "example.org/install"], ["--ledger", "led", "identity", "new", "alice"],
                 ["--ledger", "led", "prove", "0", "-o", "p.tlog-proof"], ["--ledger", "led", "entry", "0", "-o", "e0.bin"]):
        p = _run([*cli, *args], tmp_path, full)
        assert p.returncode == 0, p.stderr
    (tmp_path / "log.vkey").write_text(_run([*cli, "--ledger", "led", "vkey"], tmp_path, full).stdout)

    bin_ = make_kernel_venv(tmp_path / "kvenv")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "AILEDGER_LEDGER")}
    listed = _run([str(bin_ / "python"), "-m", "pip", "list", "--format", "json"], tmp_path, env)
    names = {d["name"].lower() for d in json.loads(listed.stdout)}
    assert "ailedger" in names and {"cryptography", "pynacl", "click"} <= names
    assert not names & HEAVY, names & HEAVY
    where = _run([str(bin_ / "python"), "-c", "import ailedger; print(ailedger.__file__)"], tmp_path, env).stdout
    assert str(tmp_path / "kvenv") in where  # the installed copy, not this tree

    ailedger = str(bin_ / "ailedger")
    ok = _run([ailedger, "verify", "p.tlog-proof", "--vkey", "log.vkey", "--entry", "e0.bin", "--json"], tmp_path, env)
    assert ok.returncode == 0, ok.stderr
    res = json.loads(ok.stdout)
    assert res["ok"] and res["index"] == 0 and res["signature"] == "valid"
    bad = bytearray((tmp_path / "e0.bin").read_bytes())
    bad[-2] ^= 1
    (tmp_path / "bad.bin").write_bytes(bytes(bad))
    assert _run([ailedger, "verify", "p.tlog-proof", "--vkey", "log.vkey", "--entry", "bad.bin"], tmp_path,
                env).returncode == 1

    (tmp_path / "a.txt").write_text("hello\n")
    miss = _run([ailedger, "--ledger", "led", "content", "register", "a.txt", "--as", "alice"], tmp_path, env)
    assert miss.returncode == 2 and "install ailedger[content]" in miss.stderr, miss.stderr
    miss = _run([ailedger, "--ledger", "led", "serve", "--port", "18510"], tmp_path, env)
    assert miss.returncode == 2 and "install ailedger[server]" in miss.stderr, miss.stderr
