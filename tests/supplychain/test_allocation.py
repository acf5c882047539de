"""Relief allocation from logged stock events: the plan and its inputs logged, recomputable by anyone."""

from __future__ import annotations

import pytest

from ailedger.errors import BadInputError, VerificationError
from ailedger.supplychain.allocation import ALLOCATION_RECORD, allocate, check, solve, stock
from ailedger.supplychain.service import capture
from ailedger.tlog.ledger import Ledger

from . import chain as c


@pytest.fixture
def world(tmp_path):
    led = Ledger.init(tmp_path / "l", origin="test.example/epcis-alloc")
    alice = led.new_identity("alice")[0]
    capture(led, alice, c.doc(c.stock_count(c.DEPOT_A, {c.WATER: 10, c.KITS: 4}, minute=0),
                              c.stock_count(c.DEPOT_A, {c.WATER: 80, c.KITS: 6}, minute=5),  # the later count wins
                              c.stock_count(c.DEPOT_B, {c.WATER: 30}, minute=1)))
    yield led, alice
    led.close()


def test_stock_is_the_latest_count(world):
    led, _ = world
    st, used = stock(led)
    assert st == {(c.DEPOT_A, c.WATER): 80, (c.DEPOT_A, c.KITS): 6, (c.DEPOT_B, c.WATER): 30}
    assert len(used) == 2


def test_plan_is_optimal_logged_and_recomputable(world):
    led, alice = world
    res = allocate(led, alice, c.relief_spec())
    # 110 water held for 120 needed: 10 unmet; kits: 6 of 10
    assert res["unmet_units"] == 10 + 4
    got = {(a["from"], a["to"], a["class"]): a["quantity"] for a in res["shipments"]}
    assert got[(c.DEPOT_B, c.SITE_2, c.WATER)] == 30  # the cheap route is used in full
    assert sum(q for (f, _, k), q in got.items() if f == c.DEPOT_A and k == c.WATER) <= 80
    brute = min(2 * a1 + 5 * a2 + 4 * b1 + 1 * b2
                for a1 in range(81) for a2 in range(81 - a1) for b1 in range(31) for b2 in range(31 - b1)
                if a1 + b1 + a2 + b2 == 110 and a1 + b1 <= 70 and a2 + b2 <= 50) + 2 * 6
    assert res["cost"] == brute
    e = led.entry(res["index"])
    assert e.type == ALLOCATION_RECORD and e.body["stock_events"] == res["stock_events"]
    assert check(led, res["index"]) == {"ok": True, "index": res["index"], "cost": brute, "unmet_units": 14,
                                        "stock_events": 2}


def test_a_plan_that_is_not_the_optimum_or_exceeds_stock_fails(world):
    led, alice = world
    spec = c.relief_spec()
    st, used = stock(led)
    plan = solve(st, *_io(spec))
    worse = {**plan, "shipments": [dict(a) for a in plan["shipments"]]}
    for a in worse["shipments"]:
        if a["from"] == c.DEPOT_B:
            a["to"] = c.SITE_1  # the dear route
    worse["cost"] = sum(spec["costs"][a["from"]][a["to"]] * a["quantity"] for a in worse["shipments"])
    i = led.append_record(ALLOCATION_RECORD, {**spec, "stock_events": used, "plan": worse, "solver": "x"}, alice).index
    with pytest.raises(VerificationError):
        check(led, i)
    greedy = {**plan, "shipments": [dict(a, quantity=a["quantity"] + 100) for a in plan["shipments"]]}
    i = led.append_record(ALLOCATION_RECORD, {**spec, "stock_events": used, "plan": greedy, "solver": "x"}, alice).index
    with pytest.raises(VerificationError, match="which holds"):
        check(led, i)


def _io(spec):
    from ailedger.supplychain.allocation import _inputs
    return _inputs(spec)


def test_bad_plan_input(world, tmp_path):
    led, alice = world
    size = led.size
    with pytest.raises(BadInputError, match="whole number"):
        allocate(led, alice, {"needs": {c.SITE_1: {c.WATER: -3}}, "costs": {}})
    with pytest.raises(BadInputError, match="the plan input is"):
        allocate(led, alice, {"needs": []})
    assert led.size == size
    empty = Ledger.init(tmp_path / "e", origin="test.example/epcis-empty")
    with pytest.raises(BadInputError, match="no stock in the log"):
        allocate(empty, empty.new_identity("a")[0], c.relief_spec())
    empty.close()
