"""SHA-256 of many short byte strings at once (dataset record keys).

Uses the optional C module ``ailedger.encoding._speedups`` (x86 SHA extensions when the CPU has them) and
falls back to hashlib; both give the same bytes (tested)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

__all__ = ["IMPLEMENTATION", "extend_levels", "extend_range", "leaf_hashes", "sha256_many"]


def _sha256_many_hashlib(items: Sequence[bytes]) -> bytes:
    sha = hashlib.sha256
    return b"".join([sha(x).digest() for x in items])


def _leaf_hashes_hashlib(datas: Sequence[bytes]) -> list[bytes]:
    sha = hashlib.sha256
    return [sha(b"\x00" + d).digest() for d in datas]


# extend_range(size, border, hashes) -> (border, [(level << 56 | index, hash), ...]): the log's compact range
# extended by a batch of leaf hashes, with the interior nodes it completes (merkle.CompactRange.extend_keyed);
# None without the C module (the caller then runs CompactRange.append)
extend_range: Callable[[int, list[bytes], Sequence[bytes]], tuple[list[bytes], list[tuple[int, bytes]]]] | None

try:
    from ailedger.encoding import _speedups

    sha256_many = _speedups.sha256_many
    IMPLEMENTATION = "c/" + _speedups.implementation()
except ImportError:  # not built (no C compiler at install time)
    sha256_many = _sha256_many_hashlib
    IMPLEMENTATION = "hashlib"
    _speedups = None  # type: ignore[assignment]
# RFC 6962 leaf hashes of many entries (one C call; a module built before these existed lacks them)
leaf_hashes: Callable[[Sequence[bytes]], list[bytes]] = getattr(_speedups, "leaf_hashes", _leaf_hashes_hashlib)
extend_range = getattr(_speedups, "extend_range", None)
# extend_levels(size, border, hashes) -> (border, [(level, first index, hashes concatenated), ...]): the same, with
# the completed interior nodes per level (merkle.CompactRange.extend_levels); None without the C module
extend_levels: Callable[[int, list[bytes], Sequence[bytes]], tuple[list[bytes], list[tuple[int, int, bytes]]]] | None
extend_levels = getattr(_speedups, "extend_levels", None)
