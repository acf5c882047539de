"""`ailedger checkpoint --cosign-with` against real witness servers (`ailedger witness serve`):
only cosignatures by trusted keys are kept, a refusing or unreachable witness is an error naming
it (unless a threshold is met or missing ones are allowed), nothing uncosigned is stored as cosigned."""

from __future__ import annotations

import json
import socket
import sqlite3

import pytest
from clirun import run, spawn  # tests/cli/clirun.py

from ailedger.tlog.ledger import Ledger
from ailedger.tlog.note import parse_note
from ailedger.tlog.proofbundle import parse_proof_bundle
from ailedger.tlog.witness import Witness

ORIGIN = "test.example/cosign-cli"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A ledger; witnesses w0, w1 accepting it; w2 configured with another log's key (answers 403)."""
    tmp = tmp_path_factory.mktemp("cosign")
    ledger = Ledger.init(tmp / "ledger", origin=ORIGIN)
    ledger.log.append_data([f"r{i}".encode() for i in range(5)])
    other = Ledger.init(tmp / "other", origin=ORIGIN)  # same origin, different key
    procs, urls, vkeys = [], [], []
    try:
        for i in range(3):
            w = Witness.init(tmp / f"w{i}", f"witness.test/w{i}")
            w.add_log(ledger.vkey if i < 2 else other.vkey)
            vkeys.append(w.vkey)
            w.close()
            p = spawn("witness", "serve", "--witness", str(tmp / f"w{i}"), "--port", "0")
            procs.append(p)
            line = p.stdout.readline()
            assert "listening on http://127.0.0.1:" in line, p.stderr.read() if p.poll() is not None else line
            urls.append(line.split(" on ")[1].split()[0])
        yield tmp, ledger, urls, vkeys
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        ledger.close()
        other.close()


def _led(ledger):
    return ["--ledger", str(ledger.path)]


def _stored(ledger) -> list[tuple[int, bytes]]:
    db = sqlite3.connect(ledger.path / "witnesses.db")
    try:
        return [(s, bytes(n)) for s, n in db.execute("SELECT size, note FROM cosigned")]
    finally:
        db.close()


def _free_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


def test_a_cosignature_from_an_unknown_key_is_dropped(world):
    _tmp, ledger, urls, vkeys = world
    ledger.log.append_data([b"unknown-key-round"])
    # only w0's key is trusted: w1 cosigns too, but with a key nobody named
    p = run("checkpoint", "--cosign-with", urls[0], "--cosign-with", urls[1], "--witness-vkey", vkeys[0],
            *_led(ledger), check=False)
    assert p.returncode == 2, p.stderr
    assert f"witness witness.test/w1 ({urls[1]}): answered only with cosignatures that do not verify under a " \
           "trusted key (ignored: witness.test/w1/" in p.stderr
    assert "1 of 2 witnesses cosigned, 2 needed" in p.stderr
    ok = run("checkpoint", "--cosign-with", urls[0], "--cosign-with", urls[1], "--witness-vkey", vkeys[0],
             "--witness-threshold", "1", *_led(ledger))
    names = [s.name for s in parse_note(ok.stdout.encode()).signatures]
    assert names == [ORIGIN, "witness.test/w0"]  # w1's line is not attached ...
    size = int(ok.stdout.split("\n")[1])
    stored = dict(_stored(ledger))[size]
    assert [s.name for s in parse_note(stored).signatures] == [ORIGIN, "witness.test/w0"]  # ... nor stored
    bundle = run("prove", "0", *_led(ledger)).stdout.encode()
    assert [s.name for s in parse_note(parse_proof_bundle(bundle).checkpoint).signatures] == names


def test_a_refusing_witness_is_an_error_naming_it(world):
    _tmp, ledger, urls, vkeys = world
    ledger.log.append_data([b"refused-round"])
    before = _stored(ledger)
    run("witness", "configure", "--url", urls[2], "--vkey", vkeys[2], *_led(ledger))
    try:
        p = run("checkpoint", "--cosign-with", urls[2], *_led(ledger), check=False)
    finally:
        run("witness", "configure", "--url", urls[2], "--remove", *_led(ledger))
    assert p.returncode == 2 and p.stdout == ""
    assert f"witness witness.test/w2 ({urls[2]}): refused (403): no signature on the checkpoint verifies" in p.stderr
    assert _stored(ledger) == before  # nothing stored as "cosigned"
    down = _free_port_url()
    p = run("checkpoint", "--cosign-with", down, "--witness-vkey", vkeys[0], *_led(ledger), "--json", check=False)
    assert p.returncode == 2
    err = json.loads(p.stdout)["error"]
    assert err["code"] == "cosignatures_missing" and err["witnesses"][0]["url"] == down
    assert err["witnesses"][0]["error"].startswith("unreachable")
    assert _stored(ledger) == before


def test_threshold_and_allow_missing(world):
    _tmp, ledger, urls, vkeys = world
    ledger.log.append_data([b"threshold-round"])
    keys = [a for v in vkeys for a in ("--witness-vkey", v)]
    ask = [a for u in urls for a in ("--cosign-with", u)]
    two = run("checkpoint", *ask, *keys, "--witness-threshold", "2", *_led(ledger))
    assert [s.name for s in parse_note(two.stdout.encode()).signatures] == [
        ORIGIN, "witness.test/w0", "witness.test/w1"]
    assert f"warning: witness {urls[2]}: refused (403)" in two.stderr
    three = run("checkpoint", *ask, *keys, "--witness-threshold", "3", *_led(ledger), check=False)
    assert three.returncode == 2 and "2 of 3 witnesses cosigned, 3 needed" in three.stderr
    allowed = run("checkpoint", *ask, *keys, "--allow-missing-cosignatures", "--json", *_led(ledger))
    out = json.loads(allowed.stdout)
    assert out["ok"] is False and out["cosigned_by"] == ["witness.test/w0", "witness.test/w1"]
    assert [w["ok"] for w in out["witnesses"]] == [True, True, False]
    bad = run("checkpoint", *ask, *keys, "--witness-threshold", "4", *_led(ledger), check=False)
    assert bad.returncode == 2 and "between 0 and the number of witnesses asked (3)" in bad.stderr
    assert run("checkpoint", "--witness-threshold", "1", *_led(ledger), check=False).returncode == 2


def test_trusted_keys_kept_in_the_ledger(world):
    _tmp, ledger, urls, vkeys = world
    ledger.log.append_data([b"trust-round"])
    none = run("checkpoint", "--cosign-with", urls[0], *_led(ledger), check=False)
    assert none.returncode == 2 and "no trusted witness key" in none.stderr
    listed = json.loads(run("witness", "trust", vkeys[0], vkeys[1], *_led(ledger), "--json").stdout)
    assert listed["trusted"] == vkeys[:2]
    try:
        ok = run("checkpoint", "--cosign-with", urls[0], "--cosign-with", urls[1], *_led(ledger))
        assert [s.name for s in parse_note(ok.stdout.encode()).signatures][1:] == [
            "witness.test/w0", "witness.test/w1"]
        assert "cosigned by witness witness.test/w0" in ok.stderr
    finally:
        run("witness", "trust", vkeys[0], vkeys[1], "--remove", *_led(ledger))
    assert json.loads(run("witness", "trust", *_led(ledger), "--json").stdout)["trusted"] == []
