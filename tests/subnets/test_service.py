"""Subnets on a real ledger: commit-reveal, the epoch fold, replay bit for bit, and every bad input."""

from __future__ import annotations

import pytest

from ailedger.encoding.records import build_entry
from ailedger.errors import BadInputError, ConflictError, NotAuthorisedError, VerificationError
from ailedger.subnets import service
from ailedger.subnets.state import commitment
from ailedger.subnets.yuma import ONE
from ailedger.tlog.ledger import entry_terms
from ailedger.tlog.merkle import leaf_hash
from ailedger.tlog.stores import LeafRow


def _round(w, weights_by_validator, epoch=0):
    for v, ws in weights_by_validator.items():
        service.commit(w.led, w.ids[v], "digits", ws, time=w.at(epoch, 5000))
    for v in weights_by_validator:
        service.reveal(w.led, w.ids[v], "digits", epoch, time=w.at(epoch + 1, 5000))


def test_epoch_pays_by_consensus_and_replay_agrees(world):
    w = world
    _round(w, {"v1": {0: 0.9, 1: 0.5, 2: 0.1}, "v2": {0: 0.8, 1: 0.6, 2: 0.1}})
    r = service.epoch(w.led, w.ids["keeper"], "digits", 0, time=w.at(2, 100))
    res = r["body"]["result"]
    pay = res["pay"]
    assert pay["owner"] == 180_000
    assert sum(pay["miners"]) + sum(pay["validators"]) + pay["owner"] + pay["unissued"] == 1_000_000
    assert pay["miners"][0] > pay["miners"][1] > pay["miners"][2] > 0
    assert res["stake"][2] == 0  # v3 did not commit
    assert res["stake"][0] == 2 * res["stake"][1] or abs(res["stake"][0] - 2 * res["stake"][1]) <= 1
    # replay recomputes every epoch from the log alone
    out = service.replay(w.led, "digits", verify_signatures=True)
    assert out["agree"] and out["epochs_checked"] == 1
    info = service.show(w.led, "digits")
    assert info["earned"][w.ids["m0"].did] == pay["miners"][0]
    assert info["earned"][w.ids["owner"].did] == 180_000


def test_a_forged_epoch_result_is_refused_and_replay_fails(world):
    w = world
    _round(w, {"v1": {0: 1.0, 1: 0.5}})
    b = service.book(w.led)
    _n, body = b.compute_next("digits")
    body["result"]["pay"]["miners"][0] += 1
    e = build_entry("subnet.epoch", body, w.ids["m0"].did, w.at(2, 100), w.ids["m0"].sign)
    with pytest.raises(NotAuthorisedError, match="differs from the fold"):
        w.led.append_entry(e)  # refused at admission, on every write path
    assert service.show(w.led, "digits")["epochs"] == 0
    # reached the log another way (a direct store write): ignored by the fold, and replay fails
    w.led.log.append([LeafRow(e.leaf_bytes, leaf_hash(e.leaf_bytes), entry_terms(e))])
    with pytest.raises(VerificationError, match="does not agree with the replay"):
        service.replay(w.led, "digits")
    assert service.show(w.led, "digits")["epochs"] == 0  # ignored: nothing paid
    service.epoch(w.led, w.ids["keeper"], "digits", time=w.at(2, 200))
    assert service.show(w.led, "digits")["epochs"] == 1


def test_nothing_is_paid_twice(world):
    w = world
    _round(w, {"v1": {0: 1.0}})
    service.epoch(w.led, w.ids["keeper"], "digits", 0, time=w.at(2, 100))
    with pytest.raises(BadInputError, match="already folded"):
        service.epoch(w.led, w.ids["keeper"], "digits", 0, time=w.at(2, 200))
    _n, body = service.book(w.led).compute_next("digits")
    body["epoch"] = 0
    e = build_entry("subnet.epoch", body, w.ids["v1"].did, w.at(2, 300), w.ids["v1"].sign)
    with pytest.raises(ConflictError, match="nothing is paid twice"):
        service.book(w.led).apply(w.led.size, e)


