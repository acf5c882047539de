"""EPCIS 2.0 XML documents read into the JSON form (supplychain.xmldoc): every event hashes to the reference
implementation's published hash, as its JSON-LD twin does; XML and JSON captures of one event are one entry.

Vectors: the XML examples of https://github.com/RalphTro/epcis-event-hash-generator (tests/examples, commit
5d2f1c389a1599af40fe1b530b62e0ca59ab818f), copied into tests/supplychain/vectors/ (see SOURCE.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ailedger.errors import BadInputError
from ailedger.supplychain.eventhash import event_hash
from ailedger.supplychain.events import validate_document
from ailedger.supplychain.service import capture
from ailedger.supplychain.xmldoc import load_document, xml_document
from ailedger.tlog.ledger import Ledger

VECTORS = Path(__file__).parent / "vectors"
XML = sorted(p.stem for p in VECTORS.glob("*.xml"))
# SensorDataExamples events whose sensor reports carry compact URIs of the document's own prefix as values
# (type="example:someSensorProperty", component="example:z"): the rules expand every CURIE (as the reference
# does for JSON); the reference's XML reader leaves these unexpanded, so its published hashes differ
UNEXPANDED = {("SensorDataExamples", i) for i in (5, 6, 7, 9, 11)}
CASES = [(n, i) for n in XML for i in range(len((VECTORS / f"{n}.hashes").read_text().split()))]


@pytest.mark.parametrize(("name", "i"), CASES, ids=[f"{n}[{i}]" for n, i in CASES])
def test_published_hashes_of_xml_examples(name, i):
    doc = xml_document((VECTORS / f"{name}.xml").read_bytes())
    ev = doc["epcisBody"]["eventList"][i]
    expected = (VECTORS / f"{name}.hashes").read_text().split()[i]
    if (name, i) in UNEXPANDED:
        assert event_hash(ev, doc["@context"]) != expected
        assert any(isinstance(r.get(k), str) and r[k].startswith("example:") for el in ev["sensorElementList"]
                   for r in el["sensorReport"] for k in ("type", "component"))
    else:
        assert event_hash(ev, doc["@context"]) == expected


def test_the_vectors_cover_sensor_data_and_every_event_type():
    assert len(CASES) >= 40 and sum(n == "SensorDataExamples" for n, _ in CASES) == 12
    types = {ev["type"] for n in XML for ev in xml_document((VECTORS / f"{n}.xml").read_bytes())["epcisBody"]["eventList"]}
    assert types == {"ObjectEvent", "AggregationEvent", "TransactionEvent", "TransformationEvent"}


@pytest.mark.parametrize("name", [n for n in XML if (VECTORS / f"{n}.jsonld").exists()])
def test_xml_and_json_ld_twins_validate_to_the_same_hashes(name):
    xml_doc = load_document(VECTORS / f"{name}.xml")
    json_doc = load_document(VECTORS / f"{name}.jsonld")
    if name == "epcisQueryDocument":  # its declared eventIDs are stale upstream; the hashes are the point here
        for d in (xml_doc, json_doc):
            for ev in (d["epcisBody"].get("eventList") or d["epcisBody"]["queryResults"]["resultsBody"]["eventList"]):
                ev.pop("eventID", None)
        json_doc = {**json_doc, "type": "EPCISDocument",
                    "epcisBody": {"eventList": json_doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]}}
    assert [e.hash for e in validate_document(xml_doc)] == [e.hash for e in validate_document(json_doc)]


def test_an_xml_capture_and_its_json_twin_are_one_entry(tmp_path):
    led = Ledger.init(tmp_path / "l", origin="test.example/epcis-xml")
    try:
        who = led.new_identity("alice")[0]
        first = capture(led, who, load_document(VECTORS / "epcisDocWithShippingAndTransportingEvent.xml"))
        size = led.size
        again = capture(led, who, load_document(VECTORS / "epcisDocWithShippingAndTransportingEvent.jsonld"))
        assert led.size == size and all(c.duplicate for c in again)
        assert [c.index for c in again] == [c.index for c in first]
    finally:
        led.close()


@pytest.mark.parametrize(("data", "match"), [
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "document type"),
    (b"<epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:2'><EPCISBody>", "not well-formed"),
    (b"<html><body/></html>", "not an EPCIS 2.0 XML document"),
    (b"<epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:2'><EPCISBody/></epcis:EPCISDocument>", "no EPCISBody"),
    ((b"<epcis:EPCISDocument xmlns:epcis='urn:epcglobal:epcis:xsd:2'><EPCISBody><EventList><Shipment/>"
      b"</EventList></EPCISBody></epcis:EPCISDocument>"), "unknown EPCIS event element"),
])
def test_bad_xml_is_refused(tmp_path, data, match):
    p = tmp_path / "bad.xml"
    p.write_bytes(data)
    with pytest.raises(BadInputError, match=match):
        load_document(p)


def test_cli_hashes_and_captures_xml(tmp_path):
    from click.testing import CliRunner

    from ailedger.cli.main import main

    r = CliRunner().invoke(main, ["epcis", "hash", str(VECTORS / "ReferenceEventHashAlgorithm2.xml"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["events"][0]["hash"] == (VECTORS / "ReferenceEventHashAlgorithm2.hashes").read_text().split()[0]
