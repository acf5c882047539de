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

import functools
import hashlib
import re
from datetime import datetime, timedelta, timezone
from typing import Any

from ailedger.errors import BadInputError

__all__ = ["HASH_VERSION", "Names", "digital_link", "event_hash", "prehash", "vocab_uri"]

HASH_VERSION = "CBV2.0"
_IGNORED = frozenset({"recordTime", "eventID", "type", "errorDeclaration", "@context", "comment", "rdfs:comment"})
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
    ("sensorElementList", "sensors"),
)
# sensor data (EPCIS 2.0 section 7.3.10; the property order of the hash rules, row 23): each sensorElement is
# its sensorMetadata then its sensorReports (sorted), each with its fields in this order and its extensions
# (``{namespace}local``) sorted after them; the sensorElements sorted
_SENSOR_META = ("time", "startTime", "endTime", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod",
                "bizRules")
_SENSOR_REPORT = ("type", "exception", "deviceID", "deviceMetadata", "rawData", "dataProcessingMethod", "time",
                  "microorganism", "chemicalSubstance", "value", "component", "stringValue", "booleanValue",
                  "hexBinaryValue", "uriValue", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue",
                  "uom", "coordinateReferenceSystem")
# bare words of the JSON form (the EPCIS 2.0 JSON-LD context's vocabularies): measurement and alert types are
# GS1 Web Vocabulary terms, components CBV 2.0 Comp- terms
_SENSOR_WORDS = {"type": "https://gs1.org/voc/", "exception": "https://gs1.org/voc/",
                 "component": "https://ref.gs1.org/cbv/Comp-"}
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
    """The GS1 check digit (General Specifications 7.9.1): weights 3, 1, 3... from the right."""
    total = 3 * sum(map(int, digits[-1::-2])) + sum(map(int, digits[-2::-2]))
    return str(-total % 10)


def _gtin(cp: str, ir: str) -> str:
    body = ir[:1] + cp + ir[1:]
    return body + _check_digit(body)


def _enc(text: str) -> str:
    """Percent-encode the characters GS1 Digital Link 1.2 (table 7-1) requires that an EPC URI may still
    hold literally (its own ``%xx`` escapes are kept)."""
    return text.translate(_PCT)


_PCT = str.maketrans({c: f"%{ord(c):02X}" for c in "!()*+,:"})
# EPC URI scheme -> (digits of company prefix + reference, the parts after the first two)
_KEY_DIGITS = {"sgtin": 13, "itip": 13, "upui": 13, "lgtin": 13, "sscc": 17, "sgln": 12, "grai": 12, "gsrn": 17,
               "gsrnp": 17, "gdti": 12, "sgcn": 12, "gsin": 16, "pgln": 12}


