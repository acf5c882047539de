"""Capture, trace and recall on a real ledger; every "Bad input" case of issue 29 refused with nothing logged."""

from __future__ import annotations

import copy
import json

import pytest

from ailedger.errors import BadInputError, NotFoundError, ProofError, VerificationError
from ailedger.supplychain.eventhash import digital_link, event_hash
from ailedger.supplychain.service import EVENT_RECORD, capture, recall, trace, verify_logged
from ailedger.tlog.ledger import Ledger

from . import chain as c


@pytest.fixture
def led(tmp_path):
    lg = Ledger.init(tmp_path / "l", origin="test.example/epcis")
    yield lg
    lg.close()


@pytest.fixture
def alice(led):
    return led.new_identity("alice")[0]


def _events(led):
    return list(led.find(type=EVENT_RECORD))


def test_capture_logs_each_event_once_by_its_hash(led, alice):
    doc = c.chain()
    first = capture(led, alice, doc)
    assert [x.duplicate for x in first] == [False] * 4
    assert [x.hash for x in first] == [event_hash(e, doc["@context"]) for e in doc["epcisBody"]["eventList"]]
    bob = led.new_identity("bob")[0]
    # the same events, spelled differently and captured by another party: one id, nothing new logged
    other = copy.deepcopy(doc)
    for ev in other["epcisBody"]["eventList"]:
        ev["eventTime"] = ev["eventTime"].replace("10:", "09:").replace("+01:00", "Z")
    size = led.size
    again = capture(led, bob, other)
    assert [(x.index, x.duplicate) for x in again] == [(x.index, True) for x in first]
    assert led.size == size and len(_events(led)) == 4


def test_trace_forward_backward_and_recall_with_proofs(led, alice):
    capture(led, alice, c.chain())
    fwd = trace(led, c.LOT)
    got = {it["item"]: it["depth"] for it in fwd["items"]}
    assert got == {digital_link(c.LOT): 0, **{digital_link(c.product(n)): 1 for n in (1, 2, 3)},
                   digital_link(c.PALLET): 2}
    back = trace(led, c.PALLET, forward=False)
    assert {it["item"] for it in back["items"]} == {digital_link(x) for x in
                                                    (c.PALLET, c.product(1), c.product(2), c.LOT)}
    assert digital_link(c.product(3)) not in {it["item"] for it in back["items"]}
    rep = recall(led, c.LOT)
    assert {a["item"] for a in rep["affected"]} == {digital_link(c.product(n)) for n in (1, 2, 3)} | {
        digital_link(c.PALLET)}
    assert verify_logged(led, rep) == {"ok": True, "events": 4,
                                       "by_type": {"ObjectEvent": 2, "TransformationEvent": 1, "AggregationEvent": 1},
                                       "inferences_verified": 0}


def test_a_tampered_report_fails_verification(led, alice):
    capture(led, alice, c.chain())
    rep = recall(led, c.LOT)
    bad = copy.deepcopy(rep)
    bad["events"][1]["hash"] = bad["events"][2]["hash"]
    with pytest.raises(VerificationError, match="holds another event"):
        verify_logged(led, bad)
    bad = copy.deepcopy(rep)
    bad["events"][0]["proof"] = bad["events"][1]["proof"]
    with pytest.raises(ProofError):
        verify_logged(led, bad)


def test_trace_of_unknown_item(led, alice):
    capture(led, alice, c.chain())
    with pytest.raises(NotFoundError, match="no logged EPCIS event names"):
        trace(led, "urn:epc:id:sgtin:4012345.077889.999")


def _refused(led, alice, doc, match, field=None):
    size = led.size
    with pytest.raises(BadInputError, match=match) as ei:
        capture(led, alice, doc)
    assert led.size == size and _events(led) == []
    if field:
        assert ei.value.field == field


def test_schema_invalid_event(led, alice):
    ev = c.ship([c.PALLET])
    ev["action"] = "MOVE"
    _refused(led, alice, c.doc(c.commission(), ev), r"not valid EPCIS 2.0 \(JSON schema\) at epcisBody/eventList/1")
    ev = c.ship([c.PALLET])
    del ev["eventTime"]
    _refused(led, alice, c.doc(ev), "not valid EPCIS 2.0")


