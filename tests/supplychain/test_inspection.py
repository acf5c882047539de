"""AI inspection verdicts as EPCIS ObjectEvents naming a registered model; a model revoked later makes its
verdicts suspect in traces and recall reports."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

from ailedger.errors import BadInputError, VerificationError
from ailedger.provenance.models import register_model
from ailedger.supplychain.inspection import CONTEXT, defect_images, inspect, train_inspector
from ailedger.supplychain.service import capture, recall, trace, verify_logged
from ailedger.tlog.ledger import Ledger

from . import chain as c


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("inspector")
    info = train_inspector(d, n=1200, seed=0)
    assert info["accuracy"] > 0.9, info  # the synthetic scratches are learnable
    return d


@pytest.fixture
def world(tmp_path, model_dir):
    led = Ledger.init(tmp_path / "l", origin="test.example/epcis-inspect")
    alice = led.new_identity("alice")[0]
    register_model(led, model_dir, "inspector", alice)
    capture(led, alice, c.chain())
    yield led, alice
    led.close()


def test_verdicts_are_events_naming_the_model(world, model_dir):
    led, alice = world
    x, y = defect_images(40, seed=7)
    items = [(c.product(1), x[i]) for i in range(40)]
    size = led.size
    res = inspect(led, alice, "inspector", model_dir, items[:1] + [(c.product(2), x[1]), (c.product(3), x[2])],
                  read_point=c.SITE)
    assert led.size == size + 4 and [r["duplicate"] for r in res] == [False] * 3  # one inference.batch, 3 events
    assert led.entry(size).type == "inference.batch" and led.entry(size).signer == alice.did
    assert [r["verdict"] for r in res] == ["defect" if v else "ok" for v in y[:3]]
    e = led.entry(res[0]["index"])
    assert e.type == "epcis.event" and '"bizStep":"inspecting"' in e.body["event"]
    t = trace(led, c.LOT)
    insp = [ev["inspection"] for ev in t["events"] if "inspection" in ev]
    assert len(insp) == 3 and all(i["model"] == "inspector" and i["modelRecord"].startswith("#") for i in insp)
    assert all(i["model_status"] == "active" and i["suspect"] is False for i in insp)
    # each verdict references its inference record, which the trace checked: in the batch entry the event names,
    # signed by the inspector, for this model and item, its committed output the event's verdict and score
    assert all(i["inference"]["verified"] and i["inferenceEntry"] == f"#{size}" for i in insp)
    assert {i["inferenceRecord"] for i in insp} == {r["receipt"] for r in res}
    assert verify_logged(led, t)["inferences_verified"] == 3


def test_revoked_model_marks_its_verdicts_suspect(world, model_dir):
    led, alice = world
    x, _ = defect_images(2, seed=3)
    inspect(led, alice, "inspector", model_dir, [(c.product(1), x[0])], read_point=c.SITE)
    led.append_record("model.revoke", {"name": "inspector", "reason": "drifted"}, alice)
    rep = recall(led, c.LOT)
    assert len(rep["suspect_inspections"]) == 1
    s = rep["suspect_inspections"][0]["inspection"]
    assert s["suspect"] is True and s["model_status"] == "revoked" and "revoked" in s["why"]
    # and a revoked model inspects no more
    with pytest.raises(VerificationError, match="may not be used"):
        inspect(led, alice, "inspector", model_dir, [(c.product(2), x[1])], read_point=c.SITE)


def test_unregistered_files_and_bad_images_are_refused(world, model_dir, tmp_path):
    led, alice = world
    other = tmp_path / "other"
    train_inspector(other, n=300, seed=1)
    size = led.size
    with pytest.raises(VerificationError, match="are not registered model inspector"):
        inspect(led, alice, "inspector", other, [(c.product(1), np.zeros((8, 8)))], read_point=c.SITE)
    with pytest.raises(BadInputError, match="8x8 finite values"):
        inspect(led, alice, "inspector", model_dir, [(c.product(1), np.zeros((8, 9)))], read_point=c.SITE)
    with pytest.raises(BadInputError, match="readPoint"):  # refused before the inference record is logged
        inspect(led, alice, "inspector", model_dir, [(c.product(1), np.zeros((8, 8)))], read_point=None)
    assert led.size == size


def test_explorer_item_page_draws_the_journey(world, model_dir):
    import asyncio

    import httpx

    from ailedger.http.app import create_app
    from ailedger.supplychain.eventhash import digital_link

    led, alice = world
    x, _ = defect_images(1, seed=3)
    inspect(led, alice, "inspector", model_dir, [(c.product(2), x[0])], read_point=c.SITE)
    led.append_record("model.revoke", {"name": "inspector", "reason": "drifted"}, alice)

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(led)),
                                     base_url="http://127.0.0.1") as cl:
            return await cl.get(path)

    page = asyncio.run(get("/item/" + c.product(2)))
    assert page.status_code == 200, page.text
    t = page.text
    assert '<svg xmlns="http://www.w3.org/2000/svg" id="journey"' in t
    assert digital_link(c.PALLET).removeprefix("https://id.gs1.org/") in t  # downstream
    assert digital_link(c.LOT).removeprefix("https://id.gs1.org/") in t  # upstream
    assert "#f8d0d0" in t and "suspect: " in t and t.count("<td>verified</td>") == 5
    assert asyncio.run(get("/item/urn:epc:id:sgtin:4012345.077889.999")).status_code == 404


def _inspection_event(led, alice, model_dir, seed=5):
    x, _ = defect_images(1, seed=seed)
    res = inspect(led, alice, "inspector", model_dir, [(c.product(1), x[0])], read_point=c.SITE)[0]
    ev = json.loads(led.entry(res["index"]).body["event"])
    return res, ev


@pytest.mark.parametrize("forgery", ["verdict", "other-item", "no-record", "other-entry", "other-signer"])
def test_a_verdict_its_inference_record_does_not_back_is_suspect(world, model_dir, forgery):
    led, alice = world
    res, ev = _inspection_event(led, alice, model_dir)
    ext = ev["ailinsp:inspection"]
    signer = alice
    ev["eventTime"] = "2026-01-02T11:00:00.000Z"  # another event (another hash)
    if forgery == "verdict":  # the record's output says otherwise
        flip = "ok" if ext["ailinsp:verdict"] == "defect" else "defect"
        ext["ailinsp:verdict"] = flip
        ev["disposition"] = "conformant" if flip == "ok" else "non_conformant"
    elif forgery == "other-item":  # a real record, about product 1, reused for product 3
        ev["epcList"] = [c.product(3)]
    elif forgery == "no-record":
        del ext["ailinsp:inferenceRecord"], ext["ailinsp:inferenceEntry"]
    elif forgery == "other-entry":
        ext["ailinsp:inferenceEntry"] = "#1"
    else:  # bob states a verdict on alice's inference
        signer = led.new_identity("bob")[0]
    capture(led, signer, {**c.doc(ev), "@context": CONTEXT})  # the context naming the inspection namespace
    t = trace(led, c.LOT)  # reaches products 1 and 3
    judged = {e["hash"]: e["inspection"] for e in t["events"] if "inspection" in e}
    good = judged.pop(led.entry(res["index"]).body["hash"])
    assert good["suspect"] is False and good["inference"]["verified"]
    (bad,) = judged.values()
    assert bad["suspect"] is True and bad["inference"]["verified"] is False and bad["why"]
    assert verify_logged(led, t)["inferences_verified"] == 1  # the suspect one is reported as such, not verified
    assert any(e["inspection"]["suspect"] for e in recall(led, c.LOT)["suspect_inspections"])


def test_a_report_edited_to_clear_a_verdict_fails_verification(world, model_dir):
    led, alice = world
    _inspection_event(led, alice, model_dir)
    t = trace(led, c.product(1), forward=False)
    e = next(e for e in t["events"] if "inspection" in e)
    bad = copy.deepcopy(t)
    b = next(x for x in bad["events"] if x["index"] == e["index"])["inspection"]
    b["verdict"] = "ok" if b["verdict"] == "defect" else "defect"
    with pytest.raises(VerificationError, match="inspection verdict"):
        verify_logged(led, bad)
    bad = copy.deepcopy(t)
    inf = next(x for x in bad["events"] if x["index"] == e["index"])["inspection"]["inference"]
    inf["output"] = json.dumps({"verdict": "ok", "score": "0.0001"}, separators=(",", ":"))
    with pytest.raises(VerificationError, match="not the one the record commits to"):
        verify_logged(led, bad)
