"""Near-duplicate search over many fixed-width binary fingerprints (64 or 256 bits).

Two searchers over the same numpy arrays:

* ``brute``: XOR + popcount over every row (numpy ``bitwise_count``); exact; the reference.
* ``mih``: multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012).  The code is cut into
  m 16-bit chunks; by the pigeonhole principle any code within Hamming distance r of the
  query agrees with it to within floor(r/m) bits on at least one chunk.  Each chunk has a
  sorted table; candidates are gathered with ``searchsorted`` for every chunk value within
  the sub-radius, then verified exactly.  Results are identical to brute force.

``FingerprintStore`` persists (kind, code, ledger entry index) rows in its own SQLite file
under ``<ledger>/content/index.sqlite`` and loads each kind into an in-memory index.
"""

from __future__ import annotations

import functools
import itertools
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ailedger.errors import BadInputError, StorageError

CHUNK = 16


def int_to_words(code: int, bits: int) -> npt.NDArray[np.uint64]:
    words = bits // 64
    return np.array([(code >> (64 * (words - 1 - i))) & ((1 << 64) - 1) for i in range(words)], dtype=np.uint64)


@functools.lru_cache(maxsize=8)
def _masks_within(radius: int) -> npt.NDArray[np.uint64]:
    """All 16-bit XOR masks with popcount <= radius."""
    out = [0]
    for k in range(1, radius + 1):
        for pos in itertools.combinations(range(CHUNK), k):
            out.append(sum(1 << p for p in pos))
    return np.array(out, dtype=np.uint64)


@dataclass(frozen=True)
class Hit:
    row: int
    distance: int