def test_unknown_cbv_vocabulary(led, alice):
    ev = c.ship([c.PALLET])
    ev["bizStep"] = "shiping"
    _refused(led, alice, c.doc(c.commission(), ev), "event 1: unknown CBV bizStep 'shiping'", "bizStep")
    ev = c.ship([c.PALLET])
    ev["bizTransactionList"][0]["type"] = "purchase"
    _refused(led, alice, c.doc(ev), "unknown CBV bizTransaction-type 'purchase'", "bizTransactionList")
    ev = c.ship([c.PALLET])
    ev["disposition"] = "lost_at_sea"
    _refused(led, alice, c.doc(ev), "unknown CBV disposition", "disposition")


def test_declared_hash_must_match(led, alice):
    ev = c.ship([c.PALLET])
    good = event_hash(ev, c.CONTEXT)
    ev["eventID"] = good
    capture(led, alice, c.doc(ev))  # a correct declared hash is accepted
    ev2 = c.ship([c.PALLET], minute=9)
    ev2["eventID"] = good  # another event's hash
    size = led.size
    with pytest.raises(BadInputError, match="its declared eventID .* is not its event hash") as ei:
        capture(led, alice, c.doc(ev2))
    assert ei.value.field == "eventID" and led.size == size


def test_transformation_consuming_more_than_exists(led, alice):
    capture(led, alice, c.doc(c.commission(qty=100)))
    capture(led, alice, c.doc(c.transform([(c.LOT, 60)], [c.product(1)])))
    size = led.size
    with pytest.raises(BadInputError, match=r"consumes 50 of .*LOT7 but only 40 exist"):
        capture(led, alice, c.doc(c.transform([(c.LOT, 50)], [c.product(2)], minute=5)))
    # in one document: the stock it creates counts, the excess is still refused
    with pytest.raises(BadInputError, match=r"consumes 45 of"):
        capture(led, alice, c.doc(c.commission(qty=4, minute=6), c.transform([(c.LOT, 45)], [c.product(3)], minute=7)))
    assert led.size == size
    capture(led, alice, c.doc(c.commission(qty=4, minute=6), c.transform([(c.LOT, 44)], [c.product(3)], minute=7)))
    # a lot nobody produced
    with pytest.raises(BadInputError, match="but only 0 exist"):
        capture(led, alice, c.doc(c.transform([("urn:epc:class:lgtin:4012345.011111.NOPE", 1)], [c.product(4)])))


def test_an_epc_consumed_twice(led, alice):
    capture(led, alice, c.doc(c.transform([], [c.product(8)], input_epcs=[c.product(1)])))
    with pytest.raises(BadInputError, match="already consumed by entry"):
        capture(led, alice, c.doc(c.transform([], [c.product(9)], minute=4, input_epcs=[c.product(1)])))


def test_not_a_document(led, alice):
    _refused(led, alice, {"type": "Invoice"}, "not an EPCIS 2.0 document or event")
    _refused(led, alice, json.loads('{"type": "EPCISDocument", "epcisBody": {}}'), "has no epcisBody.eventList")


def test_events_written_by_another_path_are_found_and_forged_subjects_ignored(led, alice):
    from ailedger.supplychain.events import validate_document
    from ailedger.supplychain.service import event_body, find_event

    evs = validate_document(c.chain())
    datas = [led.make_entry(EVENT_RECORD, event_body(e), alice).leaf_bytes for e in evs]
    led.append_entries(datas, parallel=False)  # the bulk path (as `ailedger append` / HTTP ingest)
    assert [find_event(led, e.hash) for e in evs] == [1, 2, 3, 4]
    assert len(trace(led, c.LOT)["items"]) == 5
    # an entry claiming (in its subjects) to name the pallet, while its event does not, is not part of the trace
    fake = event_body(validate_document(c.doc(c.ship([c.product(3)], minute=30)))[0])
    fake["subjects"].append("epc:" + digital_link(c.PALLET))
    led.append_record(EVENT_RECORD, fake, alice)
    assert [e["index"] for e in trace(led, c.PALLET)["events"]] == [3, 4]


def test_stock_counts_each_event_once(led, alice):
    capture(led, alice, c.doc(c.commission(qty=100)))
    # the logged commissioning repeated in the document does not count twice: 100 exist, not 200
    with pytest.raises(BadInputError, match="consumes 150 of .* but only 100 exist"):
        capture(led, alice, c.doc(c.commission(qty=100), c.commission(qty=100),
                                  c.transform([(c.LOT, 150)], [c.product(1)])))


