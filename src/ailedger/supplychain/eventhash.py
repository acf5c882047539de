"""The EPCIS event hash ID (CBV 2.0, section 8.9; GS1's reference description at
https://github.com/RalphTro/epcis-event-hash-generator): one ``ni:///sha-256;...?ver=CBV2.0`` name per event,
the same for every serialisation of the event.

Written here from the published rules; checked against the reference implementation's published example
events and hashes (tests/supplychain/vectors, copied with their source noted).  The pre-hash string is:

* ``eventType=``, then the fields of the canonical property order, each ``key=value``, no separators; list
  values (``epcList``...) named once and their elements sorted; quantity elements as
  ``quantityElementepcClass=..quantity=..uom=..``, sorted;
* then every remaining field (``bizTransactionList``, ``sourceList``, ``destinationList``, ``ilmd`` and user
  extensions as ``{namespace}local``) rendered the same way, the pieces sorted, as the reference does;
* values canonicalised: EPC URNs to canonical GS1 Digital Link URIs, bare CBV words to their
  ``https://ref.gs1.org/cbv/...`` web URIs, times to UTC with milliseconds, numbers without trailing zeros.

``sensorElementList`` is not supported (the event is refused with a message saying so, not hashed wrongly).
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ailedger.errors import BadInputError

__all__ = ["HASH_VERSION", "Names", "digital_link", "event_hash", "prehash", "vocab_uri"]

HASH_VERSION = "CBV2.0"
_IGNORED = frozenset({"recordTime", "eventID", "type", "errorDeclaration", "@context"})
_Q = ("epcClass", "quantity", "uom")
# the canonical property order of the reference implementation (its PROP_ORDER), without the fields it leaves
# to the sorted remainder (bizTransactionList, sourceList, destinationList, ilmd)
_EPC_LISTS = ("epcList", "inputEPCList", "childEPCs")
_QTY_LISTS = ("quantityList", "childQuantityList", "inputQuantityList")
_ORDER: tuple[tuple[str, str], ...] = (
    ("eventTime", "value"), ("eventTimeZoneOffset", "value"), ("certificationInfo", "value"),
    ("parentID", "value"), *((k, "epcs") for k in _EPC_LISTS), *((k, "qty") for k in _QTY_LISTS),
    ("outputEPCList", "epcs"), ("outputQuantityList", "qty"), ("action", "value"),
    ("transformationID", "value"), ("bizStep", "value"), ("disposition", "value"),
    ("persistentDisposition", "persistent"), ("readPoint", "location"), ("bizLocation", "location"),
)
_VOCAB_PREFIX = {"bizStep": "BizStep-", "disposition": "Disp-", "set": "Disp-", "unset": "Disp-",
                 "bizTransactionType": "BTT-", "sourceDestType": "SDT-", "reason": "ER-"}
_URN_VOCAB = (("urn:epcglobal:cbv:bizstep:", "BizStep-"), ("urn:epcglobal:cbv:disp:", "Disp-"),
              ("urn:epcglobal:cbv:btt:", "BTT-"), ("urn:epcglobal:cbv:sdt:", "SDT-"),
              ("urn:epcglobal:cbv:er:", "ER-"))
_STD_PREFIXES = {"gs1": "https://gs1.org/voc/", "cbv": "https://ref.gs1.org/cbv/", "epcis": "https://ref.gs1.org/epcis/",
                 "cbvmda": "urn:epcglobal:cbv:mda:"}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
DL = "https://id.gs1.org/"


def _check_digit(digits: str) -> str:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return str((10 - total % 10) % 10)


def _gtin(cp: str, ir: str) -> str:
    body = ir[:1] + cp + ir[1:]
    return body + _check_digit(body)


def digital_link(uri: str) -> str:
    """An EPC URI (``urn:epc:id:``, ``urn:epc:class:``, ``urn:epc:idpat:``) as its canonical GS1 Digital Link
    URI (GS1 Digital Link 1.2, section 4.11); any other string unchanged."""
    if not uri.startswith("urn:epc:"):
        return uri
    parts = uri.split(":")
    if len(parts) != 5:
        return uri
    kind, scheme, rest = parts[2], parts[3], parts[4].split(".")
    try:
        if kind == "id" and scheme == "sgtin" and len(rest) == 3:
            return f"{DL}01/{_gtin(rest[0], rest[1])}/21/{rest[2]}"
        if kind == "id" and scheme == "sscc" and len(rest) == 2:
            return f"{DL}00/{_gtin(rest[0], rest[1])}"
        if kind == "id" and scheme == "sgln" and len(rest) == 3:
            gln = rest[0] + rest[1]
            ext = "" if rest[2] == "0" else f"/254/{rest[2]}"
            return f"{DL}414/{gln}{_check_digit(gln)}{ext}"
        if kind == "id" and scheme == "pgln" and len(rest) == 2:
            gln = rest[0] + rest[1]
            return f"{DL}417/{gln}{_check_digit(gln)}"
        if kind == "id" and scheme == "grai" and len(rest) == 3:
            g = "0" + rest[0] + rest[1]
            return f"{DL}8003/{g}{_check_digit(g)}{rest[2]}"
        if kind == "id" and scheme == "giai" and len(rest) == 2:
            return f"{DL}8004/{rest[0]}{rest[1]}"
        if kind == "id" and scheme in ("gsrn", "gsrnp") and len(rest) == 2:
            g = rest[0] + rest[1]
            return f"{DL}{'8018' if scheme == 'gsrn' else '8017'}/{g}{_check_digit(g)}"
        if kind == "id" and scheme == "gdti" and len(rest) == 3:
            g = rest[0] + rest[1]
            return f"{DL}253/{g}{_check_digit(g)}{rest[2]}"
        if kind == "class" and scheme == "lgtin" and len(rest) == 3:
            return f"{DL}01/{_gtin(rest[0], rest[1])}/10/{rest[2]}"
        if kind == "idpat" and scheme == "sgtin" and len(rest) == 3 and rest[2] == "*":
            return f"{DL}01/{_gtin(rest[0], rest[1])}"
    except ValueError:
        return uri
    return uri


def vocab_uri(field: str, value: str) -> str:
    """A CBV value as its web URI: a bare word (JSON form) of a standard vocabulary field, or an old
    ``urn:epcglobal:cbv:...`` URN; other values unchanged."""
    for urn, web in _URN_VOCAB:
        if value.startswith(urn):
            return "https://ref.gs1.org/cbv/" + web + value[len(urn):]
    if field in _VOCAB_PREFIX and ":" not in value:
        return "https://ref.gs1.org/cbv/" + _VOCAB_PREFIX[field] + value
    return value


def _time(value: str) -> str:
    try:  # a value that is not a date-time stays as it is (as in the reference); the schema checks eventTime
        t = datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return value
    if t.tzinfo is None:
        return value
    t = t.astimezone(timezone.utc)
    us = round(t.microsecond, -3)
    t = t.replace(microsecond=0) + timedelta(microseconds=us)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _value(field: str, value: Any) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value).strip()
    if "time" in field.lower() and "offset" not in field.lower() and isinstance(value, str):
        return _time(text)
    text = vocab_uri(field, text)
    if _NUMBER.fullmatch(text):
        f = float(text)
        text = str(int(f)) if f == int(f) else repr(f)
    return digital_link(text)


class Names:
    """The namespaces of a document's ``@context`` prefixes: ``key("ex:f")`` is ``{https://ex/}f``."""

    def __init__(self, context: Any) -> None:
        self.prefixes = dict(_STD_PREFIXES)
        for c in context if isinstance(context, list) else [context]:
            if isinstance(c, dict):
                self.prefixes.update({k: v for k, v in c.items() if isinstance(v, str)})

    def key(self, key: str) -> str:
        if ":" in key and not key.startswith(("http:", "https:", "urn:")):
            prefix, local = key.split(":", 1)
            if prefix in self.prefixes:
                return "{" + self.prefixes[prefix] + "}" + local
        return key


