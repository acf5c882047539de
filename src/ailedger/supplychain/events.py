"""Reading and checking EPCIS 2.0 documents: the JSON schema (GS1's, shipped in ``schema/``), the CBV
vocabulary, a declared event hash, and what an event says about identifiers (the EPCs and lots it touches,
what a transformation consumes and produces)."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import date
from importlib import resources
from typing import Any

from ailedger.errors import BadInputError

from .eventhash import Names, digital_link, event_hash

__all__ = ["EVENT_TYPES", "INSPECTION_NS", "Event", "inspection_of", "schema", "validate_document", "vocabulary_words"]

EVENT_TYPES = ("ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent", "AssociationEvent")
INSPECTION_NS = "https://ailedger.dev/ns/epcis-inspection/"
"""The namespace of the inspection extension (supplychain.inspection): model, modelRecord, verdict..."""
SCHEMA_FILE = "EPCIS-JSON-Schema.json"
# bare-word CBV vocabulary fields -> the schema definition that lists the standard words
_VOCAB_FIELDS = {"bizStep": "bizStep", "disposition": "disposition"}
_TYPED_LISTS = {"bizTransactionList": "bizTransaction-type", "sourceList": "source-dest-type",
                "destinationList": "source-dest-type"}


@functools.cache
def schema() -> dict[str, Any]:
    """GS1's EPCIS 2.0 JSON schema (draft-07), as shipped in ailedger/supplychain/schema/."""
    text = resources.files("ailedger.supplychain").joinpath("schema").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    out: dict[str, Any] = json.loads(text)
    return out


# The two formats GS1's schema uses, checked the same way by both validators below: an absolute URI (RFC 3986
# section 4.3: a scheme, ':', then URI characters only; compact URIs such as ``ex:field`` are URIs by this
# syntax) and an RFC 3339 date-time (section 5.6, with the ranges of its fields).
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
_DATE_TIME = re.compile(r"(\d{4}-\d\d-\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.\d+)?(?:[Zz]|[+-](\d\d):(\d\d))")


def _is_uri(v: Any) -> bool:
    return not isinstance(v, str) or _URI.fullmatch(v) is not None


def _is_date_time(v: Any) -> bool:
    if not isinstance(v, str):
        return True
    m = _DATE_TIME.fullmatch(v)
    if m is None:
        return False
    try:
        date.fromisoformat(m.group(1))
    except ValueError:
        return False
    hh, mm, ss, oh, om = (int(g or 0) for g in m.groups()[1:])
    return hh < 24 and mm < 60 and ss <= 60 and oh < 24 and om < 60


FORMATS = {"uri": _is_uri, "date-time": _is_date_time}
"""The formats of GS1's schema and their checks (the same for both validators)."""


@functools.cache
def _validator() -> Any:
    """The reference validator (``jsonschema``'s Draft 7, built once): it explains a refusal."""
    import jsonschema

    checker = jsonschema.FormatChecker(formats=())
    for name, fn in FORMATS.items():
        checker.checks(name)(fn)
    return jsonschema.Draft7Validator(schema(), format_checker=checker)


_SMALL = 50  # events: below this a document is checked by jsonschema while the compiled validator is not built


@functools.cache
def _compiled() -> Any:
    """GS1's schema compiled to Python by ``fastjsonschema`` (with the same format checks), built once per
    process (about a second): about ten times faster than ``jsonschema`` per event."""
    import fastjsonschema

    return fastjsonschema.compile(schema(), formats=FORMATS, use_default=False)


def _schema_errors(doc: Any, n_events: int) -> list[Any]:
    """The schema's errors for ``doc`` (empty when it is valid): a valid document costs one call of the
    compiled validator (or, for a small one while that is not built yet, one pass of ``jsonschema``); only a
    refused one is explained by ``jsonschema``."""
    if n_events >= _SMALL or _compiled.cache_info().currsize:
        import fastjsonschema

        try:
            _compiled()(doc)
            return []
        except fastjsonschema.JsonSchemaException as exc:
            errors = list(_validator().iter_errors(doc))
            return errors or [exc]
    return list(_validator().iter_errors(doc))


@functools.cache
def vocabulary_words(definition: str) -> frozenset[str]:
    """The bare words GS1's schema lists for a vocabulary definition (``bizStep``, ``measurementType``...)."""
    for alt in schema()["definitions"][definition].get("anyOf", []):
        if "enum" in alt:
            return frozenset(alt["enum"])
    return frozenset()


_words = vocabulary_words


