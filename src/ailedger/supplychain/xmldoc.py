"""Reading EPCIS 2.0 documents (``load_document``): JSON / JSON-LD as they are, and XML documents (GS1's EPCIS
2.0 XML binding, schema ``urn:epcglobal:epcis:xsd:2``) read into the JSON
form, so that they are validated, hashed and captured exactly as their JSON-LD twins: the event hash of an
event is the same in both (tested with the reference implementation's XML examples and their published hashes).

Read with the standard library's ElementTree (expat); a document type declaration is refused (no entities).
The XML model differs from the JSON one in a few regular ways, undone here: list elements hold ``epc`` /
``quantityElement`` / typed children; business transaction, source and destination types and every sensor
field are XML attributes; standard vocabulary is written as URIs (``urn:epcglobal:cbv:bizstep:shipping``,
``https://ref.gs1.org/cbv/Disp-in_transit``, ``gs1:Temperature``) where the JSON form writes the bare word;
user extensions are namespaced elements, written in JSON as ``prefix:name`` keys with the prefix in the
``@context``."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ailedger.errors import BadInputError

from .events import EVENT_TYPES, vocabulary_words

__all__ = ["EPCIS_CONTEXT", "load_document", "xml_document"]

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
_EPC_LISTS = frozenset({"epcList", "inputEPCList", "outputEPCList", "childEPCs"})
_QTY_LISTS = frozenset({"quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"})
_TYPED = {"bizTransactionList": "bizTransaction", "sourceList": "source", "destinationList": "destination"}
_NUMERIC = frozenset({"quantity", "value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"})
_CBV = "https://ref.gs1.org/cbv/"
_VOC = "https://gs1.org/voc/"
# field -> (schema definition listing its bare words, the URI prefixes a bare word stands for)
_BARE: dict[str, tuple[str, tuple[str, ...]]] = {
    "bizStep": ("bizStep", (_CBV + "BizStep-", "urn:epcglobal:cbv:bizstep:")),
    "disposition": ("disposition", (_CBV + "Disp-", "urn:epcglobal:cbv:disp:")),
    "bizTransactionList": ("bizTransaction-type", (_CBV + "BTT-", "urn:epcglobal:cbv:btt:")),
    "sourceList": ("source-dest-type", (_CBV + "SDT-", "urn:epcglobal:cbv:sdt:")),
    "destinationList": ("source-dest-type", (_CBV + "SDT-", "urn:epcglobal:cbv:sdt:")),
    "reason": ("error-reason", (_CBV + "ER-", "urn:epcglobal:cbv:er:")),
    "type": ("measurementType", (_VOC,)),
    "exception": ("sensorAlertType", (_VOC,)),
    "component": ("component", (_CBV + "Comp-",)),
}
_STD_NS = {"urn:epcglobal:epcis:xsd:2", "urn:epcglobal:epcis-query:xsd:2", "urn:epcglobal:epcis:xsd:1",
           "urn:epcglobal:epcis-query:xsd:1", "http://www.w3.org/2001/XMLSchema-instance",
           "http://www.w3.org/XML/1998/namespace"}


def _local(tag: str) -> tuple[str | None, str]:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return ns, local
    return None, tag


def _number(text: str, field: str) -> Any:
    try:
        f = float(text)
    except ValueError:
        raise BadInputError(f"{field} is not a number: {text!r}", field=field) from None
    return int(f) if f.is_integer() and "e" not in text.lower() and abs(f) < 2**53 else f


class _Reader:
    def __init__(self, prefixes: dict[str, str]) -> None:
        self.prefix_of: dict[str, str] = {}
        for p, ns in prefixes.items():  # a usable prefix per namespace (not one a URI scheme would shadow)
            if ns not in _STD_NS and p and p.lower() not in ("http", "https", "urn") and ns not in self.prefix_of:
                self.prefix_of[ns] = p
        self.uris = {p: ns for p, ns in prefixes.items() if p}
        self.used: dict[str, str] = {}

    def key(self, tag: str) -> str:
        ns, local = _local(tag)
        if ns is None:
            return local
        p = self.prefix_of.get(ns)
        if p is None:
            p = self.prefix_of[ns] = f"ns{len(self.prefix_of) + 1}"
        self.used[p] = ns
        return f"{p}:{local}"

    def bare(self, field: str, value: str) -> str:
        """A standard vocabulary URI (or compact URI) as the bare word the JSON form writes."""
        value = value.strip()
        how = _BARE.get(field)
        if how is None:
            return value
        full = value
        head, sep, rest = value.partition(":")
        if sep and head in self.uris and not rest.startswith("//"):
            full = self.uris[head] + rest
        words = vocabulary_words(how[0])
        for pre in how[1]:
            if full.startswith(pre) and full[len(pre):] in words:
                return full[len(pre):]
        return value

    def extension(self, el: ET.Element) -> Any:
        kids = list(el)
        if not kids:
            return (el.text or "").strip()
        out: dict[str, Any] = {}
        for k in kids:
            if not isinstance(k.tag, str):
                continue
            name, val = self.key(k.tag), self.extension(k)
            if name in out:
                out[name] = out[name] if isinstance(out[name], list) else [out[name]]
                out[name].append(val)
            else:
                out[name] = val
        return out

    def attrs(self, el: ET.Element, bare: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, v in el.attrib.items():
            key = self.key(name)
            if key in _NUMERIC:
                out[key] = _number(v, key)
            elif key == "booleanValue":
                out[key] = v.strip() in ("true", "1")
            else:
                out[key] = self.bare(key, v) if bare else v.strip()
        for k in el:  # extension elements inside (sensor elements may carry them)
            if isinstance(k.tag, str):
                out[self.key(k.tag)] = self.extension(k)
        return out

    def event(self, el: ET.Element) -> dict[str, Any]:
        _, kind = _local(el.tag)
        ev: dict[str, Any] = {"type": kind}
        for c in el:
            if not isinstance(c.tag, str):
                continue
            ns, name = _local(c.tag)
            text = (c.text or "").strip()
            if ns is not None and ns not in _STD_NS:
                ev[self.key(c.tag)] = self.extension(c)
            elif name in _EPC_LISTS:
                ev[name] = [(e.text or "").strip() for e in c if isinstance(e.tag, str)]
            elif name in _QTY_LISTS:
                ev[name] = [self.quantity(q) for q in c if isinstance(q.tag, str)]
            elif name in _TYPED:
                ev[name] = []
                for t in c:
                    if isinstance(t.tag, str):
                        item: dict[str, Any] = {_TYPED[name]: (t.text or "").strip()}
                        if "type" in t.attrib:
                            item = {"type": self.bare(name, t.attrib["type"]), **item}
                        ev[name].append(item)
            elif name in ("readPoint", "bizLocation"):
                loc: dict[str, Any] = {}
                for k in c:
                    if isinstance(k.tag, str):
                        kk = self.key(k.tag)
                        loc[kk] = (k.text or "").strip() if kk == "id" else self.extension(k)
                ev[name] = loc
            elif name == "persistentDisposition":
                pd: dict[str, list[str]] = {}
                for k in c:
                    if isinstance(k.tag, str):
                        pd.setdefault(_local(k.tag)[1], []).append(self.bare("disposition", k.text or ""))
                ev[name] = pd
            elif name == "sensorElementList":
                ev[name] = [self.sensor(s) for s in c if isinstance(s.tag, str)]
            elif name == "ilmd":
                ilmd = self.extension(c)
                ev[name] = ilmd if isinstance(ilmd, dict) else {}
            elif name == "errorDeclaration":
                ev[name] = self.error(c)
            elif name in ("bizStep", "disposition"):
                ev[name] = self.bare(name, text)
            elif name in ("extension", "baseExtension"):  # EPCIS 1.x wrappers: their fields belong to the event
                ev.update({k: v for k, v in self.event(c).items() if k != "type"})
            else:
                ev[name] = text
        return ev

    def quantity(self, q: ET.Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in q:
            if isinstance(k.tag, str):
                name = _local(k.tag)[1]
                text = (k.text or "").strip()
                out[name] = _number(text, name) if name == "quantity" else text
        return out

    def sensor(self, s: ET.Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in s:
            if not isinstance(k.tag, str):
                continue
            ns, name = _local(k.tag)
            if ns is None and name == "sensorMetadata":
                out[name] = self.attrs(k, bare=False)
            elif ns is None and name == "sensorReport":
                out.setdefault(name, []).append(self.attrs(k, bare=True))
            else:
                out[self.key(k.tag)] = self.extension(k)
        return out

    def error(self, c: ET.Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k in c:
            if not isinstance(k.tag, str):
                continue
            ns, name = _local(k.tag)
            if ns is None and name == "correctiveEventIDs":
                out[name] = [(x.text or "").strip() for x in k if isinstance(x.tag, str)]
            elif ns is None:
                out[name] = self.bare(name, k.text or "")
            else:
                out[self.key(k.tag)] = self.extension(k)
        return out


def _find(el: ET.Element, *path: str) -> ET.Element | None:
    for name in path:
        nxt = next((c for c in el if isinstance(c.tag, str) and _local(c.tag)[1] == name), None)
        if nxt is None:
            return None
        el = nxt
    return el


def xml_document(data: bytes) -> dict[str, Any]:
    """An EPCIS 2.0 XML document (``EPCISDocument`` or ``EPCISQueryDocument``) as an EPCIS 2.0 JSON-LD
    ``EPCISDocument`` with the same events (then validated and hashed like any JSON document)."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise BadInputError("an EPCIS XML document may not declare a document type or entities", field="document")
    prefixes: dict[str, str] = {}
    try:
        import io

        root: ET.Element | None = None
        for what, item in ET.iterparse(io.BytesIO(data), events=("start-ns", "start")):
            if what == "start-ns":
                p, ns = item
                prefixes.setdefault(p, ns)
            elif root is None:
                root = item
        if root is None:
            raise ET.ParseError("no root element")
    except ET.ParseError as exc:
        raise BadInputError(f"not well-formed XML: {exc}", field="document") from None
    _, kind = _local(root.tag)
    if kind not in ("EPCISDocument", "EPCISQueryDocument"):
        raise BadInputError(f"not an EPCIS 2.0 XML document (root element {kind!r})", field="document")
    body = _find(root, "EPCISBody")
    lst = None if body is None else _find(body, "EventList")
    if lst is None and body is not None:
        lst = _find(body, "QueryResults", "resultsBody", "EventList")
    if lst is None:
        raise BadInputError("the EPCIS XML document has no EPCISBody/EventList", field="epcisBody")
    reader = _Reader(prefixes)
    events = []
    for el in lst:
        if not isinstance(el.tag, str):
            continue
        kids = [el] if _local(el.tag)[1] != "extension" else [k for k in el if isinstance(k.tag, str)]
        for k in kids:
            if _local(k.tag)[1] not in EVENT_TYPES:
                raise BadInputError(f"unknown EPCIS event element {_local(k.tag)[1]!r}", field="eventList")
            events.append(reader.event(k))
    context: list[Any] = [EPCIS_CONTEXT]
    names = {**{p: ns for p, ns in prefixes.items() if p and ns not in _STD_NS and p.lower() not in
                ("http", "https", "urn")}, **reader.used}  # compact URIs in values are read with these too
    if names:
        context.append(dict(sorted(names.items())))
    return {"@context": context, "type": "EPCISDocument", "schemaVersion": root.attrib.get("schemaVersion", "2.0"),
            "creationDate": root.attrib.get("creationDate", ""), "epcisBody": {"eventList": events}}


def load_document(path: str | Path) -> Any:
    """Read an EPCIS 2.0 document: JSON / JSON-LD, or XML (read into the JSON form by ``xml_document``)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise BadInputError(f"no such file: {p}", field="file") from None
    if data.lstrip()[:1] == b"<":
        return xml_document(data)
    try:
        return json.loads(data)
    except ValueError as exc:
        raise BadInputError(f"{p} is not JSON: {exc}", field="file") from None
