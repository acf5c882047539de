"""Helpers shared by the group-commit, crash and retry tests (tests/http/test_group_commit*.py,
test_write_retry.py); their ``any_ledger`` fixture (a ledger on SQLite, then on PostgreSQL) is in conftest.py."""

from __future__ import annotations

from pathlib import Path

import httpx

from ailedger.encoding.canonical import canonical_json
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.log import TransparencyLog
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow
from tests.http.helpers import Key
from tests.tlog.stores.pg_factory import PG_DSN, fresh_schema, require_pg

__all__ = ["append_unsigned", "checkpoint_size", "init_ledger", "leaf_hex", "register"]


def leaf_hex(e: dict) -> str:
    """The leaf hash (hex) of an entry as the log stores it."""
    return leaf_hash(canonical_json(e)).hex()


def checkpoint_size(url: str) -> int:
    """The tree size of the server's current checkpoint."""
    return int(httpx.get(url + "/checkpoint").text.split("\n")[1])


def init_ledger(d: Path, store: str) -> Path:
    """A new ledger at ``d`` on ``store`` ("sqlite", or "postgres" in a fresh schema; skips without PG)."""
    if store == "postgres":
        require_pg()
        Ledger.init(d, origin="test.example/gc", store={"store": "postgres", "dsn": PG_DSN,
                                                          "schema": fresh_schema()}).close()
    else:
        Ledger.init(d, origin="test.example/gc").close()
    return d


def register(url: str, *keys: Key) -> list[tuple[int, str]]:
    """Register each key's identity over HTTP (201 each); their (index, leaf hash)."""
    out = []
    for k in keys:
        r = httpx.post(url + "/v1/identities", json=k.registration())
        assert r.status_code == 201, r.text
        out.append((r.json()["index"], r.json()["leaf_hash"]))
    return out


def append_unsigned(ledger_dir: Path, entries: list[dict]) -> int:
    """Entries stored without a checkpoint covering them, as a crash between an append's commit and its
    checkpoint left them in earlier versions (or a writer without the log key). Returns the store size."""
    with Ledger.open(ledger_dir) as led:
        bare = TransparencyLog(led.store, led.origin)  # no signing key
        bare.append([LeafRow(canonical_json(e), leaf_hash(canonical_json(e))) for e in entries])
        return led.size
