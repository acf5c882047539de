"""The C tile server (src/ailedger/tlog/_tiled.c) under libFuzzer with AddressSanitizer and
UndefinedBehaviorSanitizer: fuzz_tiled.c drives its real read path (see its header comment).

- a short run (20 s) is part of the normal suite; a long one is marked slow
  (``AILEDGER_TILED_FUZZ_SECONDS``, default 600);
- the seed corpus and every saved finding in ``regressions/`` run as fixed inputs;
- the harness is shown to catch what it is meant to catch: a planted heap overflow and a planted
  wrong Content-Length in copies of _tiled.c each make it fail.

clang with libFuzzer comes from scripts/setup.d/26-clang-fuzz.sh; without clang these tests skip."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.fuzz.rss import rss_limit_flag

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[2] / "src" / "ailedger" / "tlog" / "_tiled.c"
CLANG = shutil.which("clang")
LONG_SECONDS = int(os.environ.get("AILEDGER_TILED_FUZZ_SECONDS", "600"))
FLAGS = ["-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
         "-fno-omit-frame-pointer", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-unused-function"]

pytestmark = pytest.mark.skipif(CLANG is None, reason="clang is not installed (scripts/setup.d/26-clang-fuzz.sh)")


def build(source_dir: Path, out: Path) -> Path:
    p = subprocess.run([CLANG, *FLAGS, "-I", str(source_dir), str(HERE / "fuzz_tiled.c"), "-o", str(out)],
                       check=False, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"the harness did not build:\n{p.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    return build(SRC.parent, tmp_path_factory.mktemp("tiled-fuzz") / "fuzz_tiled")


def run(binary: Path, work: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    env = dict(os.environ, TMPDIR=str(work), ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    return subprocess.run([str(binary), f"-artifact_prefix={work}/", "-timeout=10", rss_limit_flag(), *args],
                          check=False, capture_output=True, text=True, timeout=timeout, cwd=work, env=env)


def findings(work: Path) -> list[str]:
    return sorted(x.name for x in work.iterdir() if x.name.startswith(("crash-", "timeout-", "oom-", "leak-")))


def fuzz(binary: Path, work: Path, seconds: int) -> None:
    corpus = work / "corpus"
    shutil.copytree(HERE / "corpus", corpus)
    p = run(binary, work, f"-max_total_time={seconds}", f"-dict={HERE / 'tiled.dict'}", str(corpus),
            timeout=seconds + 120)
    assert p.returncode == 0 and not findings(work), f"exit {p.returncode}, {findings(work)}\n{p.stderr[-6000:]}"
    assert "Done" in p.stderr


def fixed_inputs() -> list[Path]:
    return sorted((HERE / "corpus").iterdir()) + sorted((HERE / "regressions").glob("*"))


def test_seed_corpus_and_saved_findings_run_clean(harness, tmp_path):
    p = run(harness, tmp_path, *map(str, fixed_inputs()), timeout=120)
    assert p.returncode == 0 and not findings(tmp_path), p.stderr[-6000:]
    assert p.stderr.count("Executed ") == len(fixed_inputs())


def test_short_run(harness, tmp_path):
    fuzz(harness, tmp_path, 20)


@pytest.mark.slow
def test_long_run(harness, tmp_path):
    fuzz(harness, tmp_path, LONG_SECONDS)


@pytest.mark.parametrize("plant, expect", [
    # one byte short for every cached answer: AddressSanitizer must report the heap overflow
    ("char *r = malloc((size_t)h + blen);", "AddressSanitizer: heap-buffer-overflow"),
    # an error body one byte shorter than its Content-Length says: the wire check must catch it
    ('\\r\\nContent-Length: %d\\r\\n"', "malformed output"),
])
def test_the_harness_catches_a_planted_fault(tmp_path, plant, expect):
    src = SRC.read_text()
    assert plant in src, "the planted line is gone from _tiled.c: update this test"
    if plant.startswith("char"):
        bad = src.replace(plant, "char *r = malloc((size_t)h + blen - 1);", 1)
    else:
        bad = src.replace("status, reason, date_now, bl, extra", "status, reason, date_now, bl + 1, extra", 1)
    assert bad != src
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "_tiled.c").write_text(bad)
    shutil.copy(SRC.parent / "_http1.h", tmp_path / "src" / "_http1.h")  # the HTTP helpers it shares with _front.c
    binary = build(tmp_path / "src", tmp_path / "fuzz_bad")
    work = tmp_path / "work"
    work.mkdir()
    p = run(binary, work, *map(str, sorted((HERE / "corpus").iterdir())), timeout=120)
    assert p.returncode != 0 and expect in p.stderr, p.stderr[-3000:]
