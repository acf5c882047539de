"""The agent.* rules over HTTP, through the real server app (``http.app.create_app``): ``POST /v1/entries`` (the
canonical fast path and the JSON path) and ``POST /v1/entries/batch`` refuse a malformed or replayed
``agent.action``, one naming a revoked model, a malformed plan, a stranger's ``agent.backtest.result`` and a
second result with 403 ``not_authorised`` naming the rule; nothing is stored; a batch holding one bad entry is
refused whole, naming that entry, and the same batch without it is stored."""

from __future__ import annotations

import asyncio
import json

import httpx

from ailedger.defi.actions import ACTION, effective_actions, validate_intent
from ailedger.defi.rules import PLAN, RESULT, effective_results, plan_digest
from ailedger.http.app import create_app
from tests.defi.test_rules import action, result_body, small_plan

JSON = {"content-type": "application/json"}


def test_http_ingest_refuses_what_the_agent_rules_ignore(led):
    lg, alice = led
    lg.append_record("identity.register", {"name": "alice", "did": alice.did, "subjects": [alice.did]}, alice)
    bob = lg.new_identity("bob")[0]  # the server takes entries from registered signers only
    plan, _ = small_plan("http")

    def entry(type_, body, who=alice):
        return lg.make_entry(type_, body, who)

    async def run() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(lg)),
                                     base_url="http://127.0.0.1") as c:
            async def post(e, pretty=False):
                data = json.dumps(e.to_dict(), indent=1).encode() if pretty else e.leaf_bytes
                return await c.post("/v1/entries", content=data, headers=JSON)

            async def refused(e, why, pretty=False):
                size = lg.size
                r = await post(e, pretty)
                assert r.status_code == 403, r.text
                assert r.json()["code"] == "not_authorised" and why in r.text, r.text
                assert lg.size == size  # nothing stored

            r = await post(entry(ACTION, action(0)))
            assert r.status_code == 201, r.text
            first = r.json()["index"]
            # a replay (same agent, chain, nonce), on both paths of POST /v1/entries
            await refused(entry(ACTION, action(0, tx="0x" + "cd" * 32)), "replayed intent")
            await refused(entry(ACTION, action(0, tx="0x" + "ce" * 32)), "replayed intent", pretty=True)
            # malformed intents
            await refused(entry(ACTION, action(1, intent={**validate_intent({"kind": "transfer", "target": "0x" + "70" * 20,
                                                                            "to": "0x" + "22" * 20, "amount": "5"}),
                                                          "amount": "-5"})),
                          "intent.amount must be a non-negative integer")
            await refused(entry(ACTION, {"intent": "everything"}), "malformed agent.action body")
            # a model that is not an effective registration, then a revoked one
            await refused(entry(ACTION, action(1, model_entry=first)), f"entry #{first} is not an effective model")
            r = await post(entry("model.revoke", {"name": "trader", "reason": "drifted"}))
            assert r.status_code == 201, r.text
            await refused(entry(ACTION, action(1)), "model trader was revoked")

            # backtests: a malformed plan; a plan; a stranger's result; a result before its plan; a second result
            await refused(entry(PLAN, {"plan": plan, "plan_sha256": "00" * 32}), "is not the plan's digest")
            r = await post(entry(PLAN, {"plan": plan, "plan_sha256": plan_digest(plan)}))
            assert r.status_code == 201, r.text
            p = r.json()["index"]
            await refused(entry(RESULT, result_body(p, plan), bob), f"only the plan's signer {alice.did}")
            await refused(entry(RESULT, result_body(p + 3, plan)), "names its plan logged before it")
            r = await post(entry(RESULT, result_body(p, plan)))
            assert r.status_code == 201, r.text
            await refused(entry(RESULT, result_body(p, plan, dsr="0.900000")), "already scored", pretty=True)

            # a batch with one bad entry: refused whole (403), naming the entry; without it: stored
            plan2, _ = small_plan("http-2", seed=1)
            base = lg.size
            good = [entry(PLAN, {"plan": plan2, "plan_sha256": plan_digest(plan2)}),
                    entry(RESULT, result_body(base, plan2))]
            bad = entry(RESULT, result_body(base, plan2), bob)
            r = await c.post("/v1/entries/batch", json={"entries": [e.to_dict() for e in (good[0], bad, good[1])]})
            assert r.status_code == 403, r.text
            assert r.json()["code"] == "not_authorised", r.text
            errs = r.json()["errors"]
            assert [x["entry"] for x in errs] == [1] and "only the plan's signer" in errs[0]["message"], errs
            assert lg.size == base
            r = await c.post("/v1/entries/batch", json={"entries": [e.to_dict() for e in good]})
            assert r.status_code == 201 and r.json()["appended"] == 2, r.text

    asyncio.run(run())
    kept, ignored = effective_actions(lg)
    assert [e.body["nonce"] for _, e in kept] == [0] and ignored == []
    kept, ignored = effective_results(lg)
    assert [e.body["study"] for _, e in kept] == ["http", "http-2"] and ignored == []
    assert all(e.signer == alice.did for _, e in kept)
