"""POST /v1/entries/batch of a canonical body takes the C pass over the whole body (``Ingestor.submit_body_async``:
split, checked and answered without a Python value per entry); every answer -- status, results, errors -- and
every stored leaf equals what the parsed path gives for the same requests (two ledgers fed the same requests, one
with that pass turned off), and every body the pass does not take whole falls back to the parsed path."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from ailedger.encoding import records
from ailedger.encoding.canonical import canonical_json
from ailedger.http.app import ServeConfig, create_app
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key

pytestmark = pytest.mark.skipif(records._check_rows is None, reason="the C module _speedups is not built")

HDR = {"content-type": "application/json"}


def _body(entries: list[dict]) -> bytes:
    return b'{"entries":[' + b",".join(canonical_json(e) for e in entries) + b"]}"


class _Pair:
    """The same requests to two servers on two fresh ledgers: the C pass on (fast) and off (parsed)."""

    def __init__(self, tmp_path, **cfg):
        self.leds = []
        self.clients = []
        self.taken: list[bool] = []
        for name in ("fast", "parsed"):
            d = tmp_path / name
            Ledger.init(d, origin="test.example/batch").close()
            led = Ledger.open(d)
            app = create_app(led, ServeConfig(open_registration=True, **cfg))
            ing = app.api.ingest  # type: ignore[attr-defined]
            orig = ing.submit_body_async
            if name == "fast":
                async def counted(body, orig=orig):
                    res = await orig(body)
                    self.taken.append(res is not None)
                    return res

                ing.submit_body_async = counted
            else:
                async def off(body):
                    return None

                ing.submit_body_async = off
            self.leds.append(led)
            self.clients.append(TestClient(app))

    def post(self, body: bytes, path: str = "/v1/entries/batch") -> tuple[int, dict]:
        a, b = (c.post(path, content=body, headers=HDR) for c in self.clients)
        assert a.status_code == b.status_code, (a.text[:500], b.text[:500])
        assert a.json() == b.json()
        assert a.headers["content-type"] == b.headers["content-type"] == "application/json"
        return a.status_code, a.json()

    def leaves(self) -> list[list[bytes]]:
        return [[led.entry_bytes(i) for i in range(led.store.size())] for led in self.leds]

    def close(self) -> None:
        for led in self.leds:
            led.close()


@pytest.fixture
def pair(tmp_path):
    p = _Pair(tmp_path, max_batch=2000)
    yield p
    p.close()


def test_answers_and_leaves_equal_the_parsed_path(pair):
    alice, bob, carol, mallory = Key("alice"), Key("bob"), Key("carol"), Key("mallory")
    for k in (alice, bob):
        assert pair.post(canonical_json(k.registration()), "/v1/identities")[0] == 201

    def notes(k, a, b, **kw):
        return [k.entry("note", {"i": i, "subjects": [f"sha256:{i:064x}", "a}\"{"]}, **kw) for i in range(a, b)]

    small = notes(alice, 0, 20)
    status, js = pair.post(_body(small))
    assert status == 201 and js["appended"] == 20 and pair.taken[-1]
    assert pair.post(_body(small)) == (200, {**js, "appended": 0, "duplicates": 20,
                                            "results": [{**r, "duplicate": True} for r in js["results"]]})
    assert pair.taken[-1]
    mixed = small[5:10] + notes(bob, 20, 30) + [small[0]]
    status, js = pair.post(_body(mixed))
    assert status == 201 and (js["appended"], js["duplicates"]) == (10, 6) and pair.taken[-1]
    big = [e for pair_ in zip(notes(alice, 100, 400), notes(bob, 400, 700)) for e in pair_]  # threads split it
    status, js = pair.post(_body(big))
    assert status == 201 and js["appended"] == 600 and pair.taken[-1]
    twice = notes(alice, 800, 803)
    assert pair.post(_body(twice + twice))[1]["duplicates"] == 3  # the same entry twice in one batch
    # a bad signature (small and big batches, in both threads' halves): 403, the same errors, nothing stored
    bad = notes(alice, 900, 910)
    bad[3] = {**bad[3], "sig": bad[4]["sig"]}
    status, js = pair.post(_body(bad))
    assert status == 403 and [(x["entry"], x["code"]) for x in js["errors"]] == [(3, "bad_signature")]
    assert pair.taken[-1]  # decided by the C pass too: the error is parse_entry's for that entry
    bigbad = notes(alice, 1000, 1600)
    for i in (7, 590):
        bigbad[i] = {**bigbad[i], "sig": bigbad[i + 1]["sig"]}
    status, js = pair.post(_body(bigbad))
    assert status == 403 and [x["entry"] for x in js["errors"]] == [7, 590]
    # the policy's verdicts: a stale time, an unknown signer
    status, js = pair.post(_body(notes(alice, 2000, 2003) + notes(alice, 2003, 2004, time_offset=-7200)))
    assert status == 400 and js["errors"][0]["code"] == "stale_time"
    status, js = pair.post(_body(notes(mallory, 2100, 2102)))
    assert status in (400, 403) and "unknown_identity" in json.dumps(js)
    # a self-revocation in a batch (an identity type: its extra index term), then the revoked signer
    status, js = pair.post(_body(notes(bob, 2500, 2501) + [bob.entry("identity.revoke", {"did": bob.did})]))
    assert status == 201 and pair.taken[-1]
    status, js = pair.post(_body(notes(bob, 2600, 2602)))
    assert status in (400, 403) and "revoked_identity" in json.dumps(js) and pair.taken[-1]
    # what the C pass does not take: the parsed path answers, the same way
    n = len(pair.taken)
    floats = [alice.entry("note", {"x": 1.5, "subjects": ["f"]})] + notes(alice, 2200, 2202)
    assert pair.post(_body(floats))[0] == 201
    assert pair.post(json.dumps({"entries": notes(alice, 2300, 2302)}).encode())[0] == 201  # not canonical
    assert pair.post(_body([carol.registration()] + notes(carol, 2400, 2402)))[0] == 201  # a registration
    assert pair.post(b'{"entries":[]}')[0] == 400
    assert pair.post(b'{"entries":[{}]}')[0] == 400
    assert pair.post(b'{"entries":[' + canonical_json(small[0]) + b"],\"x\":1}")[0] == 400
    assert pair.post(_body(notes(alice, 5000, 5001))[:-1])[0] == 400  # cut
    assert pair.taken[n:] == [False] * (len(pair.taken) - n)
    fast, parsed = pair.leaves()
    assert fast == parsed and len(fast) == 2 + 20 + 10 + 600 + 3 + 2 + 3 + 2 + 3


def test_too_many_entries_and_limits_answer_as_before(tmp_path):
    p = _Pair(tmp_path, max_batch=5)
    try:
        alice = Key("alice")
        assert p.post(canonical_json(alice.registration()), "/v1/identities")[0] == 201
        es = [alice.entry("note", {"i": i}) for i in range(6)]
        status, js = p.post(_body(es))
        assert status == 400 and js["code"] == "bad_input" and p.taken == [False]
        assert p.post(_body(es[:5]))[0] == 201 and p.taken[-1]
        assert p.leaves()[0] == p.leaves()[1]
    finally:
        p.close()