def _generic(key: str, value: Any, names: Names) -> list[str]:
    """A remaining field (extension, ilmd, lists of typed values) as its pre-hash pieces, one per value."""
    name = names.key(key)
    if isinstance(value, list):
        return [p for v in value for p in _generic(key, v, names)]
    if isinstance(value, dict):
        if key in ("bizTransactionList", "sourceList", "destinationList"):
            raise BadInputError(f"{key} must be a list", field=key)
        kids = sorted(p for k, v in value.items() for p in _generic(k, v, names))
        return [name + "".join(kids)]
    if value is None:
        return [name]
    return [f"{name}={_value(key, value)}"]


def _typed_list(key: str, items: Any, item_key: str, type_field: str) -> str:
    if not isinstance(items, list):
        raise BadInputError(f"{key} must be a list", field=key)
    out = []
    for it in items:
        if not isinstance(it, dict) or item_key not in it:
            raise BadInputError(f"each element of {key} needs {item_key!r}", field=key)
        t = f"type={vocab_uri(type_field, str(it['type']).strip())}" if "type" in it else ""
        out.append(t + f"{item_key}={_value(item_key, it[item_key])}")
    return key + "".join(sorted(out))


def prehash(event: dict[str, Any], context: Any = None) -> str:
    """The pre-hash string of one EPCIS 2.0 JSON/JSON-LD event (``context``: the document's ``@context``,
    which names the namespaces of extension prefixes)."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise BadInputError("an EPCIS event is a JSON object with a 'type'", field="type")
    if "sensorElementList" in event:
        raise BadInputError("sensorElementList is not supported by this event hash implementation",
                            field="sensorElementList")
    names = Names(event.get("@context", context) if context is None else context)
    out = ["eventType=" + event["type"]]
    done = set(_IGNORED)
    for key, how in _ORDER:
        if key not in event:
            continue
        done.add(key)
        v = event[key]
        if how == "value":
            out.append(f"{key}={_value(key, v)}")
        elif how == "epcs":
            if not isinstance(v, list):
                raise BadInputError(f"{key} must be a list", field=key)
            if v:
                out.append(key + "".join(sorted(f"epc={_value('epc', e)}" for e in v)))
        elif how == "qty":
            if not isinstance(v, list):
                raise BadInputError(f"{key} must be a list", field=key)
            els = ["quantityElement" + "".join(f"{k}={_value(k, q[k])}" for k in _Q if k in q)
                   for q in v if isinstance(q, dict)]
            if els:
                out.append(key + "".join(sorted(els)))
        elif how == "persistent":
            if isinstance(v, dict):
                pieces = [f"{k}={_value(k, x)}" for k in ("set", "unset") for x in sorted(v.get(k) or [])]
                if pieces:
                    out.append(key + "".join(pieces))
        elif how == "location" and isinstance(v, dict):
            ext = sorted(p for k, x in v.items() if k != "id" for p in _generic(k, x, names))
            out.append(key + (f"id={_value('id', v['id'])}" if "id" in v else "") + "".join(ext))
    rest: list[str] = []
    for key, v in event.items():
        if key in done:
            continue
        if key == "bizTransactionList":
            rest.append(_typed_list(key, v, "bizTransaction", "bizTransactionType"))
        elif key == "sourceList":
            rest.append(_typed_list(key, v, "source", "sourceDestType"))
        elif key == "destinationList":
            rest.append(_typed_list(key, v, "destination", "sourceDestType"))
        else:
            rest.extend(_generic(key, v, names))
    return "".join(out) + "".join(sorted(rest))


def event_hash(event: dict[str, Any], context: Any = None) -> str:
    """The event's hash ID, ``ni:///sha-256;<hex>?ver=CBV2.0``."""
    digest = hashlib.sha256(prehash(event, context).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={HASH_VERSION}"
