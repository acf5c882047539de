"""Signed ledger entries.

An entry is a JSON object ``{"type", "v", "body", "signer", "time", "sig"}``.
The signature is Ed25519 by the ``signer`` did:key over the RFC 8785 canonical
bytes of the object *without* ``sig``; the leaf bytes logged (whose RFC 6962
leaf hash is in the tree) are the canonical bytes of the whole object.
Anyone holding a leaf can therefore re-check who signed it, offline.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.encoding.identity import public_key_from_did, verify_did_signature
from ailedger.errors import BadInputError

__all__ = [
    "ENTRY_SCHEMA_VERSION", "FAST_VERIFY", "MAX_ENTRY_BYTES", "SignedEntry", "build_entry", "fast_check_leaves",
    "fast_parse_entries", "fast_parse_leaves", "fast_parse_rows", "fast_verdicts", "parse_entry", "split_batch",
    "unsigned_bytes",
]

# tlog-tiles entry bundles prefix each entry with a 16-bit length
MAX_ENTRY_BYTES = 65535
ENTRY_SCHEMA_VERSION = 1
_TYPE_RE = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")
_TIME_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z")  # ASCII, fullmatch
_FIELDS = {"type", "v", "body", "signer", "time", "sig"}


@dataclass(frozen=True)
class SignedEntry:
    type: str
    v: int
    body: dict[str, Any]
    signer: str
    time: str
    sig: bytes
    leaf_bytes: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "v": self.v,
            "body": self.body,
            "signer": self.signer,
            "time": self.time,
            "sig": base64.b64encode(self.sig).decode(),
        }

    def verify(self) -> None:
        """Raise :class:`SignatureError` unless the signer's signature holds."""
        verify_did_signature(self.signer, unsigned_bytes(self.to_dict()), self.sig)


class _BodyOnDemand:
    """``SignedEntry.body`` when it is missing from an entry's ``__dict__``: an entry made by the C pass over a
    batch (:func:`fast_parse_leaves`) gets its body from its leaf bytes when something first reads it (most
    never do). A non-data descriptor: an entry that has its body (every other) reads it from its ``__dict__``
    as before, and no other attribute lookup of any entry costs more."""

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            raise AttributeError("body")
        d = obj.__dict__
        if "leaf_bytes" not in d:
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute 'body'")
        body = d["body"] = _loads(d["leaf_bytes"])["body"]
        return body


def unsigned_bytes(obj: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in obj.items() if k != "sig"})


def _validate_fields(obj: Any) -> None:
    if not isinstance(obj, dict):
        raise BadInputError("entry must be a JSON object")
    missing = _FIELDS - obj.keys()
    if missing:
        raise BadInputError(f"entry is missing field {min(missing)!r}", field=min(missing))
    extra = obj.keys() - _FIELDS
    if extra:
        raise BadInputError(f"entry has unknown field {min(extra)!r}", field=min(extra))
    t = obj["type"]
    if not isinstance(t, str) or len(t) > 64 or not _TYPE_RE.match(t):
        raise BadInputError("entry type must be a dotted lowercase name", field="type", found=str(t)[:80])
    v = obj["v"]
    if type(v) is not int or not 1 <= v <= 1000:
        raise BadInputError("entry schema version v must be a small positive integer", field="v")
    if not isinstance(obj["body"], dict):
        raise BadInputError("entry body must be a JSON object", field="body")
    if not isinstance(obj["time"], str) or not _TIME_RE.fullmatch(obj["time"]):
        raise BadInputError("entry time must be RFC 3339 UTC like 2026-01-02T03:04:05.678Z", field="time")
    public_key_from_did(obj["signer"])  # raises BadInputError on a bad did
    if not isinstance(obj["sig"], str):
        raise BadInputError("entry sig must be base64 text", field="sig")


def build_entry(
    type: str, body: dict[str, Any], signer_did: str, time: str, sign: Callable[[bytes], bytes], v: int = 1
) -> SignedEntry:
    """Make and sign an entry; ``time`` is passed in (core never reads the clock)."""
    obj: dict[str, Any] = {"type": type, "v": v, "body": body, "signer": signer_did, "time": time, "sig": ""}
    _validate_fields(obj)
    sig = sign(unsigned_bytes(obj))
    obj["sig"] = base64.b64encode(sig).decode()
    leaf = canonical_json(obj)
    if len(leaf) > MAX_ENTRY_BYTES:
        raise BadInputError(f"entry is {len(leaf)} bytes; the limit is {MAX_ENTRY_BYTES}", field="body")
    return SignedEntry(type, v, body, signer_did, time, sig, leaf)


