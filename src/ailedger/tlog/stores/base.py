"""The LogStore contract: a store only reads and writes; it never computes hashes.

The integration algorithm lives in :mod:`ailedger.tlog.log` and runs inside a write
transaction that the store provides (``with store.writer() as w``), so several
processes appending to one store serialise on the store's own lock and always
see the size they extend.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import NamedTuple, Protocol

__all__ = ["INT64_MAX", "LeafRow", "LogStore", "ReadView", "WriteTxn", "node_key"]

# sizes and indexes are stored as signed 64-bit integers: a larger one names nothing
INT64_MAX = 2**63 - 1


def node_key(level: int, index: int) -> int:
    """Pack a node id into one integer key (level >= 1; level-0 hashes are the leaves')."""
    return (level << 56) | index


class LeafRow(NamedTuple):
    """One entry to store: its bytes, its RFC 6962 leaf hash and its index terms (a named tuple: made
    once per entry on the write path, where a frozen dataclass cost twice as much)."""

    data: bytes
    hash: bytes
    terms: tuple[str, ...] = ()


class ReadView(Protocol):
    def size(self) -> int: ...
    def node_hashes(self, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]: ...
    def indices_of(self, hashes: Sequence[bytes]) -> dict[bytes, int]: ...


class WriteTxn(ReadView, Protocol):
    def add_leaves(self, start: int, rows: Sequence[LeafRow]) -> None:
        """Store rows at start..; raise ConflictError if start != size and DuplicateLeafError
        (leaving the transaction to be rolled back) if a leaf hash is already stored."""
    def add_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None: ...
    def add_node_keys(self, nodes: Sequence[tuple[int, bytes]]) -> None:
        """Store interior nodes given as (:func:`node_key`, hash) pairs (the log's batched append)."""
    def put_checkpoint(self, size: int, note: bytes) -> None: ...


class LogStore(ReadView, Protocol):
    def writer(self) -> AbstractContextManager[WriteTxn]: ...
    def leaves(self, start: int, end: int) -> list[bytes]: ...
    def leaf_hashes(self, start: int, end: int) -> list[bytes]: ...
    def iter_leaves(self, start: int, end: int, batch: int = 10000) -> Iterator[tuple[int, bytes, bytes]]: ...
    def iter_nodes(self) -> Iterator[tuple[int, int, bytes]]: ...
    def latest_checkpoint(self) -> bytes | None: ...
    def checkpoint_at(self, size: int) -> bytes | None: ...
    def checkpoints(self) -> list[tuple[int, bytes]]: ...
    def checkpoint_size_at_least(self, size: int) -> int | None:
        """The smallest size >= ``size`` that has a stored checkpoint (tile servers: which partial
        tiles some checkpoint needs)."""
    def find(self, term: str, after: int = -1, limit: int = 1000) -> list[int]: ...
    def find_newest(self, term: str, offset: int = 0, limit: int = 50) -> list[int]:
        """Indices indexed under ``term``, newest first, skipping the ``offset`` newest (list pages)."""
    def count(self, term: str) -> int:
        """How many entries are indexed under ``term``."""
    def checkpoint_count(self) -> int: ...
    def checkpoints_newest(self, offset: int = 0, limit: int = 50) -> list[tuple[int, bytes]]:
        """Stored checkpoints (size, note), largest size first, skipping the ``offset`` largest."""

    def terms_present(self, terms: Sequence[str]) -> set[str]:
        """Which of ``terms`` index at least one entry (one query: a write group's lookups)."""
    def index_row_count(self) -> int: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def close(self) -> None: ...
