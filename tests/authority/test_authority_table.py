"""docs/authority.md is the authority table (core.authority.RULES) written out, and it covers every entry type
the code writes or reads: a capability that adds a type without a row fails here."""

from __future__ import annotations

import re
from pathlib import Path

from ailedger.authority.rules import RULES
from ailedger.governance.state import ACTION_KINDS, GOV_TYPES, STAKE_TYPES

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "authority.md").read_text()
PREFIXES = ("model", "gov", "stake", "identity", "dataset", "content", "blob", "inference", "witness", "log",
            "anchor", "screening")
FILE_SUFFIXES = (".json", ".key", ".vkey", ".db", ".tar", ".lock", ".bin", ".txt")
# dotted names in the source that are not entry types: DAO action kinds inside a gov.propose
NOT_ENTRY_TYPES = {"param.set", "suspension.confirm", "suspension.lift"}


def doc_rows() -> dict[str, str]:
    rows = {}
    for line in DOC.splitlines():
        m = re.match(r"^\| `([a-z][a-z0-9_.*-]+)` \| (.+?) \|", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_every_rule_has_a_row_and_every_row_a_rule():
    rows = doc_rows()
    missing = sorted(set(RULES) - set(rows))
    assert not missing, f"types in core.authority.RULES without a row in docs/authority.md: {missing}"
    extra = sorted(set(rows) - set(RULES) - {"log.*"})
    assert not extra, f"rows in docs/authority.md that core.authority.RULES does not have: {extra}"


def test_every_entry_type_in_the_code_is_in_the_table():
    found = set()
    for p in (ROOT / "src" / "ailedger").rglob("*.py"):
        for m in re.finditer(r"[\"']([a-z]+(?:\.[a-z][a-z0-9_-]*)+)[\"']", p.read_text()):
            name = m.group(1)
            if name.split(".")[0] in PREFIXES and not name.endswith(FILE_SUFFIXES):
                found.add(name)
    found -= NOT_ENTRY_TYPES
    missing = sorted(found - set(RULES))
    assert not missing, f"entry types used in src/ without a rule (add them to RULES and docs/authority.md): {missing}"
    # the governance fold's own lists too
    assert set(GOV_TYPES + STAKE_TYPES) <= set(RULES)
    assert {k for k in ACTION_KINDS if k not in NOT_ENTRY_TYPES} <= set(RULES)
