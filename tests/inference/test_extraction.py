"""Model extraction (issue 24 part 3): the PRADA detector in a real gateway over HTTP on 127.0.0.1, in front of
a real digits model server subprocess; signed alarms, the budget rule, output hardening, the attack harness."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from click.testing import CliRunner

from ailedger.errors import BadInputError, VerificationError
from ailedger.inference.extraction import (
    ALARM_TYPE,
    ALARM_WINDOW_S,
    Alarm,
    DetectorConfig,
    ExtractionGuard,
    Hardening,
    PradaDetector,
    check_alarm,
    rule,
    standing,
)
from ailedger.inference.extraction_attack import (
    HttpOracle,
    digits_split,
    honest_replay,
    run_attack,
    save_target,
    target_model,
)
from ailedger.inference.gateway import Gateway, GatewayKeys

from .test_gateway import Running, post


@pytest.fixture(scope="module")
def digits_template(tmp_path_factory):
    from ailedger.provenance.models import register_model
    from ailedger.tlog.ledger import Ledger

    root = tmp_path_factory.mktemp("extraction-template")
    led = Ledger.init(root / "ledger", origin="test.example/extraction")
    pub, _ = led.new_identity("publisher")
    save_target(str(root / "model"))
    register_model(led, root / "model", "digits", pub)
    led.close()
    return root


@pytest.fixture
def dledger(digits_template, tmp_path):
    from ailedger.tlog.ledger import Ledger

    shutil.copytree(digits_template / "ledger", tmp_path / "ledger")
    shutil.copytree(digits_template / "model", tmp_path / "model")
    led = Ledger.open(tmp_path / "ledger")
    yield led
    led.close()


@pytest.fixture
def digits_server(dledger):
    model_dir = str(dledger.path.parent / "model")
    p = subprocess.Popen([sys.executable, "-m", "ailedger.inference.extraction_attack", "serve", model_dir],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    line = p.stdout.readline()
    if not line.startswith("PORT "):
        p.kill()
        raise RuntimeError(f"digits server did not start: {line!r} {p.stderr.read()}")
    yield f"http://127.0.0.1:{int(line.split()[1])}"
    p.terminate()
    p.wait(10)


def _alarm(identity, seed=0):
    """An alarm body whose evidence holds: heavily skewed distances (W far below delta)."""
    from ailedger.inference.extraction import Detection, alarm_body

    skewed = tuple(float(v) for v in np.random.default_rng(seed).exponential(1.0, 200) ** 2)
    return alarm_body(Detection(identity, 200, 0.5, 0.0, skewed), "digits", DetectorConfig())


def _keys(ledger, **ids):
    keys = GatewayKeys(ledger.path)
    out = {name: keys.new_key(name, daily=daily)["key"] for name, daily in ids.items()}
    keys.close()
    return out


def _gateway(ledger, upstream, **kw):
    gw = Gateway(ledger, upstream, "digits")
    gw.extraction = ExtractionGuard(ledger, "digits", gw.trail.operator, **kw)
    return gw


def test_attack_through_the_gateway_is_alarmed_then_suspended_and_the_honest_client_is_not(dledger, digits_server):
    k = _keys(dledger, honest=5000, mallory=5000)
    run = Running(_gateway(dledger, digits_server))
    try:
        d = digits_split(0)
        Xs = d["test"][0][:200]
        labels = honest_replay(HttpOracle(f"http://127.0.0.1:{run.port}", k["honest"]), Xs, seed=3)
        assert np.mean(np.asarray(labels) == d["test"][1][:200]) > 0.9  # the real model answered
        assert run.gw.extraction.raised == []  # 200 natural queries in random order: no alarm
        res = run_attack(HttpOracle(f"http://127.0.0.1:{run.port}", k["mallory"]), "rnd", 1000, d["pool"], Xs,
                         labels, seed=1)
        raised = list(run.gw.extraction.raised)
        # two alarms (the detector starts afresh after each), then every key of mallory is suspended
        assert len(raised) == 2, (raised, res.to_dict())
        assert res.stopped.startswith("403 identity_suspended"), res.stopped
        assert res.queries < 400
        st, _, body = post(run.port, "/predict", {"features": [Xs[0].tolist()]}, key=k["mallory"])
        assert st == 403 and json.loads(body)["error"]["code"] == "identity_suspended"
        st, _, _ = post(run.port, "/predict", {"features": [Xs[0].tolist()]}, key=k["honest"])
        assert st == 200
    finally:
        run.stop()
    operator = run.gw.trail.operator.did
    for idx in raised:
        e = dledger.entry(idx)
        assert e.type == ALARM_TYPE and e.signer == operator and e.body["identity"] == "mallory"
        out = check_alarm(e)  # the evidence reproduces the test
        assert out["w"] < out["delta"] and out["n"] >= 100
    s = standing(dledger, operator, "mallory")
    assert s.suspended and [a.index for a in s.in_force] == raised
    assert not standing(dledger, operator, "honest").in_force


def test_one_alarm_halves_the_budget_and_only_the_operators_alarms_count(dledger, digits_server):
    k = _keys(dledger, eve=6)
    gw = _gateway(dledger, digits_server, detect=False)
    operator = gw.trail.operator
    stranger, _ = dledger.new_identity("stranger")
    dledger.append_record(ALARM_TYPE, _alarm("eve"), stranger)  # a stranger's alarm: a statement, no effect
    assert standing(dledger, operator.did, "eve").factor == 1.0
    bogus = {"identity": "eve", "model": "digits", "w": 0.5, "delta": 0.93}  # no evidence: no effect either
    dledger.append_record(ALARM_TYPE, bogus, operator)
    assert standing(dledger, operator.did, "eve").factor == 1.0
    dledger.append_record(ALARM_TYPE, _alarm("eve", seed=1), operator)
    s = standing(dledger, operator.did, "eve")
    assert s.factor == 0.5 and not s.suspended and s.limits(None, 6) == (None, 3)
    run = Running(gw)
    try:
        x = digits_split(0)["test"][0][0].tolist()
        codes = [post(run.port, "/predict", {"features": [x]}, key=k["eve"])[0] for _ in range(5)]
    finally:
        run.stop()
    assert codes == [200, 200, 200, 429, 429]  # daily 6 halved to 3


def test_the_rule_ages_alarms_out_and_suspends_at_two():
    t0 = 1_800_000_000_000
    a = [Alarm(5, "x", "did:op", t0, 0.8), Alarm(9, "x", "did:other", t0, 0.8), Alarm(12, "y", "did:op", t0, 0.8)]
    s = rule(a, "did:op", "x", t0 + 1000)
    assert [al.index for al in s.in_force] == [5] and s.factor == 0.5 and not s.suspended
    assert s.limits(4.0, None) == (2.0, 500)  # no daily quota: the cap, halved
    assert not rule(a, "did:op", "x", t0 + ALARM_WINDOW_S * 1000).in_force  # aged out
    two = rule([*a, Alarm(20, "x", "did:op", t0 + 5000, 0.7)], "did:op", "x", t0 + 6000)
    assert two.suspended and two.until_ms == t0 + ALARM_WINDOW_S * 1000 and "suspended" in two.describe()


def test_output_hardening_top1_and_rounding(dledger, digits_server):
    k = _keys(dledger, bob=None)
    x = digits_split(0)["test"][0][:2].tolist()
    answers = {}
    for name, hard in (("plain", Hardening()), ("top1", Hardening(top1=True)), ("round", Hardening(decimals=1))):
        run = Running(_gateway(dledger, digits_server, detect=False, hardening=hard))
        try:
            st, h, body = post(run.port, "/predict", {"features": x}, key=k["bob"])
            assert st == 200 and h["AIledger-Receipt"]
            answers[name] = json.loads(body)
        finally:
            run.stop()
    assert "probabilities" not in answers["top1"] and answers["top1"]["labels"] == answers["plain"]["labels"]
    plain, rounded = answers["plain"]["probabilities"], answers["round"]["probabilities"]
    assert any(round(v, 1) != v for row in plain for v in row)
    assert rounded == [[round(v, 1) for v in row] for row in plain]


def test_a_sybil_burst_of_fresh_identities_is_invisible_to_the_detector():
    """Each identity's queries are tested alone: 20 fresh identities sharing one attack's 400 queries stay
    under min_samples each, while one identity sending the same queries is caught."""
    m = target_model(0)
    rng = np.random.default_rng(2)
    X = digits_split(0)["pool"][0][:10]
    while len(X) < 400:  # the rnd attack's queries: each round steps every known point in a random direction
        X = np.vstack([X, np.clip(X + 2.0 * rng.choice([-1.0, 1.0], size=X.shape), 0, 16)])
    queries = list(zip(X[:400], m.predict(X[:400])))
    sybil, single = PradaDetector(), PradaDetector()
    sybil_hits = [sybil.observe(f"sybil-{i % 20}", x, lab) for i, (x, lab) in enumerate(queries)]
    single_hits = [single.observe("one", x, lab) for x, lab in queries]
    assert not any(sybil_hits)
    assert any(single_hits)


def test_bad_detector_input_and_bad_options():
    det = PradaDetector()
    det.observe("a", [0.0] * 64, 1)
    with pytest.raises(BadInputError, match="64"):
        det.observe("a", [0.0] * 10, 1)
    for kw in ({"delta": 1.5}, {"min_samples": 5}, {"window": 50, "min_samples": 100}):
        with pytest.raises(BadInputError):
            DetectorConfig(**kw)
    with pytest.raises(BadInputError, match="decimals"):
        Hardening(decimals=-1)
    with pytest.raises(BadInputError, match="URL"):
        HttpOracle("ftp://x", "k")
    with pytest.raises(BadInputError, match="attack"):
        run_attack(None, "nope", 100, None, None, None)


def test_check_alarm_refuses_evidence_that_does_not_hold_and_the_cli_says_so(dledger):
    from ailedger.cli.main import main
    from ailedger.inference.extraction import Detection, alarm_body

    op, _ = dledger.new_identity("inference")
    rng = np.random.default_rng(0)
    normal = tuple(float(v) for v in rng.normal(20, 3, 200))  # natural-looking distances: W close to 1
    fake = alarm_body(Detection("honest", 200, 0.5, 0.0, normal), "digits", DetectorConfig())
    res_fake = dledger.append_record(ALARM_TYPE, fake, op)
    skewed = tuple(float(v) for v in rng.exponential(1.0, 200) ** 2)
    res_true = dledger.append_record(ALARM_TYPE, alarm_body(Detection("m", 200, 0.5, 0.0, skewed), "digits",
                                                            DetectorConfig()), op)
    with pytest.raises(VerificationError, match="pass the normality test"):
        check_alarm(dledger.entry(res_fake.index))
    tampered = {**fake, "distances_milli": fake["distances_milli"][:-1] + [1]}
    res_t = dledger.append_record(ALARM_TYPE, tampered, op)
    with pytest.raises(VerificationError, match="digest"):
        check_alarm(dledger.entry(res_t.index))
    with pytest.raises(BadInputError, match="not an"):
        check_alarm(dledger.entry(0))
    r = CliRunner()
    args = ["--ledger", str(dledger.path), "gateway", "check-alarm"]
    ok = r.invoke(main, [*args, str(res_true.index), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True
    bad = r.invoke(main, [*args, str(res_fake.index)])
    assert bad.exit_code == 1 and "normality" in bad.output
    missing = r.invoke(main, [*args, "99999"])
    assert missing.exit_code == 2 and "no entry 99999" in missing.output
    url = r.invoke(main, ["gateway", "extraction-test", "--gateway", "ftp://x", "--key", "k", "--eval-key", "e"])
    assert url.exit_code == 2 and "URL" in url.output
    listed = r.invoke(main, ["--ledger", str(dledger.path), "gateway", "alarms", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = {row["identity"]: row for row in json.loads(listed.output)["identities"]}
    assert list(rows) == ["m"] and rows["m"]["factor"] == 0.5  # alarms whose evidence fails have no effect
    ignored = {g["entry"]: g["reason"] for g in json.loads(listed.output)["ignored"]}
    assert "evidence does not hold" in ignored[res_fake.index] and "digest" in ignored[res_t.index]


def test_alarm_time_window_uses_the_signed_time(dledger):
    op, _ = dledger.new_identity("inference")
    dledger.append_record(ALARM_TYPE, _alarm("z"), op)
    now = time.time()
    assert standing(dledger, op.did, "z", now=now).factor == 0.5
    assert standing(dledger, op.did, "z", now=now + ALARM_WINDOW_S + 60).factor == 1.0
