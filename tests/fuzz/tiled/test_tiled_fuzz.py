"""The C tile server (src/ailedger/tlog/_tiled.c) under libFuzzer with AddressSanitizer and
UndefinedBehaviorSanitizer: fuzz_tiled.c drives its real read path (see its header comment).

- a short run (20 s) is part of the normal suite; a long one is marked slow
  (``AILEDGER_TILED_FUZZ_SECONDS``, default 600);
- the seed corpus and every saved finding in ``regressions/`` run as fixed inputs;
- the harness is shown to catch what it is meant to catch: a planted heap overflow and a planted
  wrong Content-Length in copies of _tiled.c each make it fail.

clang with libFuzzer comes from scripts/setup.d/26-clang-fuzz.sh; without clang these tests skip. The tests
themselves, shared with the write front's harness, are in tests/fuzz/clang.py."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fuzz.clang import Harness, HarnessTests, needs_clang

pytestmark = needs_clang


class TestTiledFuzz(HarnessTests):
    HARNESS = Harness(Path(__file__).resolve().parent, "tiled", "_tiled.c")
    LONG_SECONDS = int(os.environ.get("AILEDGER_TILED_FUZZ_SECONDS", "600"))
    PLANTS = (
        # one byte short for every cached answer: AddressSanitizer must report the heap overflow
        ("char *r = malloc((size_t)h + blen);", "char *r = malloc((size_t)h + blen - 1);",
         "AddressSanitizer: heap-buffer-overflow"),
        # an error body one byte shorter than its Content-Length says: the wire check must catch it
        ("status, reason, date_now, bl, extra", "status, reason, date_now, bl + 1, extra", "malformed output"),
    )
