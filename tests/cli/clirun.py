"""Run the ailedger CLI as a real subprocess (the entry point once cli/main.py exists)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

_BOOT = ("import click; from ailedger.cli import witness, anchor; g = click.Group('ailedger');"
         " witness.register(g); anchor.register(g); g()")


def cli_argv() -> list[str]:
    if importlib.util.find_spec("ailedger.cli.main") is not None:
        return [sys.executable, "-c", "from ailedger.cli.main import main; main()"]
    return [sys.executable, "-c", _BOOT]


def run(*args: str, timeout: float = 60, check: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    p = subprocess.run([*cli_argv(), *args], check=False, capture_output=True, text=True, timeout=timeout,
                       **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"ailedger {' '.join(args)} failed ({p.returncode}): {p.stderr}")
    return p


def spawn(*args: str, **kw) -> subprocess.Popen[str]:
    return subprocess.Popen([*cli_argv(), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