def test_epoch_waits_for_the_reveal_window(world):
    w = world
    _round(w, {"v1": {0: 1.0}})
    with pytest.raises(BadInputError, match="once its reveal window ends"):
        service.epoch(w.led, w.ids["keeper"], "digits", 0, time=w.at(1, 9000))
    with pytest.raises(BadInputError, match="epoch 0 must be folded before epoch 3"):
        service.epoch(w.led, w.ids["keeper"], "digits", 3, time=w.at(5, 0))


def test_weights_for_unregistered_miners(world):
    w = world
    with pytest.raises(BadInputError, match="uid 7, which is not a registered miner"):
        service.commit(w.led, w.ids["v1"], "digits", {0: 1.0, 7: 0.5}, time=w.at(0, 5000))
    assert service.show(w.led, "digits")["ignored"] == []


@pytest.mark.parametrize("bad,msg", [({0: -0.5}, "negative"), ({0: float("nan")}, "not a finite number"),
                                     ({0: float("inf")}, "not a finite number"), ({0: 0.0}, "every weight is zero")])
def test_negative_or_non_finite_weights(world, bad, msg):
    before = world.led.size
    with pytest.raises(BadInputError, match=msg):
        service.commit(world.led, world.ids["v1"], "digits", bad, time=world.at(0, 5000))
    assert world.led.size == before


def test_a_validator_with_no_stake(world):
    w = world
    with pytest.raises(NotAuthorisedError, match="has no stake"):
        service.commit(w.led, w.ids["v3"], "digits", {0: 1.0}, time=w.at(0, 5000))


def test_only_validators_commit_and_only_the_owner_sets_params(world):
    w = world
    with pytest.raises(NotAuthorisedError, match="not a registered validator"):
        service.commit(w.led, w.ids["m0"], "digits", {0: 1.0}, time=w.at(0, 5000))
    with pytest.raises(NotAuthorisedError, match="only the subnet's owner"):
        service.set_params(w.led, w.ids["v1"], "digits", {"kappa_bps": 9000}, time=w.at(0, 5000))
    service.set_params(w.led, w.ids["owner"], "digits", {"kappa_bps": 6000}, time=w.at(0, 5000))
    b = service.book(w.led)
    assert b.get("digits").params_for(0).kappa_bps == 5000  # from the next epoch that starts
    assert b.get("digits").params_for(1).kappa_bps == 6000


def test_a_second_commit_in_one_epoch(world):
    w = world
    service.commit(w.led, w.ids["v1"], "digits", {0: 1.0}, time=w.at(0, 5000))
    with pytest.raises(ConflictError, match="a second commit"):
        service.commit(w.led, w.ids["v1"], "digits", {1: 1.0}, time=w.at(0, 6000))


def test_a_reveal_that_does_not_open_its_commitment(world):
    w = world
    r = service.commit(w.led, w.ids["v1"], "digits", {0: 1.0, 1: 0.5}, time=w.at(0, 5000))
    with pytest.raises(BadInputError, match="does not open the commitment"):
        service.reveal(w.led, w.ids["v1"], "digits", 0, salt=r["salt"], uids=[0, 1], values=[65535, 65535],
                       time=w.at(1, 5000))
    with pytest.raises(BadInputError, match="does not open the commitment"):
        service.reveal(w.led, w.ids["v1"], "digits", 0, salt="other", uids=r["uids"], values=r["values"],
                       time=w.at(1, 5000))
    # another validator cannot reuse the commitment: the did is inside the hash
    assert commitment("digits", 0, w.ids["v2"].did, r["uids"], r["values"], r["salt"]) != r["body"]["commitment"]


def test_a_reveal_after_the_deadline_is_not_counted(world):
    w = world
    service.commit(w.led, w.ids["v1"], "digits", {0: 1.0, 1: 0.2}, time=w.at(0, 5000))
    service.commit(w.led, w.ids["v2"], "digits", {1: 1.0}, time=w.at(0, 5000))
    with pytest.raises(BadInputError, match="early"):
        service.reveal(w.led, w.ids["v1"], "digits", 0, time=w.at(0, 9000))
    service.reveal(w.led, w.ids["v2"], "digits", 0, time=w.at(1, 5000))
    with pytest.raises(BadInputError, match="after the deadline"):
        service.reveal(w.led, w.ids["v1"], "digits", 0, time=w.at(2, 5000))
    res = service.epoch(w.led, w.ids["keeper"], "digits", 0, time=w.at(2, 6000))["body"]["result"]
    assert res["stake"][0] == 0 and res["stake"][1] == ONE  # only v2's weights counted
    assert res["pay"]["validators"][0] == 0 and res["pay"]["miners"][0] == 0


