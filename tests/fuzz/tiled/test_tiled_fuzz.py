"""The C tile server (src/ailedger/tlog/_tiled.c) under libFuzzer with AddressSanitizer and
UndefinedBehaviorSanitizer: fuzz_tiled.c drives its real read path (see its header comment).

- a short run (20 s) is part of the normal suite; a long one is marked slow
  (``AILEDGER_TILED_FUZZ_SECONDS``, default 600);
- the seed corpus and every saved finding in ``regressions/`` run as fixed inputs;
- the harness is shown to catch what it is meant to catch: a planted heap overflow and a planted
  wrong Content-Length in copies of _tiled.c each make it fail.

clang with libFuzzer comes from scripts/setup.d/26-clang-fuzz.sh; without clang these tests skip (the
building and running is in tests/fuzz/clang.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.fuzz.clang import SRC_DIR, Harness, needs_clang

HARNESS = Harness(Path(__file__).resolve().parent, "tiled", "_tiled.c")
LONG_SECONDS = int(os.environ.get("AILEDGER_TILED_FUZZ_SECONDS", "600"))

pytestmark = needs_clang


@pytest.fixture(scope="module")
def harness(tmp_path_factory) -> Path:
    return HARNESS.build(SRC_DIR, tmp_path_factory.mktemp("tiled-fuzz") / "fuzz_tiled")


def test_seed_corpus_and_saved_findings_run_clean(harness, tmp_path):
    HARNESS.check_fixed_inputs(harness, tmp_path)


def test_short_run(harness, tmp_path):
    HARNESS.fuzz(harness, tmp_path, 20)


@pytest.mark.slow
def test_long_run(harness, tmp_path):
    HARNESS.fuzz(harness, tmp_path, LONG_SECONDS)


@pytest.mark.parametrize("plant, bad, expect", [
    # one byte short for every cached answer: AddressSanitizer must report the heap overflow
    ("char *r = malloc((size_t)h + blen);", "char *r = malloc((size_t)h + blen - 1);",
     "AddressSanitizer: heap-buffer-overflow"),
    # an error body one byte shorter than its Content-Length says: the wire check must catch it
    ("status, reason, date_now, bl, extra", "status, reason, date_now, bl + 1, extra", "malformed output"),
])
def test_the_harness_catches_a_planted_fault(tmp_path, plant, bad, expect):
    binary = HARNESS.build_planted(plant, bad, tmp_path)
    HARNESS.check_catches(binary, tmp_path / "work", expect)