def _epc_uri(uri: str) -> str | None:
    """An EPC URI / EPC Class URI / EPC Pattern URI (GS1 Tag Data Standard 2.0) as its canonical GS1 Digital
    Link URI, or None when it is not one this knows."""
    bits = uri.split(":", 4)  # urn, epc, id|class|idpat, scheme, body
    if len(bits) != 5:
        return None
    kind, scheme, parts = bits[2], bits[3], bits[4].split(".")
    cp = parts[0]
    if not (6 <= len(cp) <= 12 and cp.isdigit()) or len(parts) < 2:
        return None
    n = _KEY_DIGITS.get(scheme)
    if n is not None and (len(cp) + len(parts[1]) != n or (parts[1] and not parts[1].isdigit())):
        return None
    ref = parts[1]
    if kind == "id":
        if scheme == "sgtin" and len(parts) == 3 and parts[2]:
            return f"{DL}01/{_gtin(cp, ref)}/21/{_enc(parts[2])}"
        if scheme == "sscc" and len(parts) == 2:
            return f"{DL}00/{_gtin(cp, ref)}"
        if scheme == "sgln" and len(parts) == 3 and parts[2]:
            gln = cp + ref
            return f"{DL}414/{gln}{_check_digit(gln)}" + ("" if parts[2] == "0" else f"/254/{_enc(parts[2])}")
        if scheme == "pgln" and len(parts) == 2:
            return f"{DL}417/{cp}{ref}{_check_digit(cp + ref)}"
        if scheme == "grai" and len(parts) == 3 and parts[2]:
            g = "0" + cp + ref
            return f"{DL}8003/{g}{_check_digit(g)}{_enc(parts[2])}"
        if scheme == "giai" and len(parts) == 2 and ref:
            return f"{DL}8004/{cp}{_enc(ref)}"
        if scheme in ("gsrn", "gsrnp") and len(parts) == 2:
            return f"{DL}{'8018' if scheme == 'gsrn' else '8017'}/{cp}{ref}{_check_digit(cp + ref)}"
        if scheme == "gdti" and len(parts) == 3 and parts[2]:
            return f"{DL}253/{cp}{ref}{_check_digit(cp + ref)}{_enc(parts[2])}"
        if scheme == "sgcn" and len(parts) == 3 and parts[2].isdigit():
            return f"{DL}255/{cp}{ref}{_check_digit(cp + ref)}{parts[2]}"
        if scheme == "gsin" and len(parts) == 2:
            return f"{DL}402/{cp}{ref}{_check_digit(cp + ref)}"
        if scheme == "ginc" and len(parts) == 2 and ref:
            return f"{DL}401/{cp}{_enc(ref)}"
        if scheme == "cpi" and len(parts) == 3 and parts[2].isdigit():
            return f"{DL}8010/{_enc(cp + ref)}/8011/{parts[2]}"
        if scheme == "itip" and len(parts) == 5 and parts[2].isdigit() and parts[3].isdigit() and parts[4]:
            return f"{DL}8006/{_gtin(cp, ref)}{parts[2]}{parts[3]}/21/{_enc(parts[4])}"
        if scheme == "upui" and len(parts) == 3 and parts[2]:
            return f"{DL}01/{_gtin(cp, ref)}/235/{_enc(parts[2])}"
    elif kind == "class" and scheme == "lgtin" and len(parts) == 3 and parts[2]:
        return f"{DL}01/{_gtin(cp, ref)}/10/{_enc(parts[2])}"
    elif kind == "idpat" and parts[-1] == "*":
        if scheme in ("sgtin", "upui") and len(parts) == 3:
            return f"{DL}01/{_gtin(cp, ref)}"
        if scheme == "grai" and len(parts) == 3:
            g = "0" + cp + ref
            return f"{DL}8003/{g}{_check_digit(g)}"
        if scheme in ("gdti", "sgcn") and len(parts) == 3:
            return f"{DL}{'253' if scheme == 'gdti' else '255'}/{cp}{ref}{_check_digit(cp + ref)}"
        if scheme == "cpi" and len(parts) == 3:
            return f"{DL}8010/{_enc(cp + ref)}"
        if scheme == "itip" and len(parts) == 5 and parts[2].isdigit() and parts[3].isdigit():
            return f"{DL}8006/{_gtin(cp, ref)}{parts[2]}{parts[3]}"
    return None


# GS1 Digital Link 1.2: the short names of keys and qualifiers, the primary keys the constrained canonical form
# keeps (with their finest qualifier), and each key's syntax
_DL_NAMES = {"gtin": "01", "itip": "8006", "cpid": "8010", "gln": "414", "party": "417", "gsrnp": "8017",
             "gsrn": "8018", "gcn": "255", "sscc": "00", "gdti": "253", "ginc": "401", "gsin": "402", "grai": "8003",
             "giai": "8004", "cpv": "22", "lot": "10", "ser": "21"}
_DL_QUALIFIERS = {"01": ("21", "235", "10"), "8006": ("21", "10"), "414": ("254",), "8010": ("8011",)}
_XC = r"[\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A%]"  # GS1 AI encodable character set 82, escaped
_DL_KEYS = {"00": re.compile(r"\d{18}"), "01": re.compile(r"\d{14}"), "253": re.compile(rf"\d{{13}}{_XC}{{0,17}}"),
            "255": re.compile(r"\d{13}\d{0,12}"), "401": re.compile(rf"{_XC}{{1,30}}"), "402": re.compile(r"\d{17}"),
            "414": re.compile(r"\d{13}"), "417": re.compile(r"\d{13}"), "8003": re.compile(rf"\d{{14}}{_XC}{{0,16}}"),
            "8004": re.compile(rf"{_XC}{{1,30}}"), "8006": re.compile(r"\d{18}"), "8010": re.compile(r"[#\-/0-9A-Z%]{1,30}"),
            "8017": re.compile(r"\d{18}"), "8018": re.compile(r"\d{18}")}
