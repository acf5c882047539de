"""Building and running the C servers' libFuzzer harnesses (front/fuzz_front.c, tiled/fuzz_tiled.c) for their
tests: one :class:`Harness` per harness directory (its corpus/, regressions/ and dictionary), clang with
libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer (scripts/setup.d/26-clang-fuzz.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.fuzz.rss import rss_limit_flag

CLANG = shutil.which("clang")
SRC_DIR = Path(__file__).resolve().parents[2] / "src" / "ailedger" / "tlog"
FLAGS = ["-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
         "-fno-omit-frame-pointer", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-unused-function"]
FINDING_PREFIXES = ("crash-", "timeout-", "oom-", "leak-")

needs_clang = pytest.mark.skipif(CLANG is None, reason="clang is not installed (scripts/setup.d/26-clang-fuzz.sh)")


def findings(work: Path) -> list[str]:
    """What libFuzzer saved in work as a finding (crash, timeout, out-of-memory, leak)."""
    return sorted(x.name for x in work.iterdir() if x.name.startswith(FINDING_PREFIXES))


def run(binary: Path, work: Path, *args: str, timeout: float) -> subprocess.CompletedProcess:
    """Run a built harness in work (its artifacts and scratch files go there)."""
    env = dict(os.environ, TMPDIR=str(work), ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    return subprocess.run([str(binary), f"-artifact_prefix={work}/", "-timeout=10", rss_limit_flag(), *args],
                          check=False, capture_output=True, text=True, timeout=timeout, cwd=work, env=env)


@dataclass(frozen=True)
class Harness:
    """The harness in directory here (``fuzz_<name>.c``, ``<name>.dict``, corpus/, regressions/), which
    includes the server's C file ``src/ailedger/tlog/<server>`` whole."""

    here: Path
    name: str
    server: str

    @property
    def source(self) -> Path:
        return SRC_DIR / self.server

    def build(self, source_dir: Path, out: Path) -> Path:
        """Build the harness against the server's C file (and headers) in source_dir."""
        p = subprocess.run([str(CLANG), *FLAGS, "-I", str(source_dir), str(self.here / f"fuzz_{self.name}.c"),
                            "-o", str(out)], check=False, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, f"the harness did not build:\n{p.stderr[-4000:]}"
        return out

    def build_planted(self, plant: str, bad: str, tmp_path: Path) -> Path:
        """Build the harness against a copy of the server's C file with plant replaced by bad."""
        src = self.source.read_text()
        assert plant in src, f"the planted line is gone from {self.server}: update this test"
        changed = src.replace(plant, bad, 1)
        assert changed != src
        (tmp_path / "src").mkdir()
        (tmp_path / "src" / self.server).write_text(changed)
        for header in SRC_DIR.glob("*.h"):  # the HTTP helpers the servers share (_http1.h)
            shutil.copy(header, tmp_path / "src" / header.name)
        return self.build(tmp_path / "src", tmp_path / f"fuzz_{self.name}_bad")

    def corpus(self) -> list[Path]:
        return sorted((self.here / "corpus").iterdir())

    def fixed_inputs(self) -> list[Path]:
        """The seed corpus and every saved finding in regressions/."""
        return self.corpus() + sorted(x for x in (self.here / "regressions").glob("*") if not x.name.startswith("."))

    def fuzz(self, binary: Path, work: Path, seconds: int) -> None:
        """Fuzz for seconds from a copy of the seed corpus, with the dictionary; no finding allowed."""
        corpus = work / "corpus"
        shutil.copytree(self.here / "corpus", corpus)
        p = run(binary, work, f"-max_total_time={seconds}", f"-dict={self.here / f'{self.name}.dict'}", str(corpus),
                timeout=seconds + 120)
        assert p.returncode == 0 and not findings(work), f"exit {p.returncode}, {findings(work)}\n{p.stderr[-6000:]}"
        assert "Done" in p.stderr

    def check_fixed_inputs(self, binary: Path, work: Path) -> None:
        p = run(binary, work, *map(str, self.fixed_inputs()), timeout=120)
        assert p.returncode == 0 and not findings(work), p.stderr[-6000:]
        assert p.stderr.count("Executed ") == len(self.fixed_inputs())

    def check_catches(self, binary: Path, work: Path, expect: str) -> None:
        """A harness built with a planted fault must fail on the seed corpus, saying expect."""
        work.mkdir(exist_ok=True)
        p = run(binary, work, *map(str, self.corpus()), timeout=120)
        assert p.returncode != 0 and expect in p.stderr, p.stderr[-3000:]


class HarnessTests:
    """The tests every harness gets; a test module subclasses this (as ``Test...``) and sets HARNESS,
    LONG_SECONDS and PLANTS (plant, bad, expect: a line of the server's C file, the faulty line put in its
    place, and what the harness must then report on the seed corpus)."""

    HARNESS: Harness
    LONG_SECONDS: int
    PLANTS: tuple[tuple[str, str, str], ...]

    @pytest.fixture(scope="class")
    @classmethod
    def harness(cls, tmp_path_factory) -> Path:
        return cls.HARNESS.build(SRC_DIR, tmp_path_factory.mktemp(f"{cls.HARNESS.name}-fuzz") / f"fuzz_{cls.HARNESS.name}")

    @pytest.fixture(params=range(2), ids=["heap-overflow", "wrong-content-length"])
    def plant(self, request) -> tuple[str, str, str]:
        return self.PLANTS[request.param]

    def test_seed_corpus_and_saved_findings_run_clean(self, harness, tmp_path):
        self.HARNESS.check_fixed_inputs(harness, tmp_path)

    def test_short_run(self, harness, tmp_path):
        self.HARNESS.fuzz(harness, tmp_path, 20)

    @pytest.mark.slow
    def test_long_run(self, harness, tmp_path):
        self.HARNESS.fuzz(harness, tmp_path, self.LONG_SECONDS)

    def test_the_harness_catches_a_planted_fault(self, tmp_path, plant):
        line, bad, expect = plant
        binary = self.HARNESS.build_planted(line, bad, tmp_path)
        self.HARNESS.check_catches(binary, tmp_path / "work", expect)
