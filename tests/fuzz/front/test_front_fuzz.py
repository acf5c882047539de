"""The C write front (src/ailedger/tlog/_front.c, ``ailedger serve --ingest-port``) under libFuzzer with
AddressSanitizer and UndefinedBehaviorSanitizer: fuzz_front.c drives its real read and answer paths (see
its header comment).

- a short run (20 s) is part of the normal suite; a long one is marked slow
  (``AILEDGER_FRONT_FUZZ_SECONDS``, default 600);
- the seed corpus and every saved finding in ``regressions/`` run as fixed inputs;
- the harness is shown to catch what it is meant to catch: a planted heap overflow and a planted wrong
  Content-Length in copies of _front.c each make it fail.

clang with libFuzzer comes from scripts/setup.d/26-clang-fuzz.sh; without clang these tests skip. The tests
themselves, shared with the tile server's harness, are in tests/fuzz/clang.py."""

from __future__ import annotations

import os
from pathlib import Path

from tests.fuzz.clang import Harness, HarnessTests, needs_clang

pytestmark = needs_clang


class TestFrontFuzz(HarnessTests):
    HARNESS = Harness(Path(__file__).resolve().parent, "front", "_front.c")
    LONG_SECONDS = int(os.environ.get("AILEDGER_FRONT_FUZZ_SECONDS", "600"))
    PLANTS = (
        # a queued request's body copied one byte past its allocation: AddressSanitizer must report it
        ("req_t *r = malloc(sizeof *r + n);", "req_t *r = malloc(sizeof *r + n - 1);",
         "AddressSanitizer: heap-buffer-overflow"),
        # an answer whose Content-Length is one more than its body: the wire check must catch it
        ("status, reason(status), date_now, blen,", "status, reason(status), date_now, blen + 1,",
         "malformed output"),
    )
