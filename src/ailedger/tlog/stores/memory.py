"""In-memory LogStore: for tests and for verifying a log someone handed you."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from ailedger.errors import ConflictError, DuplicateLeafError
from ailedger.tlog.stores.base import LeafRow

__all__ = ["MemoryStore"]


class _MemTxn:
    def __init__(self, s: MemoryStore) -> None:
        self.s = s
        self.leaves: list[LeafRow] = []
        self.start = len(s._data)
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.cps: dict[int, bytes] = {}

    def size(self) -> int:
        return self.start + len(self.leaves)

    def node_hashes(self, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        out = {}
        for lv, i in ids:
            if lv == 0:
                if i < self.start:
                    out[(lv, i)] = self.s._hashes[i]
                elif i < self.size():
                    out[(lv, i)] = self.leaves[i - self.start].hash
            elif (lv, i) in self.nodes:
                out[(lv, i)] = self.nodes[(lv, i)]
            elif (lv, i) in self.s._nodes:
                out[(lv, i)] = self.s._nodes[(lv, i)]
        return out

    def indices_of(self, hashes: Sequence[bytes]) -> dict[bytes, int]:
        out = {h: self.s._by_hash[h] for h in hashes if h in self.s._by_hash}
        for i, r in enumerate(self.leaves):
            if r.hash in hashes and r.hash not in out:
                out[r.hash] = self.start + i
        return out

    def add_leaves(self, start: int, rows: Sequence[LeafRow]) -> None:
        if start != self.size():
            raise ConflictError(f"append at {start} but the log has {self.size()} entries")
        seen = {r.hash for r in self.leaves}
        for r in rows:
            if r.hash in self.s._by_hash or r.hash in seen:
                raise DuplicateLeafError("a leaf in this batch is already stored")
            seen.add(r.hash)
        self.leaves.extend(rows)

    def add_nodes(self, nodes: Iterable[tuple[int, int, bytes]]) -> None:
        for lv, ix, h in nodes:
            if lv > 0:
                self.nodes[(lv, ix)] = h

    def add_node_keys(self, nodes: Sequence[tuple[int, bytes]]) -> None:
        for key, h in nodes:
            self.nodes[(key >> 56, key & ((1 << 56) - 1))] = h

    def add_node_levels(self, levels: Sequence[tuple[int, int, bytes]]) -> None:
        for lv, first, body in levels:
            for k in range(len(body) // 32):
                self.nodes[(lv, first + k)] = body[32 * k : 32 * k + 32]

    def put_checkpoint(self, size: int, note: bytes) -> None:
        self.cps[size] = note


class MemoryStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._data: list[bytes] = []
        self._hashes: list[bytes] = []
        self._by_hash: dict[bytes, int] = {}
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._cps: dict[int, bytes] = {}
        self._terms: dict[str, list[int]] = {}
        self._meta: dict[str, str] = {}

    @contextmanager
    def writer(self) -> Iterator[_MemTxn]:
        with self._lock:
            t = _MemTxn(self)
            yield t
            for i, r in enumerate(t.leaves):  # commit: all or nothing (an exception skips this)
                idx = t.start + i
                self._data.append(r.data)
                self._hashes.append(r.hash)
                self._by_hash.setdefault(r.hash, idx)
                for term in r.terms:
                    self._terms.setdefault(term, []).append(idx)
            self._nodes.update(t.nodes)
            self._cps.update(t.cps)

    def size(self) -> int:
        return len(self._data)

    def node_hashes(self, ids: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        with self._lock:
            return _MemTxn(self).node_hashes(ids)

    def indices_of(self, hashes: Sequence[bytes]) -> dict[bytes, int]:
        return {h: self._by_hash[h] for h in hashes if h in self._by_hash}

    def leaves(self, start: int, end: int) -> list[bytes]:
        return self._data[start:end]

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        return self._hashes[start:end]

    def iter_leaves(self, start: int, end: int, batch: int = 10000) -> Iterator[tuple[int, bytes, bytes]]:
        for i in range(start, min(end, len(self._data))):
            yield i, self._hashes[i], self._data[i]

    def iter_nodes(self) -> Iterator[tuple[int, int, bytes]]:
        for (lv, ix), h in sorted(self._nodes.items()):
            yield lv, ix, h

    def latest_checkpoint(self) -> bytes | None:
        return self._cps[max(self._cps)] if self._cps else None

    def checkpoint_at(self, size: int) -> bytes | None:
        return self._cps.get(size)

    def checkpoint_size_at_least(self, size: int) -> int | None:
        return min((s for s in self._cps if s >= size), default=None)

    def checkpoints(self) -> list[tuple[int, bytes]]:
        return sorted(self._cps.items())

    def find(self, term: str, after: int = -1, limit: int = 1000) -> list[int]:
        return [i for i in self._terms.get(term, []) if i > after][:limit]

    def find_newest(self, term: str, offset: int = 0, limit: int = 50) -> list[int]:
        got = self._terms.get(term, [])
        end = len(got) - offset
        return got[max(0, end - limit):max(0, end)][::-1]

    def count(self, term: str) -> int:
        return len(self._terms.get(term, []))

    def checkpoint_count(self) -> int:
        return len(self._cps)

    def checkpoints_newest(self, offset: int = 0, limit: int = 50) -> list[tuple[int, bytes]]:
        return sorted(self._cps.items(), reverse=True)[offset:offset + limit]

    def terms_present(self, terms: Sequence[str]) -> set[str]:
        return {t for t in terms if self._terms.get(t)}

    def index_row_count(self) -> int:
        return len(self._data)

    def get_meta(self, key: str) -> str | None:
        return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        self._meta[key] = value

    def close(self) -> None:
        pass
