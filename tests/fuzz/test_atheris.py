"""Coverage-guided runs of the parser targets under atheris (libFuzzer), where atheris is installed.

A short run of all targets at once is part of the normal suite; one long run per target is
marked slow (``AILEDGER_ATHERIS_SECONDS``, default 60, sets its length)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fuzzlib import TARGETS
from tests.fuzz.rss import rss_limit_flag

pytest.importorskip("atheris")

DRIVER = Path(__file__).with_name("atheris_driver.py")
LONG_SECONDS = int(os.environ.get("AILEDGER_ATHERIS_SECONDS", "60"))


def _fuzz(target: str, seconds: int, tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(DRIVER), target, f"-max_total_time={seconds}", "-timeout=10", rss_limit_flag(),
         f"-artifact_prefix={tmp_path}/"],
        check=False, capture_output=True, text=True, timeout=seconds + 120, cwd=tmp_path,
    )
    crashes = sorted(x.name for x in tmp_path.iterdir() if x.name.startswith(("crash-", "timeout-", "oom-")))
    assert p.returncode == 0 and not crashes, f"{target}: exit {p.returncode}, {crashes}\n{p.stderr[-4000:]}"
    assert "Done" in p.stderr


def test_all_targets_short(tmp_path):
    _fuzz("all", 4, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_target_long(target, tmp_path):
    _fuzz(target, LONG_SECONDS, tmp_path)