class HammingIndex:
    """In-memory index of ``bits``-wide codes (rows are append-only)."""

    def __init__(self, bits: int = 64) -> None:
        if bits % 64:
            raise BadInputError("bits must be a multiple of 64", field="bits")
        self.bits = bits
        self.words = bits // 64
        self.codes = np.zeros((0, self.words), dtype=np.uint64)
        self._tables: list[tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]] | None = None

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def add_many(self, codes: npt.NDArray[np.uint64]) -> None:
        codes = np.asarray(codes, dtype=np.uint64).reshape(-1, self.words)
        self.codes = np.concatenate([self.codes, codes]) if len(self) else codes.copy()
        self._tables = None

    def add(self, code: int) -> int:
        self.add_many(int_to_words(code, self.bits)[None, :])
        return len(self) - 1

    def _chunks(self, codes: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
        """(n, words) -> (n, m) 16-bit chunk values."""
        per = 64 // CHUNK
        shifts = np.array([CHUNK * (per - 1 - j) for j in range(per)], dtype=np.uint64)
        ch = (codes[:, :, None] >> shifts[None, None, :]) & np.uint64(0xFFFF)
        return ch.reshape(codes.shape[0], -1)

    def _build(self) -> list[tuple[npt.NDArray[np.uint64], npt.NDArray[np.int64]]]:
        if self._tables is None:
            ch = self._chunks(self.codes)
            tables = []
            for j in range(ch.shape[1]):
                order = np.argsort(ch[:, j], kind="stable")
                tables.append((ch[order, j], order.astype(np.int64)))
            self._tables = tables
        return self._tables

    def build(self) -> None:
        self._build()

    def brute(self, code: int, radius: int) -> list[Hit]:
        if not len(self):
            return []
        q = int_to_words(code, self.bits)
        d = np.bitwise_count(self.codes ^ q[None, :]).sum(axis=1, dtype=np.int64)
        rows = np.nonzero(d <= radius)[0]
        return sorted((Hit(int(r), int(d[r])) for r in rows), key=lambda h: (h.distance, h.row))

    def nearest_brute(self, code: int, k: int = 1) -> list[Hit]:
        if not len(self):
            return []
        q = int_to_words(code, self.bits)
        d = np.bitwise_count(self.codes ^ q[None, :]).sum(axis=1, dtype=np.int64)
        k = min(k, len(d))
        rows = np.argpartition(d, k - 1)[:k]
        return sorted((Hit(int(r), int(d[r])) for r in rows), key=lambda h: (h.distance, h.row))

    def search(self, code: int, radius: int) -> list[Hit]:
        """All rows within ``radius`` (multi-index hashing; same result as ``brute``)."""
        if not len(self):
            return []
        tables = self._build()
        m = len(tables)
        sub = radius // m
        if sub > 3:  # enumeration would explode; the scan is cheaper
            return self.brute(code, radius)
        q = int_to_words(code, self.bits)
        qch = self._chunks(q[None, :])[0]
        masks = _masks_within(sub)
        found: list[npt.NDArray[np.int64]] = []
        for j, (keys, rows) in enumerate(tables):
            probes = qch[j] ^ masks  # distinct by construction
            bounds = np.searchsorted(keys, np.concatenate([probes, probes + np.uint64(1)]), side="left")
            lo, hi = bounds[: len(probes)], bounds[len(probes):]
            n = hi - lo
            total = int(n.sum())
            if total:
                # gather all ranges [lo, hi) at once: position = lo[range] + offset within range
                starts = np.repeat(lo - np.cumsum(n) + n, n)
                found.append(rows[starts + np.arange(total)])
        if not found:
            return []
        cand = np.concatenate(found)  # may repeat a row; verify first, deduplicate the few survivors
        d = np.bitwise_count(self.codes[cand] ^ q[None, :]).sum(axis=1, dtype=np.int64)
        keep = d <= radius
        hits = {int(r): int(x) for r, x in zip(cand[keep], d[keep])}
        return sorted((Hit(r, x) for r, x in hits.items()), key=lambda h: (h.distance, h.row))


KIND_BITS = {"phash64": 64, "crop_phash64": 64, "dct256": 256, "simhash64": 64, "audio_phash64": 64, "frame_phash64": 64}


@dataclass(frozen=True)
class StoreHit:
    kind: str
    entry: int
    distance: int


class FingerprintStore:
    """SQLite-backed rows of (kind, code, ledger entry), searched through HammingIndex."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(str(self.path))
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS fingerprint ("
                " kind TEXT NOT NULL, code BLOB NOT NULL, entry INTEGER NOT NULL,"
                " UNIQUE(kind, code, entry))")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS watermark (wm_id INTEGER PRIMARY KEY, entry INTEGER NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS geometry (entry INTEGER NOT NULL, width INTEGER NOT NULL,"
                " height INTEGER NOT NULL, chip INTEGER NOT NULL, UNIQUE(entry, width, height))")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER)")
            self._db.commit()
        except sqlite3.Error as e:
            raise StorageError(f"cannot open fingerprint index {self.path}: {e}") from e
        self._indexes: dict[str, tuple[HammingIndex, list[int]]] = {}

    def close(self) -> None:
        self._db.close()

    def add(self, kind: str, code: int, entry: int) -> None:
        bits = KIND_BITS[kind]
        self._db.execute("INSERT OR IGNORE INTO fingerprint VALUES (?, ?, ?)",
                         (kind, code.to_bytes(bits // 8, "big"), entry))
        self._db.commit()
        self._indexes.pop(kind, None)

    def mark_synced(self, entry: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('synced', ?)", (entry,))
        self._db.commit()

    def add_watermark(self, wm_id: int, entry: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO watermark VALUES (?, ?)", (wm_id, entry))
        self._db.commit()

    def add_geometry(self, entry: int, width: int, height: int, chip: int) -> None:
        self._db.execute("INSERT OR IGNORE INTO geometry VALUES (?, ?, ?, ?)", (entry, width, height, chip))
        self._db.commit()

    def geometries(self, limit: int = 64) -> list[tuple[int, int, int]]:
        """The most common registered (width, height, chip) of watermarked images."""
        rows = self._db.execute(
            "SELECT width, height, chip FROM geometry GROUP BY width, height, chip"
            " ORDER BY COUNT(*) DESC LIMIT ?", (limit,)).fetchall()
        return [(int(a), int(b), int(c)) for a, b, c in rows]

    def watermark_entry(self, wm_id: int) -> int | None:
        row = self._db.execute("SELECT entry FROM watermark WHERE wm_id = ?", (wm_id,)).fetchone()
        return None if row is None else int(row[0])

    def max_entry(self) -> int:
        row = self._db.execute(
            "SELECT MAX(e) FROM (SELECT MAX(entry) e FROM fingerprint UNION ALL SELECT MAX(entry) FROM watermark"
            " UNION ALL SELECT value FROM meta WHERE key = 'synced')"
        ).fetchone()
        return -1 if row is None or row[0] is None else int(row[0])

    def _index(self, kind: str) -> tuple[HammingIndex, list[int]]:
        if kind not in self._indexes:
            bits = KIND_BITS[kind]
            rows = self._db.execute("SELECT code, entry FROM fingerprint WHERE kind = ? ORDER BY rowid",
                                    (kind,)).fetchall()
            idx = HammingIndex(bits)
            if rows:
                buf = b"".join(r[0] for r in rows)
                arr = np.frombuffer(buf, dtype=">u8").astype(np.uint64).reshape(len(rows), bits // 64)
                idx.add_many(arr)
            self._indexes[kind] = (idx, [int(r[1]) for r in rows])
        return self._indexes[kind]

    def search(self, kind: str, code: int, radius: int) -> list[StoreHit]:
        idx, entries = self._index(kind)
        best: dict[int, int] = {}
        for h in idx.search(code, radius):
            e = entries[h.row]
            best[e] = min(best.get(e, 10**9), h.distance)
        return [StoreHit(kind, e, d) for e, d in sorted(best.items(), key=lambda t: (t[1], t[0]))]
