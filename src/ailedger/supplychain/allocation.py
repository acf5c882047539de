"""Relief allocation from logged stock: which depot sends how much of what to which site.

Stock is read from the log: the latest ``stock_taking`` ObjectEvent per (bizLocation, class) gives the
quantity of that class at that depot.  Needs and shipping costs come from the planner (a JSON file).  The plan
is an integer program solved with scipy's ``milp`` (the HiGHS solver): minimise shipping cost plus a penalty
per unit of need left unmet, within each depot's stock.  The ``epcis.allocation`` entry carries the plan and
all its inputs (the stock events by log index, the needs, the costs), so anyone can recompute it: ``check``
re-reads the stock events, checks the plan is within stock and meets the needs it claims, and that its cost
equals the optimum recomputed from the same inputs.
"""

from __future__ import annotations

import json
from typing import Any

from ailedger.errors import BadInputError, VerificationError

from .service import EVENT_RECORD, logged_event

__all__ = ["ALLOCATION_RECORD", "allocate", "check", "solve", "stock"]

ALLOCATION_RECORD = "epcis.allocation"


def _int(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != int(x) or x < 0:
        raise BadInputError(f"{what} must be a whole number >= 0, got {x!r}", field=what.split()[0])
    return int(x)


def stock(ledger: Any, indices: list[int] | None = None) -> tuple[dict[tuple[str, str], int], list[int]]:
    """{(depot, class): quantity} from the latest stock_taking ObjectEvent of each pair, and the indices used.
    ``indices``: read only these entries (a check of a logged plan); default: every ``epcis.event``."""
    rows = ((i, ledger.entry(i)) for i in indices) if indices is not None else ledger.find(type=EVENT_RECORD)
    latest: dict[tuple[str, str], tuple[str, int, int]] = {}
    for idx, e in rows:
        if e.type != EVENT_RECORD:
            raise VerificationError(f"entry {idx} is a {e.type}, not an epcis.event", expected=EVENT_RECORD,
                                    found=e.type)
        ev = logged_event(e)
        loc = (ev.data.get("bizLocation") or {}).get("id")
        if ev.type != "ObjectEvent" or ev.data.get("bizStep") not in ("stock_taking",
                                                                      "https://ref.gs1.org/cbv/BizStep-stock_taking"):
            continue
        if not loc:
            continue
        for q in ev.data.get("quantityList") or []:
            key = (str(loc), str(q["epcClass"]))
            when = str(ev.data["eventTime"])
            qty = _int(q.get("quantity", 0), f"quantity of {q['epcClass']} at entry {idx}")
            if key not in latest or (when, idx) > latest[key][:2]:
                latest[key] = (when, int(idx), qty)
    return {k: v[2] for k, v in latest.items()}, sorted({v[1] for v in latest.values()})


def _inputs(spec: Any) -> tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]:
    if not isinstance(spec, dict) or not isinstance(spec.get("needs"), dict) or not isinstance(spec.get("costs"), dict):
        raise BadInputError('the plan input is {"needs": {site: {class: qty}}, "costs": {depot: {site: cost}}}',
                            field="needs")
    needs = {(str(s), str(k)): _int(q, f"need {k} at {s}") for s, d in spec["needs"].items() for k, q in d.items()}
    costs = {(str(a), str(b)): _int(q, f"cost {a} -> {b}") for a, d in spec["costs"].items() for b, q in d.items()}
    return needs, costs