try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover
    _loads = json.loads  # type: ignore[assignment]  # same use


def _fast_parse(data: bytes) -> tuple[dict[str, Any], bytes] | None:
    """Entries that arrive already canonical (our clients send them so) skip the strict parser:
    if the C parser's result re-encodes to exactly the input, the input had no duplicate keys."""
    try:
        obj = _loads(data)
    except (ValueError, UnicodeDecodeError):
        return None
    if type(obj) is not dict:
        return None
    try:
        leaf = canonical_json(obj)
    except BadInputError:
        return None
    return (obj, leaf) if leaf == data else None


def parse_entry(data: bytes | dict[str, Any], *, verify: bool = True, leaf: bytes | None = None) -> SignedEntry:
    """Parse (and by default verify) an entry. The leaf bytes are always the canonical form,
    so two spellings of the same entry deduplicate to one leaf. ``leaf``: the canonical bytes of
    the dict ``data``, when the caller already has them (``canonical.parse_canonical``)."""
    if isinstance(data, (bytes, bytearray)):
        leaf = None
        data = bytes(data)
        if len(data) > MAX_ENTRY_BYTES:
            raise BadInputError(f"entry is {len(data)} bytes; the limit is {MAX_ENTRY_BYTES}")
        fast = _fast_parse(data)
        if fast is not None:
            obj, leaf = fast
        else:
            obj = parse_json(data, what="entry")
    else:
        obj = data
    _validate_fields(obj)
    try:
        sig = base64.b64decode(obj["sig"], validate=True)
    except ValueError as exc:  # bad base64, or a plain ValueError for non-ASCII text
        raise BadInputError("entry sig is not base64", field="sig") from exc
    if len(sig) != 64:
        raise BadInputError("entry sig must be a 64-byte Ed25519 signature", field="sig")
    if leaf is None:
        leaf = canonical_json(obj)
    entry = SignedEntry(obj["type"], obj["v"], obj["body"], obj["signer"], obj["time"], sig, leaf)
    if len(leaf) > MAX_ENTRY_BYTES:
        raise BadInputError(f"entry is {len(leaf)} bytes; the limit is {MAX_ENTRY_BYTES}")
    if verify:
        # the unsigned bytes are the leaf without its top-level "sig" member; the keys after it
        # (signer, time, type, v) are validated and cannot contain that text, so the last match is it
        i = leaf.rfind(b',"sig":"')
        j = leaf.index(b'"', i + 8)
        verify_did_signature(entry.signer, leaf[:i] + leaf[j + 1 :], sig)
    return entry


def _load_fast_verify() -> Callable[[Sequence[bytes]], bytes] | None:
    """The C batch checker of ``_speedups`` bound to PyNaCl's bundled libsodium (the library
    :mod:`ailedger.encoding.ed25519` calls), or None when the C module is not built (or when the
    environment sets AILEDGER_PYTHON_VERIFY=1: benchmarks compare both paths with it)."""
    if os.environ.get("AILEDGER_PYTHON_VERIFY") == "1":
        return None
    try:
        import importlib

        from ailedger.encoding import _speedups

        bundled = importlib.import_module("nacl._sodium").__file__  # the CFFI module holding libsodium
        if not bundled:
            return None
        _speedups._sodium_load(bundled)
        return _speedups.verify_entries
    except (ImportError, OSError, AttributeError):
        return None


if not TYPE_CHECKING:  # (for mypy, body is the dataclass field it is)
    SignedEntry.body = _BodyOnDemand()  # after @dataclass: the field stays without default
_verify_entries = _load_fast_verify()
FAST_VERIFY = _verify_entries is not None  # False: every entry takes parse_entry
# the same checks with the leaf hashes and the index terms of the entries (_speedups.check_entries)
_check_entries: Callable[[Sequence[bytes]], tuple[bytes, list[bytes], list[tuple[str, ...] | None]]] | None = (
    getattr(sys.modules.get("ailedger.encoding._speedups"), "check_entries", None) if FAST_VERIFY else None)


_check_rows: Callable[..., Any] | None = (  # (leaves, cls[, partial])
    getattr(sys.modules.get("ailedger.encoding._speedups"), "check_rows", None) if FAST_VERIFY else None)
_split_entries: Callable[[bytes], list[bytes] | None] | None = (
    getattr(sys.modules.get("ailedger.encoding._speedups"), "split_entries", None) if FAST_VERIFY else None)


def split_batch(body: bytes) -> list[bytes] | None:
    """The bytes of each element of a batch body ``{"entries":[...]}`` written without whitespace, split in C
    without parsing them (None for any other body, or without the C module). Not a check: an element is only
    known to be an entry once :func:`fast_parse_leaves` took it."""
    if _split_entries is None or type(body) is not bytes:
        return None
    return _split_entries(body)


