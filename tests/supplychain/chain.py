"""A small supply chain as EPCIS 2.0 JSON-LD documents, built by the tests (GS1 example company prefixes)."""

from __future__ import annotations

from typing import Any

CONTEXT = ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
           {"example": "https://ns.example.com/epcis/"}]
LOT = "urn:epc:class:lgtin:4012345.011111.LOT7"
PALLET = "urn:epc:id:sscc:4012345.0000000777"
SITE = "urn:epc:id:sgln:4012345.00001.0"


def product(n: int) -> str:
    return f"urn:epc:id:sgtin:4012345.077889.{n}"


def doc(*events: dict[str, Any]) -> dict[str, Any]:
    return {"@context": CONTEXT, "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-01-01T00:00:00Z", "epcisBody": {"eventList": list(events)}}


def t(minute: int) -> str:
    return f"2026-01-02T10:{minute:02d}:00.000+01:00"


def commission(lot: str = LOT, qty: float = 100, minute: int = 0) -> dict[str, Any]:
    return {"type": "ObjectEvent", "eventTime": t(minute), "eventTimeZoneOffset": "+01:00", "action": "ADD",
            "epcList": [], "quantityList": [{"epcClass": lot, "quantity": qty, "uom": "KGM"}],
            "bizStep": "commissioning", "disposition": "active", "readPoint": {"id": SITE}}


def transform(inputs: list[tuple[str, float]], outputs: list[str], minute: int = 1,
              input_epcs: list[str] | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "TransformationEvent", "eventTime": t(minute), "eventTimeZoneOffset": "+01:00",
                          "inputQuantityList": [{"epcClass": c, "quantity": q, "uom": "KGM"} for c, q in inputs],
                          "outputEPCList": outputs, "bizStep": "commissioning", "disposition": "active",
                          "readPoint": {"id": SITE}}
    if input_epcs:
        ev["inputEPCList"] = input_epcs
    return ev


def pack(parent: str, children: list[str], minute: int = 2) -> dict[str, Any]:
    return {"type": "AggregationEvent", "eventTime": t(minute), "eventTimeZoneOffset": "+01:00",
            "parentID": parent, "childEPCs": children, "action": "ADD", "bizStep": "packing",
            "readPoint": {"id": SITE}}


def ship(epcs: list[str], minute: int = 3) -> dict[str, Any]:
    return {"type": "ObjectEvent", "eventTime": t(minute), "eventTimeZoneOffset": "+01:00", "action": "OBSERVE",
            "epcList": epcs, "bizStep": "shipping", "disposition": "in_transit", "readPoint": {"id": SITE},
            "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:4012345000009:PO1"}]}


def chain() -> dict[str, Any]:
    """Lot -> three products (a transformation) -> two packed on a pallet -> the pallet shipped."""
    return doc(commission(), transform([(LOT, 60)], [product(1), product(2), product(3)]),
               pack(PALLET, [product(1), product(2)]), ship([PALLET]))


WATER = "urn:epc:class:lgtin:4012345.022222.W1"
KITS = "urn:epc:class:lgtin:4012345.033333.K1"
DEPOT_A = "urn:epc:id:sgln:4012345.00010.0"
DEPOT_B = "urn:epc:id:sgln:4012345.00020.0"
SITE_1 = "urn:epc:id:sgln:4012345.00101.0"
SITE_2 = "urn:epc:id:sgln:4012345.00102.0"


def stock_count(depot: str, counts: dict[str, int], minute: int = 0) -> dict[str, Any]:
    return {"type": "ObjectEvent", "eventTime": t(minute), "eventTimeZoneOffset": "+01:00", "action": "OBSERVE",
            "epcList": [], "quantityList": [{"epcClass": k, "quantity": q} for k, q in counts.items()],
            "bizStep": "stock_taking", "readPoint": {"id": depot}, "bizLocation": {"id": depot}}


def relief_spec() -> dict[str, Any]:
    return {"needs": {SITE_1: {WATER: 70, KITS: 10}, SITE_2: {WATER: 50}},
            "costs": {DEPOT_A: {SITE_1: 2, SITE_2: 5}, DEPOT_B: {SITE_1: 4, SITE_2: 1}}}


TRAILER = "urn:epc:id:grai:4012345.00022.334455"


def associate(parent: str, children: list[str], action: str = "ADD", minute: int = 4,
              quantities: list[tuple[str, float]] | None = None) -> dict[str, Any]:
    ev: dict[str, Any] = {"type": "AssociationEvent", "eventTime": t(minute), "eventTimeZoneOffset": "+01:00",
                          "parentID": parent, "action": action, "bizStep": "assembling",
                          "readPoint": {"id": SITE}}
    if children:
        ev["childEPCs"] = children
    if quantities:
        ev["childQuantityList"] = [{"epcClass": c, "quantity": q, "uom": "KGM"} for c, q in quantities]
    return ev
