"""SHA-256 of many short byte strings at once (dataset record keys).

Uses the optional C module ``ailedger.encoding._speedups`` (x86 SHA extensions when the CPU has them) and
falls back to hashlib; both give the same bytes (tested)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["IMPLEMENTATION", "sha256_many"]


def _sha256_many_hashlib(items: Sequence[bytes]) -> bytes:
    sha = hashlib.sha256
    return b"".join([sha(x).digest() for x in items])


try:
    from ailedger.encoding import _speedups

    sha256_many = _speedups.sha256_many
    IMPLEMENTATION = "c/" + _speedups.implementation()
except ImportError:  # not built (no C compiler at install time)
    sha256_many = _sha256_many_hashlib
    IMPLEMENTATION = "hashlib"
