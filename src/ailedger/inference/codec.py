"""Inference record and payload encodings (RFC 8785 canonical bytes, built fast).

Payloads are committed as ``SHA-256(salt || JCS(payload))``.  The C encoder of :mod:`json`
gives RFC 8785 bytes except for some floats (``1.0``, ``1e-07``, ``-0.0``) and keys with
code points at or above U+E000 (UTF-16 sort order); those few take the exact slow path of
:func:`ailedger.encoding.canonical.canonical_json`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from json.encoder import encode_basestring
from typing import Any

from ailedger.encoding.canonical import canonical_json, parse_json
from ailedger.errors import BadInputError

__all__ = [
    "BATCH_TYPE",
    "ERASURE_TYPE",
    "RECORD_TYPE_VERSION",
    "canonical_payload",
    "check_plain_name",
    "commit",
    "parse_record",
    "record_bytes",
    "to_jsonable",
]

RECORD_TYPE_VERSION = 1
BATCH_TYPE = "inference.batch"
ERASURE_TYPE = "inference.erasure"

# a float rendered by repr() that RFC 8785 renders differently, or a character that sorts differently
_DOT0 = re.compile(r"\.0(?![0-9])")        # 1.0, -0.0: JCS writes 1, 0
_EXP = re.compile(r"[0-9]e[-+]")            # repr() exponents (1e-05, 1e+16) JCS writes differently
_HIGH = re.compile("[\ue000-\U0010ffff]")  # keys here sort differently in UTF-16


def to_jsonable(obj: Any) -> Any:
    """``default`` hook: numpy arrays/scalars, bytes, sets and objects with ``tolist``/``to_dict``."""
    tolist = getattr(obj, "tolist", None)
    if tolist is not None:
        return tolist()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"$base64": base64.b64encode(bytes(obj)).decode()}
    to_dict = getattr(obj, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    return {"$repr": repr(obj)[:10000]}


_enc = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False,
                        default=to_jsonable)
try:  # the C encoder, made once (JSONEncoder.encode builds a new one per call)
    from json.encoder import c_make_encoder  # type: ignore[attr-defined]

    _c_encode = c_make_encoder(None, to_jsonable, encode_basestring, None, ":", ",", True, False, False)
except ImportError:  # pragma: no cover - CPython always has it
    _c_encode = None


def _plain(obj: Any) -> Any:
    """Fully convert ``obj`` to plain JSON types (for the exact slow path)."""
    return json.loads(_enc.encode(obj))


def canonical_payload(obj: Any) -> bytes:
    """RFC 8785 bytes of a payload (after the ``to_jsonable`` conversion)."""
    try:
        if type(obj) is str:
            s = encode_basestring(obj)
        elif _c_encode is not None:
            s = "".join(_c_encode(obj, 0))
        else:
            s = _enc.encode(obj)
    except (ValueError, RecursionError) as exc:  # NaN / Infinity / circular
        raise BadInputError(f"payload cannot be encoded as JSON: {exc}", field="payload") from exc
    # cheap substring tests first; the regular expressions only confirm a suspicion
    if (".0" in s and _DOT0.search(s)) or (("e-" in s or "e+" in s) and _EXP.search(s)) or (
            not s.isascii() and _HIGH.search(s)):
        return canonical_json(_plain(obj))
    return s.encode()


def commit(salt: bytes, payload: bytes) -> str:
    """The commitment to one payload: hex SHA-256(salt || canonical payload)."""
    return hashlib.sha256(salt + payload).hexdigest()


def check_plain_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 200 or any(c.isspace() or ord(c) < 32 for c in value):
        raise BadInputError(f"{what} must be a non-empty word without spaces (at most 200 characters)", field=what)
    return value


def record_bytes(rid: str, model: str, model_index: int, caller: str, time_s: str, c_in: str | None,
                 c_out: str | None, status: str, meta_json: bytes | None) -> bytes:
    """Canonical bytes of an inference record (keys in RFC 8785 order, built by formatting)."""
    parts = ['{"caller":', encode_basestring(caller), ',"id":"', rid, '","in":',
             "null" if c_in is None else '"' + c_in + '"']
    if meta_json is not None:
        parts.append(',"meta":')
        parts.append(meta_json.decode())
    parts += [',"model":', encode_basestring(model), ',"model_index":', str(model_index), ',"out":',
              "null" if c_out is None else '"' + c_out + '"', ',"status":"', status, '","time":"', time_s,
              '","v":1}']
    return "".join(parts).encode()


def parse_record(data: bytes) -> dict[str, Any]:
    obj = parse_json(data, what="inference record")
    if not isinstance(obj, dict) or obj.get("v") != RECORD_TYPE_VERSION or "id" not in obj:
        raise BadInputError("not an inference record (v1)")
    if canonical_json(obj) != data:
        raise BadInputError("inference record bytes are not in canonical (RFC 8785) form")
    return obj
