"""A log and three witness processes (`ailedger witness serve`) on loopback; a forked log is caught."""

from __future__ import annotations

import json
import shutil

import pytest
from clirun import run, spawn  # tests/cli/clirun.py (pytest puts this folder on sys.path)

from ailedger.errors import VerificationError
from ailedger.tlog.checkpoint import parse_checkpoint_text
from ailedger.tlog.cosignature import verify_cosigned_checkpoint
from ailedger.tlog.ledger import Ledger
from ailedger.tlog.note import parse_note, parse_vkey, verify_note
from ailedger.tlog.witness import Witness

ORIGIN = "test.example/cli-log"


@pytest.fixture
def setup(tmp_path):
    ledger = Ledger.init(tmp_path / "ledger", origin=ORIGIN)
    ledger.log.append_data([f"r{i}".encode() for i in range(5)])
    procs, urls, vkeys = [], [], []
    try:
        for i in range(3):
            d = str(tmp_path / f"w{i}")
            if i == 0:  # the CLI way (each call is a Python start-up, so the other two use the API)
                out = json.loads(run("witness", "init", d, "--name", f"witness.test/w{i}", "--json").stdout)
                assert run("witness", "vkey", "--witness", d).stdout.strip() == out["vkey"]
                vkeys.append(out["vkey"])
                run("witness", "add-log", "--witness", d, "--vkey", ledger.vkey)
            else:
                w = Witness.init(d, f"witness.test/w{i}")
                w.add_log(ledger.vkey)
                vkeys.append(w.vkey)
                w.close()
            p = spawn("witness", "serve", "--witness", d, "--port", "0")
            procs.append(p)
            line = p.stdout.readline()
            assert "listening on http://127.0.0.1:" in line, p.stderr.read() if p.poll() is not None else line
            urls.append(line.split(" on ")[1].split()[0])
        yield ledger, urls, vkeys, tmp_path
    finally:
        for p in procs:
            p.terminate()
            p.wait(10)
        ledger.close()


def test_forked_log_is_caught(setup):
    ledger, urls, vkeys, tmp = setup
    trust = [a for v in vkeys for a in ("--witness-vkey", v)]
    # all three witnesses cosign the log at size 5
    out = run("witness", "cosign", "--ledger", str(ledger.path), *[a for u in urls for a in ("--url", u)],
              *trust)
    verify_cosigned_checkpoint(out.stdout.encode(), ledger.vkey, vkeys, 3)

    # the operator forks the log: same key, same first 5 entries, then two different histories
    shutil.copytree(ledger.path, tmp / "fork")
    fork = Ledger.open(tmp / "fork")
    ledger.log.append_data([b"honest-5", b"honest-6"])
    fork.log.append_data([b"evil-5", b"evil-6"])

    # the honest view reaches witnesses 0 and 1; the forked view is shown to witness 2
    honest = run("witness", "cosign", "--ledger", str(ledger.path), "--url", urls[0], "--url", urls[1], *trust).stdout
    evil = run("witness", "cosign", "--ledger", str(fork.path), "--url", urls[2], *trust).stdout
    policy = (ledger.vkey, vkeys, 2)
    res = verify_cosigned_checkpoint(honest.encode(), *policy)
    assert res.checkpoint.size == 7
    with pytest.raises(VerificationError):
        verify_cosigned_checkpoint(evil.encode(), *policy)  # only 1 of the 2 cosignatures the policy needs

    # the fork now tries witness 0, which has cosigned the honest size-7 tree: refused, kept as evidence
    p = run("witness", "cosign", "--ledger", str(fork.path), "--url", urls[0], "--json", *trust,
            "--allow-missing-cosignatures")
    reply = json.loads(p.stdout)
    assert reply["witnesses"][0]["ok"] is False and reply["witnesses"][0]["status"] == 409
    ev = json.loads(run("witness", "evidence", "--witness", str(tmp / "w0")).stdout)
    assert len(ev) == 1
    a, b = ev[0]["cosigned_checkpoint"].encode(), ev[0]["offered_checkpoint"].encode()
    # the evidence is two checkpoints of the same size, both validly signed by the log, different roots
    log = parse_vkey(ledger.vkey)
    ca = parse_checkpoint_text(verify_note(a, log).text)
    cb = parse_checkpoint_text(verify_note(b, log).text)
    assert ca.size == cb.size == 7 and ca.root != cb.root

    # and witness 2, shown the honest log after the fork, refuses it (422: not consistent with the fork)
    p = run("witness", "cosign", "--ledger", str(ledger.path), "--url", urls[2], "--json", *trust, check=False)
    assert p.returncode == 2  # refused, and no --allow-missing-cosignatures: an error naming the witness
    assert json.loads(p.stdout)["error"]["witnesses"][0]["status"] in (409, 422)
    assert len(json.loads(run("witness", "evidence", "--witness", str(tmp / "w2")).stdout)) == 1
    fork.close()


def test_verify_command_policy(setup):
    ledger, urls, vkeys, tmp = setup
    f = tmp / "cp.note"
    led = ["--ledger", str(ledger.path)]
    run("witness", "configure", "--url", urls[0], "--vkey", vkeys[0], *led)
    conf = json.loads(run("witness", "configure", "--url", urls[1], "--vkey", vkeys[1], *led, "--json").stdout)
    assert [c["url"] for c in conf] == urls[:2]
    run("witness", "cosign", *led, "-o", str(f))  # the configured witnesses
    args = ["witness", "verify", str(f), "--log-vkey", ledger.vkey,
            *[a for v in vkeys for a in ("--witness-vkey", v)]]
    ok = run(*args, "--witness-threshold", "2", "--json")
    assert json.loads(ok.stdout)["ok"] is True
    bad = run(*args, "--witness-threshold", "3", check=False)
    assert bad.returncode != 0 and "2 of 3 witnesses cosigned (need 3)" in bad.stdout
    assert parse_note(f.read_bytes()).signatures[0].name == ORIGIN
