"""Hypothesis fuzzing of every hand-written parser (see fuzzlib.py for the targets and the contract).

The short run (``SHORT_EXAMPLES`` inputs per parser, a few seconds each) is part of the normal
suite; the long run is marked slow:

    python -m pytest tests/fuzz -m slow -p no:cacheprovider          # AILEDGER_FUZZ_EXAMPLES=N to change
"""

from __future__ import annotations

import os

import pytest
from fuzzlib import TARGETS, run_target, strategy_for  # tests/fuzz/fuzzlib.py (this folder is on sys.path)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SHORT_EXAMPLES = 200
LONG_EXAMPLES = int(os.environ.get("AILEDGER_FUZZ_EXAMPLES", "5000"))
_COMMON = {"deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=SHORT_EXAMPLES, **_COMMON)
@given(data=st.data())
def test_parser_short(name, data):
    run_target(name, data.draw(strategy_for(name), label="input"))


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=LONG_EXAMPLES, **_COMMON)
@given(data=st.data())
def test_parser_long(name, data):
    run_target(name, data.draw(strategy_for(name), label="input"))
