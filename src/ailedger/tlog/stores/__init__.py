"""Storage backends. ``open_store`` picks one from a ledger's config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ailedger.errors import BadInputError
from ailedger.tlog.stores.base import LeafRow, LogStore, node_key
from ailedger.tlog.stores.memory import MemoryStore
from ailedger.tlog.stores.sqlite import SQLiteStore

__all__ = ["LeafRow", "LogStore", "MemoryStore", "SQLiteStore", "node_key", "open_store"]


def open_store(config: dict[str, Any], ledger_dir: Path, *, create: bool = False) -> LogStore:
    kind = config.get("store", "sqlite")
    if kind == "sqlite":
        return SQLiteStore(ledger_dir / config.get("sqlite_file", "ledger.db"), create=create)
    if kind == "memory":
        return MemoryStore()
    if kind == "postgres":
        from ailedger.tlog.stores.postgres import PostgresStore  # optional backend

        return PostgresStore(config["dsn"], schema=config.get("schema"), create=create)
    raise BadInputError(f"unknown store kind {kind!r} in ledger config", field="store")