def test_evidence_must_be_inference_records(world):
    w = world
    service.commit(w.led, w.ids["v1"], "digits", {0: 1.0}, time=w.at(0, 5000))
    with pytest.raises(BadInputError, match="not an inference.batch"):
        service.reveal(w.led, w.ids["v1"], "digits", 0, evidence=[1], time=w.at(1, 5000))
    # miner 0 serves a real model through the inference SDK: its calls are logged as an inference.batch
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    from ailedger.inference import InferenceTrail
    from ailedger.provenance.models import register_model

    x, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=300).fit(x[::2], y[::2])
    mdir = w.led.path.parent / "m0-model"
    mdir.mkdir()
    (mdir / "coef.json").write_text(str(clf.coef_.tolist()))
    register_model(w.led, mdir, "m0-model", w.ids["m0"], workers=1)
    trail = InferenceTrail(w.led, "m0-model", mode="fast", caller="v1")
    predict = trail.wrap()(lambda row: {"label": int(clf.predict([row])[0])})
    correct = sum(predict(list(map(float, x[i])))["label"] == y[i] for i in range(1, 40, 2))
    trail.close()
    batches = sorted(i for i, _e in w.led.find(type="inference.batch"))
    assert batches
    service.reveal(w.led, w.ids["v1"], "digits", 0, evidence=batches, time=w.at(1, 5000))
    service.epoch(w.led, w.ids["keeper"], "digits", time=w.at(2, 100))
    ep = service.show(w.led, "digits")["epoch_results"][0]
    assert ep["reveals"][w.ids["v1"].did]["evidence"] == batches
    assert correct >= 15  # the scored calls are real answers


def test_names_and_registration(world):
    w = world
    with pytest.raises(NotAuthorisedError, match="already exists"):
        service.create(w.led, w.ids["v1"], "digits", {"spec": "x"}, epoch_ms=60_000, time=w.at(0, 300))
    with pytest.raises(ConflictError, match="already registered"):
        service.register(w.led, w.ids["m0"], "digits", "validator", time=w.at(0, 300))
    with pytest.raises(BadInputError, match="must be 10000"):
        service.create(w.led, w.ids["v1"], "other", {"spec": "x"}, params={"owner_bps": 100}, time=w.at(0, 300))


def test_admission_refuses_subnet_entries_without_standing(world):
    """Every write path (Ledger.append_entry here; HTTP ingest and `ailedger append` call the same check)."""
    w = world
    e = build_entry("subnet.commit", {"subnet": "digits", "epoch": 0, "commitment": "ab" * 32}, w.ids["v3"].did,
                    w.at(0, 5000), w.ids["v3"].sign)
    with pytest.raises(NotAuthorisedError, match="has no stake"):
        w.led.append_entry(e)
    e = build_entry("subnet.params", {"subnet": "digits", "params": {"kappa_bps": 9000}}, w.ids["m0"].did,
                    w.at(0, 5000), w.ids["m0"].sign)
    with pytest.raises(NotAuthorisedError, match="only the subnet's owner"):
        w.led.append_entry(e)
    size = w.led.size
    e = build_entry("subnet.commit", {"subnet": "digits", "epoch": 0, "commitment": "ab" * 32}, w.ids["v1"].did,
                    w.at(0, 5000), w.ids["v1"].sign)
    w.led.append_entry(e)  # a validator with stake: admitted
    assert w.led.size == size + 1


def test_http_ingest_refuses_with_403(world):
    import asyncio

    import httpx

    from ailedger.http.app import create_app

    w = world
    e = build_entry("subnet.commit", {"subnet": "digits", "epoch": 0, "commitment": "ab" * 32}, w.ids["v3"].did,
                    w.at(0, 5000), w.ids["v3"].sign)

    async def post() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(w.led)),
                                     base_url="http://127.0.0.1") as c:
            return await c.post("/v1/entries", content=e.leaf_bytes, headers={"content-type": "application/json"})
    size = w.led.size
    r = asyncio.run(post())
    assert r.status_code == 403, r.text
    assert "not_authorised" in r.text and "no stake" in r.text, r.text
    assert w.led.size == size


