"""Entry references as people type them: ``#N`` (and, where a command says so, a bare ``N``).

One parser for every place that takes one, so that each gives the same answer to the same text:
``str.isdigit`` is true for ``²``, ``٣`` or ``１`` and ``int()`` of thousands of digits is refused by
Python itself, both as a bare ``ValueError``.  Here N is 1 to 19 ASCII digits (every index of a log is
below 2^63); anything else written as a reference is a :class:`BadInputError` naming the field.
Pure: no I/O.
"""

from __future__ import annotations

from ailedger.errors import BadInputError

__all__ = ["MAX_INDEX_DIGITS", "entry_ref"]

MAX_INDEX_DIGITS = 19
_ASCII_DIGITS = frozenset("0123456789")


def _index(digits: str, text: str, field: str) -> int:
    if not digits or len(digits) > MAX_INDEX_DIGITS or not set(digits) <= _ASCII_DIGITS:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise BadInputError(f"{field}: {shown!r} is not an entry reference (# then 1 to {MAX_INDEX_DIGITS} "
                            "ASCII digits, e.g. #12)", field=field)
    return int(digits)


def entry_ref(text: str, field: str, *, bare: bool = False) -> int | None:
    """The entry index ``text`` names, or None when it is not written as a reference (a name, a CID, a
    root: whatever else the caller accepts there).

    ``#N`` is a reference: N must be 1 to 19 ASCII digits, else BadInputError (no name starts with ``#``,
    so ``#²``, ``#`` or ``#12a`` is a malformed reference, never a name).  With ``bare`` a plain ``N`` of
    ASCII digits is one too (too many digits is then BadInputError); ``²`` or ``٣`` alone is not."""
    if not isinstance(text, str):
        raise BadInputError(f"{field} must be a string", field=field)
    if text.startswith("#"):
        return _index(text[1:], text, field)
    if bare and text and set(text) <= _ASCII_DIGITS:
        return _index(text, text, field)
    return None
