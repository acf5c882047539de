"""Fast reads of canonical leaf bytes, for folds that scan many entries (authority, governance).

A leaf is the RFC 8785 canonical JSON of a signed entry, so its fields can be read and its signature
checked without re-canonicalising it.  The strict parser (:func:`ailedger.encoding.records.parse_entry`)
remains the reference; these agree with it on every leaf it accepts."""

from __future__ import annotations

import base64
import json

from ailedger.encoding import ed25519
from ailedger.encoding.identity import public_key_from_did
from ailedger.errors import BadInputError

__all__ = ["LightEntry", "verify_leaf"]

try:
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - orjson is a dependency; json is the slow fallback
    _loads = json.loads  # type: ignore[assignment]


class LightEntry:
    """What the fold reads of an entry, parsed straight from canonical leaf bytes (no re-canonicalisation)."""

    __slots__ = ("body", "leaf_bytes", "signer", "time", "type")

    def __init__(self, leaf: bytes) -> None:
        o = _loads(leaf)
        self.type = o["type"]
        self.body = o["body"]
        self.signer = o["signer"]
        self.time = o["time"]
        self.leaf_bytes = leaf


def verify_leaf(leaf: bytes) -> bool:
    """Ed25519 check of one canonical leaf.  The signed bytes are the leaf without its top-level ``sig``
    member (RFC 8785 orders it after ``body``; the last ``,"sig":"`` is the top-level one)."""
    i = leaf.rfind(b',"sig":"')
    if i < 0:
        return False
    j = leaf.find(b'"', i + 8)
    sig = base64.b64decode(leaf[i + 8 : j])
    unsigned = leaf[:i] + leaf[j + 1 :]
    k = leaf.find(b'"signer":"', j)
    did = leaf[k + 10 : leaf.find(b'"', k + 10)].decode()
    try:
        pk = public_key_from_did(did)
    except BadInputError:
        return False
    return ed25519.verify(pk, unsigned, sig)