_DL_URI = re.compile(r"https?://[^/?#]+(/[^?#]*)(?:\?[^#]*)?(?:#.*)?")


def _gs1_dl(uri: str) -> str | None:
    """A GS1 Digital Link URI as its constrained canonical form (id.gs1.org, no query string, numeric AIs, the
    finest identification level only: a serial drops the lot, CPV is dropped), or None if it is not one."""
    m = _DL_URI.fullmatch(uri)
    if m is None:
        return None
    segs = [_DL_NAMES.get(s, s) for s in m.group(1).split("/") if s]
    for i, seg in enumerate(segs):
        if seg in _DL_KEYS and i + 1 < len(segs) and segs[i + 1][:4].isdigit() and len(segs[i + 1]) >= 4:
            break
    else:
        return None
    rest = segs[i:]
    if len(rest) % 2:
        return None
    key, value = rest[0], rest[1]
    quals = dict(zip(rest[2::2], rest[3::2]))
    if key == "01" and len(value) in (8, 12, 13):
        value = value.zfill(14)
    if not _DL_KEYS[key].fullmatch(value):
        return None
    out = f"{DL}{key}/{value}"
    for q in _DL_QUALIFIERS.get(key, ()):
        if q in quals:
            return f"{out}/{q}/{quals[q]}"
    return out


@functools.lru_cache(maxsize=1 << 16)  # the same locations, lots and vocabulary come back in every event
def digital_link(uri: str) -> str:
    """An EPC URI (``urn:epc:id:``, ``urn:epc:class:``, ``urn:epc:idpat:``) as its canonical GS1 Digital Link
    URI (GS1 Digital Link 1.2, section 4.11), a GS1 Digital Link URI as its constrained canonical form (the
    event hash rules: id.gs1.org, no query string, the finest identification level); any other string
    unchanged."""
    if uri.startswith("urn:epc:"):
        return _epc_uri(uri) or uri
    if uri.startswith(("https://", "http://")):
        return _gs1_dl(uri) or uri
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


_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?([Zz]|[+-]\d\d:\d\d)")


def _time(value: str) -> str:
    """A date-time in UTC with milliseconds, the third decimal rounded up when the fourth is 5-9 (the rule as
    written; a value that is not a date-time with a zone stays as it is, as in the reference)."""
    m = _TIME.fullmatch(value.strip())
    if m is None:
        return value
    try:
        t = datetime.fromisoformat(m.group(1) + ("+00:00" if m.group(3) in "Zz" else m.group(3)))
    except ValueError:
        return value
    frac = (m.group(2) or "") + "0000"
    ms = int(frac[:3]) + (frac[3] >= "5")
    t = t.astimezone(timezone.utc) + timedelta(milliseconds=ms)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def _value(field: str, value: Any, names: Names | None = None) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value).strip()
    if "time" in field.lower() and "offset" not in field.lower() and isinstance(value, str):
        return _time(text)
    if names is not None and ":" in text:
        text = names.value(text)
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

    def value(self, text: str) -> str:
        """A value written as a compact URI (``gs1:Temperature``) expanded; any other value unchanged."""
        prefix, _, local = text.partition(":")
        ns = self.prefixes.get(prefix)
        return ns + local if ns is not None and not local.startswith("//") else text

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
    return [f"{name}={_value(key, value, names)}"]


def _fields(tag: str, obj: Any, order: tuple[str, ...], names: Names, words: dict[str, str] | None = None) -> str:
    """``tag`` then the object's fields in ``order`` (``key=value``), then its other fields (extensions) sorted."""
    if not isinstance(obj, dict):
        raise BadInputError(f"{tag} must be a JSON object", field="sensorElementList")
    out = [tag]
    for k in order:
        v = obj.get(k)
        if v is None or (isinstance(v, str) and not v.strip()):
            continue
        if words is not None and k in words and isinstance(v, str) and ":" not in v:
            v = words[k] + v.strip()
        out.append(f"{k}={_value(k, v, names)}")
    ext = sorted(p for k, v in obj.items() if k not in order for p in _generic(k, v, names))
    return "".join(out) + "".join(ext)


