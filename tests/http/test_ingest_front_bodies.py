"""The ingest front's check of a group of single-entry bodies (``IngestFront.check``: one C pass over the bodies,
``Ingestor.prepare_bodies``, each other body on its own): in ONE group mixing good entries with every kind of bad
or odd body, the good canonical entries go to the group's one batch, each other request gets its own answer,
and every answer is the API's for the same body (refusals byte for byte as JSON); only the bad ones fail --
with the piece's signatures checked on one core or (split) half of them on the C module's helper thread."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from ailedger.encoding import _speedups, records
from ailedger.encoding.canonical import canonical_json
from ailedger.http.app import ServeConfig, create_app
from ailedger.http.ingest_front import IngestFront, available
from ailedger.tlog.ledger import Ledger
from tests.http.helpers import Key

pytestmark = pytest.mark.skipif(not available(), reason="ailedger.tlog._front is not built (no C compiler)")


@pytest.mark.parametrize("split", [False, True])
def test_a_mixed_group_answers_as_the_api_does(tmp_path, split):
    d = tmp_path / "ledger"
    Ledger.init(d, origin="test.example/bodies").close()
    with Ledger.open(d) as led:
        app = create_app(led, ServeConfig(open_registration=True))
        api = TestClient(app)
        alice, bob, mallory, carol = Key("alice"), Key("bob"), Key("mallory"), Key("carol")
        for k in (alice, bob):
            assert api.post("/v1/identities", json=k.registration()).status_code == 201
        logged = alice.entry("note", {"n": 0})
        first = api.post("/v1/entries", content=canonical_json(logged)).json()
        good = [canonical_json((alice if i % 2 else bob).entry("note", {"n": i + 1, "subjects": [f"s{i}"]}))
                for i in range(24)]
        refused = [
            canonical_json(dict(alice.entry("note", {"n": 100}), sig="A" * 86 + "==")),  # bad signature
            canonical_json(alice.entry("note", {"n": 101}, time_offset=-7200)),  # stale (checked at the commit)
            canonical_json(mallory.entry("note", {"n": 102})),  # unknown signer (checked at the commit)
            canonical_json({**alice.entry("note", {"n": 103}), "extra": 1}),  # an extra field
            b"{nope", b"", b"[1,2]", b'"x"', b'{"a":1.5}',
        ]
        want = {}
        for body in refused:  # the API's answers: nothing is logged by a refusal
            r = api.post("/v1/entries", content=body)
            assert 400 <= r.status_code < 500, (body, r.text)
            want[body] = (r.status_code, r.json())
        size = led.size
        indented = json.dumps(alice.entry("note", {"n": 200}), indent=2).encode()  # new, not canonical: read strictly
        reg = canonical_json(carol.registration())  # open registration: appended on its own
        bodies = good[:8] + refused[:4] + [canonical_json(logged), indented] + good[8:16] + refused[4:] + [reg] \
            + good[16:]
        group = list(enumerate(bodies, start=1000))
        f = IngestFront(app.api, "127.0.0.1", 0)
        try:
            jobs = _speedups._helper_jobs() if records._check_rows is not None else 0
            checked = f.check(group, split=split)
            if records._check_rows is not None:  # split: half the signatures on the C helper thread
                assert _speedups._helper_jobs() == jobs + split
            by_body = dict(zip([t for t, _ in group], bodies))
            fast = {by_body[t] for t in checked.fast_tokens}
            if records._check_rows is not None:  # the good canonical entries went to the group's one batch
                assert fast == set(good) | {canonical_json(logged)} | set(refused[1:3])
            answers = {a[0]: a for a in f.commit([checked])}
        finally:
            f.sock.close()
        assert sorted(answers) == [t for t, _ in group]  # every request answered, once
        for token, body in group:
            status, data = answers[token][1], json.loads(answers[token][2])
            if body in want:
                assert (status, data) == want[body], body
            elif body == canonical_json(logged):
                assert (status, data) == (200, {**first, "duplicate": True})
            else:
                assert status == 201 and not data["duplicate"], (body, data)
                assert led.entry_bytes(data["index"]) == canonical_json(json.loads(body))
        assert led.size == size + len(good) + 2  # the good ones, the indented one and the registration