def solve(stock_: dict[tuple[str, str], int], needs: dict[tuple[str, str], int],
          costs: dict[tuple[str, str], int]) -> dict[str, Any]:
    """The cheapest integer plan: shipments [{from, to, class, quantity}], unmet needs, cost."""
    import numpy as np
    from scipy.optimize import Bounds, LinearConstraint, milp

    arcs = [(d, s, k) for (d, k), q in stock_.items() if q > 0 for (s, k2), n in needs.items()
            if k2 == k and n > 0 and (d, s) in costs]
    short = [(s, k) for (s, k), n in needs.items() if n > 0]
    penalty = 1 + sum(costs.values()) + 1
    nv = len(arcs) + len(short)
    if nv == 0:
        return {"shipments": [], "unmet": [], "cost": 0, "unmet_units": 0}
    c = np.array([costs[(d, s)] for d, s, _ in arcs] + [penalty] * len(short), dtype=float)
    rows, lo, hi = [], [], []
    for (d, k), q in stock_.items():
        row = np.zeros(nv)
        for j, a in enumerate(arcs):
            if a[0] == d and a[2] == k:
                row[j] = 1
        if row.any():
            rows.append(row)
            lo.append(0)
            hi.append(q)
    for i, (s, k) in enumerate(short):
        row = np.zeros(nv)
        for j, a in enumerate(arcs):
            if a[1] == s and a[2] == k:
                row[j] = 1
        row[len(arcs) + i] = 1
        rows.append(row)
        lo.append(needs[(s, k)])
        hi.append(needs[(s, k)])
    res = milp(c, constraints=LinearConstraint(np.array(rows), lo, hi), integrality=np.ones(nv),
               bounds=Bounds(0, np.inf))
    if not res.success:  # pragma: no cover - the unmet slack makes every instance feasible
        raise VerificationError(f"the allocation could not be solved: {res.message}")
    x = np.rint(res.x).astype(int)
    ship: list[dict[str, Any]] = [{"from": d, "to": s, "class": k, "quantity": int(v)}
                                  for (d, s, k), v in zip(arcs, x) if v > 0]
    unmet = [{"site": s, "class": k, "quantity": int(v)} for (s, k), v in zip(short, x[len(arcs):]) if v > 0]
    cost = sum(costs[(str(a["from"]), str(a["to"]))] * int(a["quantity"]) for a in ship)
    return {"shipments": ship, "unmet": unmet, "cost": int(cost), "unmet_units": sum(u["quantity"] for u in unmet)}


def allocate(ledger: Any, identity: Any, spec: Any) -> dict[str, Any]:
    """Plan from the logged stock and ``spec`` (needs, costs), and log the plan with its inputs."""
    import scipy

    needs, costs = _inputs(spec)
    st, used = stock(ledger)
    if not st:
        raise BadInputError("no stock in the log: capture stock_taking ObjectEvents (bizLocation, quantityList) "
                            "first", field="stock")
    plan = solve(st, needs, costs)
    body = {"stock_events": used, "needs": spec["needs"], "costs": spec["costs"], "plan": plan,
            "solver": f"scipy.optimize.milp (HiGHS), scipy {scipy.__version__}"}
    res = ledger.append_record(ALLOCATION_RECORD, json.loads(json.dumps(body)), identity)
    return dict(plan, index=int(res.index), stock_events=used)


def check(ledger: Any, index: int) -> dict[str, Any]:
    """Recompute a logged plan from its logged inputs: within stock, needs met as claimed, and optimal."""
    e = ledger.entry(index)
    if e.type != ALLOCATION_RECORD:
        raise BadInputError(f"entry {index} is a {e.type}, not an {ALLOCATION_RECORD}", field="index")
    b = e.body
    needs, costs = _inputs(b)
    st, _ = stock(ledger, list(b["stock_events"]))
    plan = b["plan"]
    sent: dict[tuple[str, str], int] = {}
    got: dict[tuple[str, str], int] = {}
    for a in plan["shipments"]:
        sent[(a["from"], a["class"])] = sent.get((a["from"], a["class"]), 0) + a["quantity"]
        got[(a["to"], a["class"])] = got.get((a["to"], a["class"]), 0) + a["quantity"]
        if (a["from"], a["to"]) not in costs:
            raise VerificationError(f"the plan ships on a route with no cost: {a['from']} -> {a['to']}")
    for k, q in sent.items():
        if q > st.get(k, 0):
            raise VerificationError(f"the plan sends {q} of {k[1]} from {k[0]}, which holds {st.get(k, 0)}",
                                    expected=st.get(k, 0), found=q)
    unmet = {(u["site"], u["class"]): u["quantity"] for u in plan["unmet"]}
    for k, n in needs.items():
        if got.get(k, 0) + unmet.get(k, 0) != n:
            raise VerificationError(f"need {n} of {k[1]} at {k[0]}: the plan delivers {got.get(k, 0)} and reports "
                                    f"{unmet.get(k, 0)} unmet", expected=n, found=got.get(k, 0) + unmet.get(k, 0))
    best = solve(st, needs, costs)
    cost = sum(costs[(a["from"], a["to"])] * a["quantity"] for a in plan["shipments"])
    mine = (sum(unmet.values()), cost)
    if mine != (best["unmet_units"], best["cost"]) or cost != plan["cost"]:
        raise VerificationError("the logged plan is not the optimum of its inputs",
                                expected=f"unmet {best['unmet_units']}, cost {best['cost']}",
                                found=f"unmet {mine[0]}, cost {cost} (claimed {plan['cost']})")
    return {"ok": True, "index": index, "cost": cost, "unmet_units": mine[0], "stock_events": len(b["stock_events"])}