def test_http_api_trace_and_recall(led, alice):
    import asyncio

    import httpx

    from ailedger.http.app import create_app

    capture(led, alice, c.chain())

    async def get(path, **params):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(led)),
                                     base_url="http://127.0.0.1") as cl:
            return await cl.get(path, params=params)

    r = asyncio.run(get("/v1/epcis/trace", epc=c.PALLET, direction="backward"))
    assert r.status_code == 200, r.text
    assert r.json()["direction"] == "backward" and len(r.json()["items"]) == 4
    rep = asyncio.run(get("/v1/epcis/recall", epc=c.LOT)).json()
    assert len(rep["affected"]) == 4 and verify_logged(led, rep)["events"] == 4
    bad = asyncio.run(get("/v1/epcis/trace", epc=c.PALLET, direction="sideways"))
    assert bad.status_code == 400 and "forward or backward" in bad.json()["message"]
    assert asyncio.run(get("/v1/epcis/trace")).status_code == 400
    assert asyncio.run(get("/v1/epcis/recall", epc="urn:epc:id:sgtin:1.2.3")).status_code == 404


def test_an_entry_whose_event_does_not_hash_to_its_claim_is_no_event(led, alice):
    from ailedger.supplychain.events import validate_document
    from ailedger.supplychain.service import event_body

    capture(led, alice, c.chain())
    body = event_body(validate_document(c.doc(c.ship([c.PALLET], minute=40)))[0])
    body["event"] = body["event"].replace('"shipping"', '"receiving"')  # edited after hashing
    led.append_record(EVENT_RECORD, body, alice)  # a raw write, around capture's checks
    assert [e["index"] for e in trace(led, c.PALLET)["events"]] == [3, 4]
    led.append_record(EVENT_RECORD, {"event": "{", "subjects": ["epc:" + digital_link(c.PALLET)]}, alice)
    assert [e["index"] for e in trace(led, c.PALLET)["events"]] == [3, 4]


def test_association_events_are_followed_both_ways_and_recalled_with_proofs(led, alice):
    other_lot = "urn:epc:class:lgtin:4012345.011111.LOT8"
    capture(led, alice, c.chain())
    capture(led, alice, c.doc(c.commission(other_lot, 50, minute=5),
                              c.associate(c.TRAILER, [c.PALLET], quantities=[(other_lot, 20)], minute=6),
                              # a dissociation is not a link: the pallet did not go into this second trailer
                              c.associate("urn:epc:id:grai:4012345.00022.999", [c.PALLET], "DELETE", minute=7)))
    fwd = trace(led, c.LOT)
    got = {it["item"]: (it["depth"], it.get("via_type")) for it in fwd["items"]}
    assert got[digital_link(c.TRAILER)] == (3, "AssociationEvent")
    assert digital_link("urn:epc:id:grai:4012345.00022.999") not in got
    back = trace(led, c.TRAILER, forward=False)
    assert {it["item"] for it in back["items"]} == {digital_link(x) for x in (
        c.TRAILER, c.PALLET, other_lot, c.product(1), c.product(2), c.LOT)}
    # the other lot, associated by quantity, reaches the trailer too
    assert digital_link(c.TRAILER) in {it["item"] for it in trace(led, other_lot)["items"]}
    rep = recall(led, c.LOT)
    trailer = next(a for a in rep["affected"] if a["item"] == digital_link(c.TRAILER))
    assert trailer["via_type"] == "AssociationEvent" and trailer["proof"]
    assert verify_logged(led, rep)["by_type"]["AssociationEvent"] == 2  # the ADD links, the DELETE is listed


def test_a_forged_association_is_not_followed(led, alice):
    capture(led, alice, c.chain())
    ev = c.associate(c.TRAILER, [c.PALLET])
    body = {"hash": event_hash(ev, c.CONTEXT), "event_type": "AssociationEvent", "event": json.dumps(ev),
            "context": json.dumps(c.CONTEXT), "subjects": ["epc:" + digital_link(c.PALLET)]}
    body["event"] = json.dumps({**ev, "parentID": "urn:epc:id:grai:4012345.00022.666"})  # not what was hashed
    led.append_record(EVENT_RECORD, body, alice)
    assert digital_link("urn:epc:id:grai:4012345.00022.666") not in {it["item"] for it in trace(led, c.LOT)["items"]}
