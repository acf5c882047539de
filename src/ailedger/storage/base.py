"""The LogStore contract: a store only reads and writes; it never computes hashes.

The integration algorithm lives in :mod:`ailedger.log` and runs inside a write
transaction that the store provides (``with store.writer() as w``), so several
processes appending to one store serialise on the store's own lock and always
see the size they extend.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

__all__ = ["LeafRow", "LogStore", "WriteTxn", "ReadView", "node_key"]


def node_key(level: int, index: int) -> int:
    """Pack a node id into one integer key (level >= 1; level-0 hashes are the leaves')."""
    return (level << 56) | index


@dataclass(frozen=True)
class LeafRow:
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
    def find(self, term: str, after: int = -1, limit: int = 1000) -> list[int]: ...
    def terms_present(self, terms: Sequence[str]) -> set[str]:
        """Which of ``terms`` index at least one entry (one query: a write group's lookups)."""
    def index_row_count(self) -> int: ...
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def close(self) -> None: ...