def fast_parse_leaves(leaves: Sequence[bytes]) -> tuple[
        bytes, list[bytes], list[tuple[str, ...] | None], list[SignedEntry | None]] | None:
    """:func:`fast_parse_rows` for entries given only as their bytes (a batch body split by :func:`split_batch`),
    without a Python dict per entry: ``(verdicts, hashes, terms, entries)`` when the C checker handles every
    leaf (each is its own canonical form, of exactly the shape parse_entry accepts: verdict 1, or 0 for a
    signature that does not verify), else None, and then before any signature was checked. Each entry of verdict
    1 is the SignedEntry parse_entry gives for its bytes (equal to it; its body is parsed when first read)."""
    if _check_rows is None:
        return None
    return _check_rows(leaves, SignedEntry)  # type: ignore[no-any-return]


def fast_check_leaves(leaves: Sequence[bytes], *, split: bool = False) -> tuple[
        bytes, list[bytes], list[tuple[str, ...] | None], list[SignedEntry | None]] | None:
    """:func:`fast_parse_leaves` for leaves that are independent requests (the single-entry bodies of the ingest
    front): each leaf the C checker does not take gets verdict 2 (and None as its entry; its signature is not
    checked) while the others are checked as usual, so one odd body never sends its neighbours to the general
    path. ``(verdicts, hashes, terms, entries)``; None only without the C module. ``split``: the signatures of
    the second half are checked on the C module's helper thread meanwhile, when no other call holds it (two
    cores for one call, without a second Python thread); the result is the same."""
    if _check_rows is None:
        return None
    return _check_rows(leaves, SignedEntry, True, split)  # type: ignore[no-any-return]


def fast_verdicts(leaves: Sequence[bytes]) -> bytes:
    """One byte per entry from the C checker: 1 = well-formed and the signature verifies (exactly when
    :func:`parse_entry` accepts these bytes as they are), anything else = ask parse_entry. All 2s without
    the C module."""
    if _verify_entries is None:
        return b"\x02" * len(leaves)
    return _verify_entries(leaves)


_new = object.__new__
_set = object.__setattr__


def fast_parse_entries(leaves: Sequence[bytes], objs: Sequence[dict[str, Any]] | None = None
                       ) -> list[SignedEntry | None]:
    """Check many entries' canonical bytes at once in C (structure, then Ed25519 with the GIL released, so
    threads use every core): a SignedEntry for each entry that is well-formed and verifies, None for each
    one the caller must give to :func:`parse_entry` (a bad signature, or anything the C code does not
    handle: it accepts only bytes that are their own canonical form with the exact shape parse_entry
    accepts, so its entries are the ones parse_entry returns; property-tested).  ``objs``: the parsed
    values of ``leaves`` when the caller has them (``canonical.parse_canonical``), saving a parse."""
    if _verify_entries is None:
        return [None] * len(leaves)
    return _entries(_verify_entries(leaves), leaves, objs)


def fast_parse_rows(leaves: Sequence[bytes], objs: Sequence[dict[str, Any]] | None = None
                    ) -> tuple[list[SignedEntry | None], list[bytes], list[tuple[str, ...] | None]] | None:
    """:func:`fast_parse_entries` and what the log's append needs of the same bytes, in one C pass (the GIL
    released): ``(entries, hashes, terms)``, the RFC 6962 leaf hash of every leaf and, for each entry taken,
    ``tlog.ledger.entry_terms`` of it when the C code makes them (its short path: the common entry that is
    not an identity type), else None (the caller asks entry_terms). None without the C module."""
    if _check_entries is None:
        return None
    verdicts, hashes, terms = _check_entries(leaves)
    return _entries(verdicts, leaves, objs), hashes, terms


def _entries(verdicts: bytes, leaves: Sequence[bytes], objs: Sequence[dict[str, Any]] | None
             ) -> list[SignedEntry | None]:
    out: list[SignedEntry | None] = []
    append = out.append
    a2b = binascii.a2b_base64
    for k, v in enumerate(verdicts):
        if v != 1:
            append(None)
            continue
        leaf = leaves[k]
        # the checker vouched for every field, and that the object has exactly the six of an entry: its
        # fields are a copy of the object with the signature decoded (no __init__: 7 frozen setattrs)
        fields = (objs[k] if objs is not None else _loads(leaf)).copy()
        fields["sig"] = a2b(fields["sig"])
        fields["leaf_bytes"] = leaf
        e = _new(SignedEntry)
        _set(e, "__dict__", fields)
        append(e)
    return out