@dataclass(frozen=True)
class Event:
    """One event of a document: its JSON, the document's ``@context`` and its hash ID."""
    data: dict[str, Any]
    context: Any
    hash: str

    @property
    def type(self) -> str:
        return str(self.data["type"])

    @property
    def action(self) -> str:
        return str(self.data.get("action", ""))

    def _ids(self, *keys: str) -> list[str]:
        out: list[str] = []
        for k in keys:
            v = self.data.get(k)
            if isinstance(v, str):
                out.append(digital_link(v))
            elif isinstance(v, list):
                out.extend(digital_link(x) for x in v if isinstance(x, str))
        return out

    def _classes(self, key: str) -> list[tuple[str, float]]:
        return [(digital_link(q["epcClass"]), float(q.get("quantity", 0))) for q in self.data.get(key) or []
                if isinstance(q, dict) and isinstance(q.get("epcClass"), str)]

    @property
    def parent(self) -> str | None:
        p = self._ids("parentID")
        return p[0] if p else None

    @property
    def children(self) -> list[str]:
        return self._ids("childEPCs") + [c for c, _ in self._classes("childQuantityList")]

    @property
    def inputs(self) -> list[str]:
        return self._ids("inputEPCList") + [c for c, _ in self._classes("inputQuantityList")]

    @property
    def outputs(self) -> list[str]:
        return self._ids("outputEPCList") + [c for c, _ in self._classes("outputQuantityList")]

    @property
    def items(self) -> list[str]:
        """Every identifier the event names (EPCs, lots/classes, the parent), canonical Digital Link URIs."""
        seen = dict.fromkeys(self._ids("epcList", "parentID", "childEPCs", "inputEPCList", "outputEPCList")
                             + [c for k in ("quantityList", "childQuantityList", "inputQuantityList",
                                            "outputQuantityList") for c, _ in self._classes(k)])
        return list(seen)

    def quantity_changes(self) -> list[tuple[str, float]]:
        """(class, +produced / -consumed) for the stock this event creates or uses up."""
        if self.type == "TransformationEvent":
            return ([(c, -q) for c, q in self._classes("inputQuantityList")]
                    + [(c, q) for c, q in self._classes("outputQuantityList")])
        if self.type == "ObjectEvent" and self.action == "ADD":
            return self._classes("quantityList")
        if self.type == "ObjectEvent" and self.action == "DELETE":
            return [(c, -q) for c, q in self._classes("quantityList")]
        return []


def _check_vocab(i: int, ev: dict[str, Any]) -> None:
    for field, definition in _VOCAB_FIELDS.items():
        v = ev.get(field)
        if isinstance(v, str) and ":" not in v and v not in _words(definition):
            raise BadInputError(f"event {i}: unknown CBV {field} {v!r} (a CBV 2.0 word, or a URI for your own "
                                "vocabulary)", field=field)
    pd = ev.get("persistentDisposition")
    if isinstance(pd, dict):
        for k in ("set", "unset"):
            for v in pd.get(k) or []:
                if isinstance(v, str) and ":" not in v and v not in _words("disposition"):
                    raise BadInputError(f"event {i}: unknown CBV disposition {v!r} in persistentDisposition.{k}",
                                        field="persistentDisposition")
    for field, definition in _TYPED_LISTS.items():
        for it in ev.get(field) or []:
            t = it.get("type") if isinstance(it, dict) else None
            if isinstance(t, str) and ":" not in t and t not in _words(definition):
                raise BadInputError(f"event {i}: unknown CBV {definition} {t!r} in {field}", field=field)


def validate_document(doc: Any) -> list[Event]:
    """Check an EPCIS 2.0 JSON document (or one event) and return its events with their hash IDs.

    Refused (``BadInputError``, naming the event and what is wrong): a bare word that is not CBV vocabulary,
    anything the EPCIS 2.0 JSON schema refuses, and an event whose declared ``eventID`` is an event hash
    (``ni:///...``) other than the one computed."""
    if not isinstance(doc, dict):
        raise BadInputError("an EPCIS document is a JSON object", field="document")
    if doc.get("type") == "EPCISDocument":
        body = doc.get("epcisBody")
        events = body.get("eventList") if isinstance(body, dict) else None
        if not isinstance(events, list) or not events:
            raise BadInputError("the EPCISDocument has no epcisBody.eventList", field="epcisBody")
    elif doc.get("type") in EVENT_TYPES:
        events = [doc]
    else:
        raise BadInputError(f"not an EPCIS 2.0 document or event (type {doc.get('type')!r})", field="type")
    for i, ev in enumerate(events):
        if not isinstance(ev, dict):
            raise BadInputError(f"event {i} is not a JSON object", field="eventList")
        if ev.get("type") not in EVENT_TYPES:
            raise BadInputError(f"event {i}: unknown event type {ev.get('type')!r} (one of {', '.join(EVENT_TYPES)})",
                                field="type")
        _check_vocab(i, ev)
    errors = _schema_errors(doc, len(events))
    if errors:
        import jsonschema

        if not isinstance(errors[0], jsonschema.ValidationError):  # (only the compiled validator saw it)
            raise BadInputError(f"not valid EPCIS 2.0 (JSON schema): {errors[0]}", field="document")
        errors.sort(key=lambda e: (len(e.path), list(map(str, e.path))))
        best = jsonschema.exceptions.best_match(errors) or errors[0]
        where = "/".join(str(p) for p in best.absolute_path) or "(document)"
        raise BadInputError(f"not valid EPCIS 2.0 (JSON schema) at {where}: {best.message}", field=where)
    context = doc.get("@context")
    out = []
    for i, ev in enumerate(events):
        h = event_hash(ev, context)
        declared = ev.get("eventID")
        if isinstance(declared, str) and declared.startswith("ni:///") and declared != h:
            raise BadInputError(f"event {i}: its declared eventID {declared} is not its event hash {h}",
                                field="eventID")
        out.append(Event(ev, context, h))
    return out


def inspection_of(ev: Event) -> dict[str, str] | None:
    """The inspection extension of an event (keys by local name: model, modelRecord, verdict, score...), if any."""
    names = Names(ev.context)
    for k, v in ev.data.items():
        if names.key(k) == "{" + INSPECTION_NS + "}inspection" and isinstance(v, dict):
            return {names.key(kk).rsplit("}", 1)[-1]: str(vv) for kk, vv in v.items()}
    return None