def test_a_batch_is_judged_in_order(world):
    """A registration and a commit by the new validator in one batch: the commit sees the registration."""
    w = world
    gov_rep = w.led.new_identity("v4")[0]
    from ailedger.governance import service as gov

    gov.grant_reputation(w.led, w.ids["owner"], {gov_rep.did: 50}, time=w.at(0, 300))
    service.stake(w.led, gov_rep, "digits", 50, time=w.at(0, 350))
    reg = build_entry("subnet.register", {"subnet": "digits", "role": "validator"}, gov_rep.did, w.at(0, 400),
                      gov_rep.sign)
    com = build_entry("subnet.commit", {"subnet": "digits", "epoch": 0, "commitment": "cd" * 32}, gov_rep.did,
                      w.at(0, 500), gov_rep.sign)
    bad = build_entry("subnet.commit", {"subnet": "digits", "epoch": 0, "commitment": "ef" * 32}, gov_rep.did,
                      w.at(0, 600), gov_rep.sign)
    out = w.led.append_entries([reg.leaf_bytes, com.leaf_bytes, bad.leaf_bytes], parallel=False)
    assert not isinstance(out[0], str) and not isinstance(out[1], str), out
    assert not isinstance(out[2], str)  # logged: not a question of standing (the fold keeps the first commit)
    b = service.book(w.led)
    assert b.get("digits").validators[-1] == gov_rep.did
    assert (0, gov_rep.did) in b.get("digits").commits
    # the second commit in the same epoch is not a question of standing: logged, and ignored by the fold
    assert any("a second commit" in x["reason"] for x in b.ignored)


def test_explorer_page(world):
    import asyncio

    import httpx

    from ailedger.http.app import create_app

    w = world
    _round(w, {"v1": {0: 0.9, 1: 0.5}, "v2": {0: 0.8, 2: 0.6}})
    r = service.epoch(w.led, w.ids["keeper"], "digits", 0, time=w.at(2, 100))

    async def get(path: str) -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(w.led)),
                                     base_url="http://127.0.0.1") as c:
            return await c.get(path)
    page = asyncio.run(get("/subnet/digits"))
    assert page.status_code == 200, page.text
    pay = r["body"]["result"]["pay"]
    assert f"<td>{sum(pay['miners'])}</td>" in page.text and 'id="chart"' in page.text
    assert f'href="/entry/{r["index"]}"' in page.text
    assert asyncio.run(get("/subnet/nope")).status_code == 404
    # the list of subnets, in the menu, with its chart; each row leads to the subnet's page
    listing = asyncio.run(get("/subnets"))
    assert listing.status_code == 200, listing.text
    assert '<a href="/subnets" data-kind="subnets" aria-current="page">' in listing.text
    assert '<a href="/subnet/digits">digits</a>' in listing.text and 'id="chart"' in listing.text
    total = sum(pay["miners"]) + sum(pay["validators"]) + pay["owner"]
    assert f"<td>{total:,}</td>" in listing.text
    assert '<a href="/subnets"' in asyncio.run(get("/")).text


def test_the_cached_fold_through_the_type_index_equals_a_scan(world, monkeypatch):
    w = world
    w.led.append_entries([build_entry("note", {"n": i}, w.ids["m1"].did, w.at(0, 300), w.ids["m1"].sign).leaf_bytes
                          for i in range(300)], parallel=False)
    _round(w, {"v1": {0: 0.9, 1: 0.5}, "v2": {0: 0.8, 2: 0.6}})
    service.epoch(w.led, w.ids["keeper"], "digits", 0, time=w.at(2, 100))
    scanned = service.book(w.led).get("digits").summary()
    service._cache.clear()
    monkeypatch.setattr(service, "SPARSE_SCAN_FROM", 1)
    indexed = service._indexed_entries(w.led, 0, w.led.size)
    assert indexed is not None and all(e.type.startswith("subnet.") for _i, e in indexed)
    assert service.book(w.led).get("digits").summary() == scanned