def _sensors(elements: Any, names: Names) -> str:
    """``sensorElementList`` and its sorted sensorElements (empty when there is none)."""
    if not isinstance(elements, list):
        raise BadInputError("sensorElementList must be a list", field="sensorElementList")
    out = []
    for el in elements:
        if not isinstance(el, dict):
            raise BadInputError("each sensorElement is a JSON object", field="sensorElementList")
        reports = el.get("sensorReport") or []
        if not isinstance(reports, list):
            raise BadInputError("sensorReport must be a list", field="sensorElementList")
        meta = el.get("sensorMetadata")
        out.append("sensorElement" + (_fields("sensorMetadata", meta, _SENSOR_META, names) if meta else "")
                   + "".join(sorted(_fields("sensorReport", r, _SENSOR_REPORT, names, _SENSOR_WORDS) for r in reports))
                   + "".join(sorted(p for k, x in el.items() if k not in ("sensorMetadata", "sensorReport")
                                    for p in _generic(k, x, names))))
    return "sensorElementList" + "".join(sorted(out)) if out else ""


def _typed_list(key: str, items: Any, item_key: str, type_field: str, names: Names) -> str:
    if not isinstance(items, list):
        raise BadInputError(f"{key} must be a list", field=key)
    out = []
    for it in items:
        if not isinstance(it, dict) or item_key not in it:
            raise BadInputError(f"each element of {key} needs {item_key!r}", field=key)
        t = f"type={vocab_uri(type_field, str(it['type']).strip())}" if "type" in it else ""
        out.append(t + f"{item_key}={_value(item_key, it[item_key], names)}")
    return key + "".join(sorted(out))


def prehash(event: dict[str, Any], context: Any = None) -> str:
    """The pre-hash string of one EPCIS 2.0 JSON/JSON-LD event (``context``: the document's ``@context``,
    which names the namespaces of extension prefixes)."""
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise BadInputError("an EPCIS event is a JSON object with a 'type'", field="type")
    names = Names(event.get("@context", context) if context is None else context)
    out = ["eventType=" + event["type"]]
    done = set(_IGNORED)
    for key, how in _ORDER:
        if key not in event:
            continue
        done.add(key)
        v = event[key]
        if how == "value":
            out.append(f"{key}={_value(key, v, names)}")
        elif how == "epcs":
            if not isinstance(v, list):
                raise BadInputError(f"{key} must be a list", field=key)
            if v:
                out.append(key + "".join(sorted(f"epc={_value('epc', e, names)}" for e in v)))
        elif how == "qty":
            if not isinstance(v, list):
                raise BadInputError(f"{key} must be a list", field=key)
            els = ["quantityElement" + "".join(f"{k}={_value(k, q[k], names)}" for k in _Q if k in q)
                   for q in v if isinstance(q, dict)]
            if els:
                out.append(key + "".join(sorted(els)))
        elif how == "persistent":
            if isinstance(v, dict):
                pieces = [f"{k}={_value(k, x, names)}" for k in ("set", "unset") for x in sorted(v.get(k) or [])]
                if pieces:
                    out.append(key + "".join(pieces))
        elif how == "location" and isinstance(v, dict):
            ext = sorted(p for k, x in v.items() if k != "id" for p in _generic(k, x, names))
            out.append(key + (f"id={_value('id', v['id'], names)}" if "id" in v else "") + "".join(ext))
        elif how == "sensors":
            text = _sensors(v, names)
            if text:
                out.append(text)
    rest: list[str] = []
    for key, v in event.items():
        if key in done:
            continue
        if key == "bizTransactionList":
            rest.append(_typed_list(key, v, "bizTransaction", "bizTransactionType", names))
        elif key == "sourceList":
            rest.append(_typed_list(key, v, "source", "sourceDestType", names))
        elif key == "destinationList":
            rest.append(_typed_list(key, v, "destination", "sourceDestType", names))
        else:
            rest.extend(_generic(key, v, names))
    return "".join(out) + "".join(sorted(rest))


def event_hash(event: dict[str, Any], context: Any = None) -> str:
    """The event's hash ID, ``ni:///sha-256;<hex>?ver=CBV2.0``."""
    digest = hashlib.sha256(prehash(event, context).encode("utf-8")).hexdigest()
    return f"ni:///sha-256;{digest}?ver={HASH_VERSION}"
