"""Static checks, run as tests: mypy and ruff, with the settings in pyproject.toml.

* mypy checks the whole package with its default (non-strict) flags, and the kernel (``ailedger.encoding``,
  ``ailedger.tlog`` with its stores, ``ailedger.errors``) with the flags of ``--strict``;
* ruff checks ``src``, ``tests``, ``tools`` and ``bench`` with its default rule set (nothing selected or ignored
  in pyproject.toml).

Both tools are test dependencies (``.[dev]``, installed by scripts/setup.sh), pinned to one minor version:
a newer mypy or ruff may add checks, and these tests would then name the new findings.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def _tool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", *args], cwd=cwd, check=False, capture_output=True, text=True,
                       timeout=900)
    assert "No module named" not in r.stderr, f"{args[0]} is missing: run bash scripts/setup.sh\n{r.stderr}"
    return r


def test_mypy_passes_on_the_whole_package():
    r = _tool("mypy")  # the files (src/ailedger) and the flags come from pyproject.toml
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success: no issues found" in r.stdout
    checked = int(r.stdout.split(" in ")[-1].split()[0])
    assert checked >= len(list((ROOT / "src" / "ailedger").rglob("*.py"))), r.stdout


def test_mypy_is_strict_on_the_kernel_only(tmp_path):
    """The same loosely typed module, laid out as a kernel module and as a capability module: the strict
    flags must find its faults in the kernel, and must not leak to the capability (mypy 2.4 turns some of
    them on for every module when an override says ``strict = true``)."""
    body = textwrap.dedent("""\
        from typing import Any

        def untyped(x):
            return x

        def loose(x: Any) -> int:
            return x

        def bare(d: dict) -> list:
            return [d]
        """)
    kernel = ["ailedger/encoding/canary.py", "ailedger/tlog/canary.py", "ailedger/tlog/stores/canary.py",
              "ailedger/errors.py"]
    capability = ["ailedger/screening/canary.py", "ailedger/cli/canary.py"]
    for rel in kernel + capability:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(body)
        for d in p.relative_to(tmp_path).parents:
            if d != Path("."):
                (tmp_path / d / "__init__.py").touch()
    r = _tool("mypy", "--config-file", str(PYPROJECT), "--cache-dir", str(tmp_path / "cache"), "--no-pretty",
              *kernel, *capability, cwd=tmp_path)
    by_file: dict[str, set[str]] = {rel: set() for rel in kernel + capability}
    for line in r.stdout.splitlines():
        if ": error:" in line:
            by_file[line.split(":")[0]].add(line.rsplit("[", 1)[-1].rstrip("]"))
    for rel in kernel:
        assert {"no-untyped-def", "no-any-return", "type-arg"} <= by_file[rel], (rel, r.stdout)
    for rel in capability:
        assert by_file[rel] == set(), (rel, r.stdout)


def test_ruff_default_rules_pass():
    r = _tool("ruff", "check", "--no-cache", "src", "tests", "tools", "bench")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "All checks passed" in r.stdout


def test_ruff_runs_its_default_rule_set():
    """Passing by switching rules off does not count: pyproject.toml selects and ignores nothing."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    ruff = tomllib.loads(PYPROJECT.read_text())["tool"]["ruff"]
    keys = {"select", "extend-select", "ignore", "extend-ignore", "per-file-ignores",
            "extend-per-file-ignores", "exclude", "extend-exclude"}
    assert not keys & set(ruff), sorted(keys & set(ruff))
    assert not keys & set(ruff.get("lint", {})), sorted(keys & set(ruff.get("lint", {})))
    r = _tool("ruff", "check", "--no-cache", "--show-settings", "src")
    assert r.returncode == 0, r.stderr
    assert "(F401)" in r.stdout and "(I001)" in r.stdout  # pyflakes and import order are in the default set
